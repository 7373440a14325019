"""The cache of a bot's promoted artifact: loaded once per version, reloaded when the pointer moves."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from jobplane.errors import NotFoundError
from jobplane.pointers import PointerCache
from jobplane.store import open_store


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Any, PointerCache[str], list[bytes]]:
    store = open_store(f"file://{tmp_path}")
    parsed: list[bytes] = []

    def parse(data: bytes, rt: Any) -> str:
        parsed.append(data)
        return data.decode()

    cache: PointerCache[str] = PointerCache(pointer_key=lambda bot: f"bots/{bot}/thing.json", uri_field="thingUri",
                                            parse=parse, missing="thing", recheck_seconds=0.0)
    return SimpleNamespace(store=store), cache, parsed


def _promote(rt: Any, bot: str, key: str, body: bytes, **extra: Any) -> None:
    rt.store.write(key, body)
    rt.store.write(f"bots/{bot}/thing.json", json.dumps({"thingUri": rt.store.uri(key), **extra}).encode())


def test_an_unchanged_target_is_not_read_again_when_the_pointer_is_rewritten(setup: Any) -> None:
    rt, cache, parsed = setup
    _promote(rt, "acme", "runs/r1/a.bin", b"one")
    assert cache.get(rt, "acme").value == "one"
    _promote(rt, "acme", "runs/r1/a.bin", b"one", note="rewritten")
    assert cache.get(rt, "acme").pointer["note"] == "rewritten"
    assert parsed == [b"one"]


def test_a_moved_pointer_loads_the_new_target(setup: Any) -> None:
    rt, cache, parsed = setup
    _promote(rt, "acme", "runs/r1/a.bin", b"one")
    cache.get(rt, "acme")
    _promote(rt, "acme", "runs/r2/a.bin", b"two")
    assert cache.get(rt, "acme").value == "two" and parsed == [b"one", b"two"]


def test_within_the_recheck_window_the_pointer_is_not_read(setup: Any) -> None:
    rt, cache, parsed = setup
    cache.recheck_seconds = 3600.0
    _promote(rt, "acme", "runs/r1/a.bin", b"one")
    cache.get(rt, "acme")
    _promote(rt, "acme", "runs/r2/a.bin", b"two")
    assert cache.get(rt, "acme").value == "one"
    cache.invalidate(rt, "acme")
    assert cache.get(rt, "acme").value == "two"


def test_a_bot_without_a_pointer_is_not_found_with_what_it_lacks(setup: Any) -> None:
    rt, cache, _ = setup
    with pytest.raises(NotFoundError, match="bot 'nobody' has no promoted thing yet"):
        cache.get(rt, "nobody")
