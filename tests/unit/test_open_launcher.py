"""``open_launcher`` picks the adapter the settings name."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobplane.launcher import open_launcher
from jobplane.launcher.local import LocalLauncher
from jobplane.settings import Settings


def test_local_launcher_works_in_jobs_beside_a_file_store(tmp_path: Path) -> None:
    launcher = open_launcher(Settings(store_url=(tmp_path / "store").as_uri()))
    try:
        assert isinstance(launcher, LocalLauncher)
        assert Path(launcher.workdir) == tmp_path / "jobs"
    finally:
        launcher.close()


def test_unknown_launcher_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="local or kubernetes"):
        open_launcher(Settings(store_url=tmp_path.as_uri(), launcher="nomad"))
