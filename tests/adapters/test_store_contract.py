"""One contract for every object-store adapter: the filesystem store and GCS (against a real
fake-gcs-server) must answer the same calls the same way, so they cannot drift apart.

fake-gcs-server v1.54 ignores ``ifGenerationMatch`` on resumable uploads, deletes and copies.
The adapter sends no precondition with uploads and makes no copies; the conditional delete is
skipped on the emulator (``emulator_gap``) and runs on the filesystem store, where the same
adapter-independent logic (runs.update_run, the status function) is exercised too."""

from __future__ import annotations

import multiprocessing
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobplane.errors import NotFoundError, PermanentError, PreconditionFailedError, UnavailableError
from jobplane.store import ObjectStore, client_env, open_store, resolve_uri, split_uri
from jobplane.store import gcs as gcs_module
from jobplane.store import files as files_module
from jobplane.store.base import Blob, DataTooLargeError, read_capped
from jobplane.store.files import FileStore
from support.gcs import GcsServer


@pytest.fixture(params=["files", "gcs"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "files":
        yield open_store((tmp_path / "store").as_uri())
    else:
        yield open_store(request.getfixturevalue("gcs_store_url"))


def emulator_gap(store: ObjectStore, what: str) -> None:
    """fake-gcs-server v1.54 ignores generation preconditions on some calls; the filesystem
    adapter runs the same test, so the logic stays covered."""
    if store.url.startswith("gs://"):
        pytest.skip(f"fake-gcs-server v1.54 ignores ifGenerationMatch on {what}; covered on the filesystem store")


def increment(store: ObjectStore, key: str, times: int) -> None:
    """Read-modify-write with compare-and-swap, retrying lost races."""
    for _ in range(times):
        while True:
            blob = store.read(key)
            try:
                store.write(key, str(int(blob.data) + 1).encode(), if_generation_match=blob.generation)
                break
            except PreconditionFailedError:
                continue


def test_reading_a_missing_object_raises_not_found(store: ObjectStore) -> None:
    with pytest.raises(NotFoundError):
        store.read("runs/nope/run.json")


def test_read_returns_the_bytes_and_generation_written(store: ObjectStore) -> None:
    generation = store.write("runs/r1/run.json", b'{"a": 1}')
    blob = store.read("runs/r1/run.json")
    assert (blob.key, blob.data, blob.generation) == ("runs/r1/run.json", b'{"a": 1}', generation)
    assert generation > 0


def test_a_write_left_to_sync_later_is_there_for_readers_and_preconditions_at_once(store: ObjectStore) -> None:
    generation = store.write("index/slots/s/b", b"mine", if_generation_match=0, durable=False)
    assert store.read("index/slots/s/b") == Blob("index/slots/s/b", b"mine", generation)
    with pytest.raises(PreconditionFailedError):
        store.write("index/slots/s/b", b"theirs", if_generation_match=0, durable=False)
    store.sync("index/slots/s/b")
    store.sync("index/slots/s/never-written")  # nothing to make durable: no error
    assert store.read("index/slots/s/b").data == b"mine"


def test_create_only_write_refuses_an_existing_object(store: ObjectStore) -> None:
    store.write("specs/s.json", b"first", if_generation_match=0)
    with pytest.raises(PreconditionFailedError):
        store.write("specs/s.json", b"second", if_generation_match=0)
    assert store.read("specs/s.json").data == b"first"


def test_compare_and_swap_succeeds_on_the_current_generation_only(store: ObjectStore) -> None:
    g1 = store.write("k", b"1")
    g2 = store.write("k", b"2", if_generation_match=g1)
    with pytest.raises(PreconditionFailedError):
        store.write("k", b"3", if_generation_match=g1)
    assert store.read("k").data == b"2"
    assert g2 > g1


def test_conditional_write_on_a_missing_object_fails(store: ObjectStore) -> None:
    with pytest.raises(PreconditionFailedError):
        store.write("missing", b"x", if_generation_match=12345)
    with pytest.raises(NotFoundError):
        store.read("missing")


def test_generations_increase_across_delete_and_recreate(store: ObjectStore) -> None:
    g1 = store.write("k", b"1", if_generation_match=0)
    g2 = store.write("k", b"2")
    store.delete("k")
    with pytest.raises(NotFoundError):
        store.read("k")
    g3 = store.write("k", b"3", if_generation_match=0)
    assert g1 < g2 < g3


def test_deleting_a_missing_object_raises_not_found(store: ObjectStore) -> None:
    with pytest.raises(NotFoundError):
        store.delete("nothing/here")


def test_delete_with_a_stale_generation_is_refused(store: ObjectStore) -> None:
    emulator_gap(store, "deletes")
    g1 = store.write("k", b"1")
    store.write("k", b"2", if_generation_match=g1)
    with pytest.raises(PreconditionFailedError):
        store.delete("k", if_generation_match=g1)
    assert store.read("k").data == b"2"
    store.delete("k", if_generation_match=store.read("k").generation)
    with pytest.raises(NotFoundError):
        store.read("k")


def test_list_is_lexicographic_by_full_key(store: ObjectStore) -> None:
    for key in ["a/b", "a-c", "a/a/x", "b", "a0"]:
        store.write(key, b"x")
    assert list(store.list("")) == ["a-c", "a/a/x", "a/b", "a0", "b"]
    assert list(store.list("a")) == ["a-c", "a/a/x", "a/b", "a0"]
    assert list(store.list("a/")) == ["a/a/x", "a/b"]
    assert list(store.list("zzz/")) == []


def test_list_matches_prefixes_that_end_inside_a_path_segment(store: ObjectStore) -> None:
    for key in ["runs/abc/run.json", "runs/abd/run.json", "runs/ab", "runs/b/run.json", "runsx"]:
        store.write(key, b"x")
    assert list(store.list("runs/ab")) == ["runs/ab", "runs/abc/run.json", "runs/abd/run.json"]
    assert list(store.list("runs/abc")) == ["runs/abc/run.json"]
    assert list(store.list("runs")) == ["runs/ab", "runs/abc/run.json", "runs/abd/run.json", "runs/b/run.json", "runsx"]


def test_list_honours_start_after_and_limit(store: ObjectStore) -> None:
    keys = [f"index/specs/s/{i:04d}-run" for i in range(25)]
    for key in keys:
        store.write(key, b"")
    assert list(store.list("index/specs/s/", limit=10)) == keys[:10]
    assert list(store.list("index/specs/s/", start_after=keys[9])) == keys[10:]
    assert list(store.list("index/specs/s/", start_after=keys[9], limit=3)) == keys[10:13]
    assert list(store.list("index/specs/s/", start_after="index/specs/s/0010")) == keys[10:]
    assert list(store.list("index/specs/s/", limit=0)) == []


def test_upload_and_download_round_trip_a_file(store: ObjectStore, tmp_path: Path) -> None:
    src = tmp_path / "model.pt"
    src.write_bytes(bytes(range(256)) * 100)
    generation = store.upload_file("runs/r/artifacts/model.pt", src)
    dest = tmp_path / "out" / "model.pt"
    store.download_file("runs/r/artifacts/model.pt", dest)
    assert dest.read_bytes() == src.read_bytes()
    assert store.read("runs/r/artifacts/model.pt").generation == generation


def test_large_files_upload_resumably(store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gcs_module, "RESUMABLE_THRESHOLD", 256 * 1024)  # chunks must be multiples of 256 KiB
    src = tmp_path / "big.bin"
    src.write_bytes(bytes(range(256)) * 4 * 700)  # 700 KiB: three chunks
    g1 = store.upload_file("big.bin", src)
    g2 = store.upload_file("big.bin", src)
    assert store.read("big.bin").data == src.read_bytes()
    assert g2 > g1


def test_downloading_a_missing_object_raises_not_found(store: ObjectStore, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        store.download_file("nope", tmp_path / "nope")
    assert not (tmp_path / "nope").exists()


def test_uris_name_the_object_and_split_back(store: ObjectStore) -> None:
    uri = store.uri("runs/r/artifacts/metrics.json")
    assert uri.startswith(("gs://", "file:///")) and uri.endswith("/runs/r/artifacts/metrics.json")
    assert split_uri(uri, base_url=store.url) == (store.url, "runs/r/artifacts/metrics.json")
    store.write("runs/r/artifacts/metrics.json", b"{}")
    same, key = resolve_uri(uri, store=store)
    assert same is store and same.read(key).data == b"{}"


def test_concurrent_compare_and_swap_loses_no_update(store: ObjectStore) -> None:
    store.write("counter", b"0")
    threads = [threading.Thread(target=increment, args=(store, "counter", 15)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.read("counter").data == b"60"


@pytest.mark.parametrize("key", ["", "/abs", "a//b", "../x", "a/./b", "a/", ".jobplane/locks/x", "a\nb", "k" * 901])
def test_invalid_keys_are_refused_alike_by_every_store(store: ObjectStore, key: str) -> None:
    with pytest.raises(PermanentError):
        store.write(key, b"x")
    with pytest.raises(PermanentError):
        store.read(key)


def test_filesystem_compare_and_swap_is_safe_across_processes(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.write("counter", b"0")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=increment, args=(FileStore(tmp_path), "counter", 40)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert store.read("counter").data == b"120"


def test_filesystem_generations_increase_when_the_clock_steps_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FileStore(tmp_path)
    g1 = store.write("k", b"1")
    monkeypatch.setattr(files_module.time, "time_ns", lambda: 1_000_000_000)  # 1970
    g2 = store.write("k", b"2", if_generation_match=g1)
    store.delete("k")
    g3 = store.write("k", b"3", if_generation_match=0)
    assert g1 < g2 < g3 and store.read("k").generation == g3


def test_filesystem_lock_files_stay_bounded_however_many_objects(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    for n in range(600):
        store.write(f"runs/r/events/{n:08d}", b"", if_generation_match=0)
    assert len(list((tmp_path / ".jobplane" / "locks").iterdir())) <= files_module.LOCK_STRIPES


def test_open_store_can_skip_fsync_for_scratch_planes(tmp_path: Path) -> None:
    store = open_store(f"{tmp_path.as_uri()}?fsync=false")
    assert isinstance(store, FileStore) and store.root == tmp_path.resolve()
    store.write("k", b"x")
    assert store.read("k").data == b"x"


def test_filesystem_objects_are_plain_files_under_the_root(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.write("runs/r/run.json", b'{"id": "r"}')
    assert (tmp_path / "runs" / "r" / "run.json").read_bytes() == b'{"id": "r"}'
    assert store.uri("runs/r/run.json") == (tmp_path / "runs" / "r" / "run.json").as_uri()
    assert list(store.list("")) == ["runs/r/run.json"]  # bookkeeping stays out of listings


def test_a_dead_gcs_server_fails_fast_as_unavailable(gcs_server: GcsServer) -> None:
    dead = gcs_module.GcsStore("gs://b/p", deadline=1.0, timeout=0.5,
                               client=gcs_module.default_client({"STORAGE_EMULATOR_HOST": "http://127.0.0.1:9"}))
    with pytest.raises(UnavailableError):
        dead.read("k")
    with pytest.raises(UnavailableError):
        dead.write("k", b"x", if_generation_match=0)
    with pytest.raises(UnavailableError):
        list(dead.list(""))


def test_open_store_rejects_unknown_schemes() -> None:
    with pytest.raises(PermanentError):
        open_store("s3://bucket/prefix")


def test_child_processes_get_the_gcs_client_environment_only_for_gcs_stores(tmp_path: Path) -> None:
    env = {"STORAGE_EMULATOR_HOST": "http://127.0.0.1:1", "HOME": str(tmp_path), "OTHER": "x"}
    assert client_env("file:///data/store", env) == {}
    assert client_env("gs://b/p", env) == {"STORAGE_EMULATOR_HOST": "http://127.0.0.1:1"}
    (tmp_path / ".config" / "gcloud").mkdir(parents=True)
    assert client_env("gs://b/p", env)["CLOUDSDK_CONFIG"] == str(tmp_path / ".config" / "gcloud")


def test_missing_gcs_credentials_fail_as_unavailable_on_first_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    store = open_store("gs://bucket/prefix")  # opening touches nothing
    with pytest.raises(UnavailableError):
        store.read("k")


def test_the_file_store_syncs_a_write_left_for_later_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, synced = FileStore(tmp_path), []
    real_fsync = files_module.os.fsync
    monkeypatch.setattr(files_module.os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    store.write("index/slots/s/b", b"mine", durable=False)
    assert synced == []
    store.sync("index/slots/s/b")
    assert len(synced) == 1
    store.write("runs/r1/run.json", b"{}")  # a durable write syncs before it returns
    assert len(synced) == 2


def test_errors_name_the_key_never_the_stores_location(store: ObjectStore, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as missing:
        store.read("bots/x/model.json")
    location = store.url.split("://", 1)[1]
    assert "bots/x/model.json" in missing.value.message and location not in missing.value.message
    with pytest.raises(NotFoundError) as missing_file:
        store.download_file("bots/x/model.json", tmp_path / "out")
    assert location not in missing_file.value.message


def test_a_capped_read_returns_objects_up_to_the_cap_and_refuses_larger_ones(store: ObjectStore) -> None:
    store.write("bots/b/data/small.json", b"x" * 100)
    store.write("bots/b/data/big.json", b"x" * 101)
    assert read_capped(store, "bots/b/data/small.json", 100).data == b"x" * 100
    with pytest.raises(DataTooLargeError) as too_large:
        read_capped(store, "bots/b/data/big.json", 100)
    assert too_large.value.status == 400 and store.url.split("://", 1)[1] not in too_large.value.message
    with pytest.raises(NotFoundError):
        read_capped(store, "bots/b/data/none.json", 100)


def test_filesystem_objects_and_the_directories_it_makes_are_the_owners_only(tmp_path: Path) -> None:
    store = open_store((tmp_path / "store").as_uri())
    store.write("deadletter/2026-01-01/x.json", b"{}")
    source = tmp_path / "upload.bin"
    source.write_bytes(b"data")
    source.chmod(0o644)
    store.upload_file("runs/r/artifacts/model.npz", source)
    root = tmp_path / "store"
    for path in (root / "deadletter/2026-01-01/x.json", root / "runs/r/artifacts/model.npz"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for path in (root, root / "deadletter", root / "deadletter/2026-01-01", root / "runs/r/artifacts"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path


def test_a_capped_filesystem_read_refuses_links_and_devices_without_reading_them(tmp_path: Path) -> None:
    store = open_store((tmp_path / "store").as_uri())
    store.write("bots/b/data/real.json", b"{}")
    (tmp_path / "store/bots/b/data/zero.json").symlink_to("/dev/zero")
    with pytest.raises(PermanentError, match="not a plain object"):
        read_capped(store, "bots/b/data/zero.json", 1 << 30)
