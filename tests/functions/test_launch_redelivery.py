"""A launch cut short at any store write heals on redelivery: one Job, a launched run, and
every index entry, whatever write the first delivery died at (the writes run beside the Job's
create, so a failure of any of them must still answer 5xx)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from support.fakes import FakeLauncher
from support.servers import serve_wsgi
from support.specs import TEST_DATA_PREFIXES, make_spec

from jobplane import conventions as c
from jobplane import events as ev
from jobplane import runs, runtime, slots
from jobplane.app import create_function_app
from jobplane.errors import UnavailableError
from jobplane.runtime import Runtime
from jobplane.settings import Settings
from jobplane.store.base import Blob
from jobplane.store.files import FileStore

WRITES_PER_LAUNCH = {"Allow": 4, "Forbid": 5}
"""(``Forbid``) the (spec, bot) slot, then, after the Job's create, run.json (already
``launched``), its two listing entries and its active marker."""


class CrashingStore:
    """A ``FileStore`` whose writes fail from the ``n``-th on (as if the process had died
    there: nothing it would have written later lands) until ``recover``."""

    def __init__(self, inner: FileStore, *, n: int) -> None:
        self.inner, self.url, self.n = inner, inner.url, n
        self.count = 0
        self._lock = threading.Lock()

    def recover(self) -> None:
        self.n = 10**9

    def write(self, key: str, data: bytes, *, if_generation_match: int | None = None,
              content_type: str = "application/json", durable: bool = True) -> int:
        with self._lock:
            self.count += 1
            if self.count >= self.n:
                raise UnavailableError(f"store gone at write {self.count} ({key})")
        return self.inner.write(key, data, if_generation_match=if_generation_match, content_type=content_type,
                                durable=durable)

    def sync(self, key: str) -> None:
        self.inner.sync(key)

    def read(self, key: str) -> Blob:
        return self.inner.read(key)

    def delete(self, key: str, *, if_generation_match: int | None = None) -> None:
        self.inner.delete(key, if_generation_match=if_generation_match)

    def list(self, prefix: str, *, start_after: str = "", limit: int | None = None) -> Iterator[str]:
        return self.inner.list(prefix, start_after=start_after, limit=limit)

    def uri(self, key: str) -> str:
        return self.inner.uri(key)


@contextmanager
def serve(store: CrashingStore, launcher: FakeLauncher) -> Iterator[str]:
    settings = Settings(data_prefixes=TEST_DATA_PREFIXES, store_url=store.url, sink="http://127.0.0.1:9/default/default", callback_key=b"k" * 32,
                        command=("true",))
    runtime.install(Runtime(settings=settings, store=store, launcher_factory=lambda: launcher,  # type: ignore[arg-type]
                            send=lambda e: None))
    with serve_wsgi(create_function_app("launch")) as url:
        yield url


@pytest.mark.parametrize(("policy", "n"), [(p, n) for p, count in WRITES_PER_LAUNCH.items() for n in range(1, count + 1)])
def test_a_launch_that_dies_at_any_write_heals_on_redelivery(tmp_path: Path, policy: str, n: int) -> None:
    inner = FileStore(tmp_path / "store", fsync=False)
    spec = make_spec(concurrency=policy)
    inner.write(c.spec_key(spec["id"]), json.dumps(spec).encode())
    store, launcher = CrashingStore(inner, n=n), FakeLauncher()
    event = ev.new_event(ev.PING, source="/cron", id="tick-1", data={"specId": spec["id"]})
    headers, body = ev.to_http(event)
    with serve(store, launcher) as url:
        assert requests.post(url, data=body, headers=headers, timeout=10).status_code == 503
        store.recover()
        redelivered = requests.post(url, data=body, headers=headers, timeout=10)

    assert redelivered.status_code == 200, redelivered.text
    (run,) = runs.list_runs(inner, spec_id=spec["id"])
    assert run["state"] == "launched" and run["job"]["name"] == run["id"]
    assert list(launcher.jobs) == [run["id"]]
    slot = [slots.slot_key(run)] if policy != "Allow" else []
    assert sorted(inner.list("index/")) == sorted(runs.index_keys(run) + slot)
    if slot:
        assert slots.read(inner, run).holder == slots.Holder(run=run["id"], created_at=run["createdAt"])

