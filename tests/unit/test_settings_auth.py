"""``JOBPLANE_AUTH``, ``JOBPLANE_API_TOKEN`` and ``JOBPLANE_ALLOWED_HOSTS``, read once into Settings."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from jobplane.errors import ValidationError
from jobplane.settings import LOOPBACK_HOSTS, Settings, embedded_defaults

STORE = {"JOBPLANE_STORE": "gs://bucket/prefix"}


def test_the_cluster_default_is_kubernetes_auth_on_loopback_hosts() -> None:
    settings = Settings.from_env(STORE)
    assert (settings.auth, settings.allowed_hosts) == ("kubernetes", LOOPBACK_HOSTS)


def test_the_embedded_default_is_a_token_made_once_in_the_data_dir_with_mode_0600(tmp_path: Path) -> None:
    first = embedded_defaults(tmp_path, port=8080)
    again = embedded_defaults(tmp_path, port=8080)
    assert first.auth == "token" and first.api_token == again.api_token and len(first.api_token) == 64
    assert stat.S_IMODE((tmp_path / "api.token").stat().st_mode) == 0o600
    assert first.api_token not in repr(first), "the token never shows in a repr or a log line"


def test_the_environment_overrides_mode_hosts_and_token() -> None:
    env = {**STORE, "JOBPLANE_AUTH": "token", "JOBPLANE_API_TOKEN": "from-a-secret",
           "JOBPLANE_ALLOWED_HOSTS": " api.example.com, *.jobplane.internal ,"}
    settings = Settings.from_env(env)
    assert (settings.auth, settings.api_token) == ("token", "from-a-secret")
    assert settings.allowed_hosts == ("api.example.com", "*.jobplane.internal")


@pytest.mark.parametrize(("env", "field"), [
    ({"JOBPLANE_AUTH": "basic"}, "JOBPLANE_AUTH"),
    ({"JOBPLANE_AUTH": "token"}, "JOBPLANE_API_TOKEN"),
    ({"JOBPLANE_ALLOWED_HOSTS": " , "}, "JOBPLANE_ALLOWED_HOSTS"),
])
def test_bad_auth_settings_are_refused_naming_the_variable(env: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings.from_env({**STORE, **env})
    assert [p.field for p in caught.value.problems] == [field]
