"""Which data URIs a run may read: decided from the strings alone, one answer for every refusal."""

from __future__ import annotations

import pytest

from jobplane import datauris
from jobplane.errors import ValidationError
from jobplane.settings import DEFAULT_MAX_DATA_BYTES, Settings

STORE = "gs://plane-bucket/jobplane"
FILES = "file:///srv/plane%20data/store"
SHARED = ("gs://shared-datasets/nlu/", "file:///srv/datasets/")


@pytest.mark.parametrize(("uri", "allowed"), [
    (f"{STORE}/bots/pizza/data/r1.json", True),
    (f"{STORE}/bots/pizza/kb/a/b.txt", True),
    (f"{FILES}/bots/pizza/data/r1.json", True),     # the store's own encoding of its folder is fine
    ("gs://shared-datasets/nlu/pizza/r1.json", True),
    ("file:///srv/datasets/snips.json", True),
    (f"{STORE}/bots/other/data/r1.json", False),
    (f"{STORE}/bots/pizza-2/data/r1.json", False),
    (f"{STORE}/bots/pizza", False),
    (f"{STORE}/bots/pizza/", False),
    (f"{STORE}/bots/pizza//r1.json", False),
    (f"{STORE}/bots/pizza/./r1.json", False),
    (f"{STORE}/bots/pizza/../other/r1.json", False),
    (f"{STORE}/bots/pizza/%2e%2e/other/r1.json", False),
    (f"{STORE}/bots/pizza/r%31.json", False),
    (f"{STORE}/bots/pizza/r1.json?alt=media", False),
    (f"{STORE}/bots/pizza/r1.json#x", False),
    (f"{STORE}/bots/pizza/a\\..\\..\\x", False),
    (f"{STORE}/bots/pizza/r 1.json", False),
    (f"{STORE}/bots/pizza/r1.json\n", False),
    (f"{STORE}/runs/r1/artifacts/validation.json", False),
    (f"{STORE}/specs/train-other.json", False),
    ("gs://plane-bucket/other-prefix/bots/pizza/r1.json", False),
    ("gs://shared-datasets/nlu-private/x.json", False),
    ("gs://shared-datasets/nlu/../private/x.json", False),
    ("file:///srv/datasets/../../etc/passwd", False),
    ("file:///etc/passwd", False),
    ("file:///dev/zero", False),
    ("https://example.com/bots/pizza/r1.json", False),
    (None, False),
    (42, False),
])
def test_a_run_reads_only_its_bots_prefix_or_an_allowed_one(uri: object, allowed: bool) -> None:
    store = FILES if isinstance(uri, str) and uri.startswith(FILES) else STORE
    assert datauris.allowed(uri, bot_id="pizza", store_url=store, prefixes=SHARED) is allowed


def test_every_uri_in_the_params_is_checked_and_refused_with_one_message() -> None:
    params = {"botId": "pizza", "trainingData": {"uri": "file:///etc/passwd"}, "testData": {"uri": f"{STORE}/bots/x/t.json"},
              "articles": [{"id": "a", "text": "inline"}, {"id": "b", "uri": "gs://elsewhere/b.txt"}]}
    with pytest.raises(ValidationError) as refused:
        datauris.check_params(params, store_url=STORE)
    fields = [p.field for p in refused.value.problems]
    assert fields == ["spec.params.trainingData.uri", "spec.params.testData.uri", "spec.params.articles[1].uri"]
    assert len({p.problem for p in refused.value.problems}) == 1 and STORE not in refused.value.message


def test_a_spec_without_a_bot_reads_only_allowed_prefixes() -> None:
    assert not datauris.allowed(f"{STORE}/bots/pizza/r1.json", bot_id=None, store_url=STORE)
    assert datauris.allowed("gs://shared-datasets/nlu/x.json", bot_id=None, store_url=STORE, prefixes=SHARED)


def test_settings_read_the_data_prefixes_and_the_size_cap_once() -> None:
    settings = Settings.from_env({"JOBPLANE_STORE": STORE, "JOBPLANE_DATA_PREFIXES": " gs://shared-datasets/nlu , file:///srv/datasets/",
                                  "JOBPLANE_MAX_DATA_BYTES": "1048576"})
    assert settings.data_prefixes == SHARED and settings.max_data_bytes == 1 << 20
    assert Settings.from_env({"JOBPLANE_STORE": STORE}).max_data_bytes == DEFAULT_MAX_DATA_BYTES == 64 << 20


@pytest.mark.parametrize(("name", "value"), [
    ("JOBPLANE_DATA_PREFIXES", "s3://bucket/x/"), ("JOBPLANE_DATA_PREFIXES", "gs://b/a/../c/"),
    ("JOBPLANE_DATA_PREFIXES", "gs://b/a%2f/"), ("JOBPLANE_DATA_PREFIXES", "file:///srv//x/"),
    ("JOBPLANE_MAX_DATA_BYTES", "0"), ("JOBPLANE_MAX_DATA_BYTES", "64MiB"),
])
def test_settings_refuse_prefixes_and_caps_that_cannot_confine(name: str, value: str) -> None:
    with pytest.raises(ValidationError, match=name):
        Settings.from_env({"JOBPLANE_STORE": STORE, name: value})
