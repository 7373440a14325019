"""A bot's promoted artifact, named by a pointer object and loaded once per version.

``bots/{botId}/model.json`` names the model ``predict`` answers with and ``bots/{botId}/index.json``
the knowledge-base index ``search`` reads. Both are cached per (store, bot) the same way: the
pointer is read again at most every ``recheck_seconds``, so a promotion made elsewhere is picked
up without an event, and a version already loaded (the same target URI) is never read twice.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .errors import NotFoundError
from .store import resolve_uri

if TYPE_CHECKING:
    from .runtime import Runtime

T = TypeVar("T")

RECHECK_SECONDS = 5.0
"""How long a loaded artifact is trusted before its pointer is read again."""


@dataclass
class Loaded(Generic[T]):
    """An artifact, the pointer that named it, and when that pointer was last read."""

    value: T
    pointer: dict[str, Any]
    generation: int
    checked: float


class PointerCache(Generic[T]):
    """Per (store, bot): the artifact the bot's pointer names, reloaded when the pointer moves.

    ``pointer_key`` gives the pointer's key for a bot, ``uri_field`` the pointer's field naming
    the artifact, ``parse`` builds the artifact from its bytes, ``missing`` says what the bot lacks
    (the ``NotFoundError``'s message)."""

    def __init__(self, *, pointer_key: Callable[[str], str], uri_field: str, parse: Callable[[bytes, Runtime], T],
                 missing: str, recheck_seconds: float = RECHECK_SECONDS) -> None:
        self.pointer_key = pointer_key
        self.uri_field = uri_field
        self.parse = parse
        self.missing = missing
        self.recheck_seconds = recheck_seconds
        self._loaded: dict[tuple[str, str], Loaded[T]] = {}
        self._lock = threading.Lock()

    def get(self, rt: Runtime, bot_id: str) -> Loaded[T]:
        """The bot's artifact; ``NotFoundError`` when the bot has no pointer yet."""
        key = (rt.store.url, bot_id)
        now = time.monotonic()
        with self._lock:
            entry = self._loaded.get(key)
        if entry is not None and now - entry.checked < self.recheck_seconds:
            return entry
        try:
            blob = rt.store.read(self.pointer_key(bot_id))
        except NotFoundError as e:
            raise NotFoundError(f"bot {bot_id!r} has no promoted {self.missing} yet") from e
        pointer = json.loads(blob.data)
        if entry is not None and entry.pointer.get(self.uri_field) == pointer.get(self.uri_field):
            entry.checked, entry.generation, entry.pointer = now, blob.generation, pointer
            return entry
        where, artifact_key = resolve_uri(str(pointer[self.uri_field]), store=rt.store)
        entry = Loaded(self.parse(where.read(artifact_key).data, rt), pointer, blob.generation, now)
        with self._lock:
            self._loaded[key] = entry
        return entry

    def invalidate(self, rt: Runtime, bot_id: str | None = None) -> None:
        """Forget the bot's artifact (every bot's when None)."""
        with self._lock:
            for key in [k for k in self._loaded if k[0] == rt.store.url and bot_id in (None, k[1])]:
                del self._loaded[key]
