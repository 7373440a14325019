"""The runtime a function target works with: settings, store, launcher, clock, event sender.

Built once per process at the edge (``Runtime.from_env``) and passed to handlers; the
embedded plane installs its own (``install``) before it creates the apps.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from .settings import Settings

if TYPE_CHECKING:
    from .auth import Access
    from .events import Event
    from .launcher.base import Launcher
    from .store.base import ObjectStore


def utcnow() -> datetime:
    return datetime.now(UTC)


class BrokerAdmin(Protocol):
    """What the api may ask of a broker running in this process (the embedded plane's)."""

    def stats(self) -> dict[str, Any]:
        """Deliveries per state and unmatched events per type."""

    def dead_letters(self, *, limit: int | None = None) -> list[dict[str, Any]]:
        """Deliveries it keeps dead (the dead-letter sink refused them), oldest first."""

    def replay_dead(self, row: int) -> bool:
        """Deliver dead row ``row`` again; False when there is no such dead row."""


@dataclass
class Runtime:
    settings: Settings
    store: ObjectStore
    launcher_factory: Callable[[], Launcher]
    """Lazy: the kubernetes adapter loads cluster config on first use only."""
    send: Callable[[Event], None]
    """Send a CloudEvent to the broker (``settings.sink``)."""
    clock: Callable[[], datetime] = utcnow
    broker: BrokerAdmin | None = None
    """The in-process broker (embedded plane); None where the broker is Knative's."""
    access_factory: Callable[[], Access] | None = None
    """Who may call the API; None: the adapter ``settings.auth`` names (``auth.open_access``)."""
    _launcher: Launcher | None = field(default=None, repr=False)
    _access: Access | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def launcher(self) -> Launcher:
        with self._lock:
            if self._launcher is None:
                self._launcher = self.launcher_factory()
            return self._launcher

    @property
    def access(self) -> Access:
        with self._lock:
            if self._access is None:
                from .auth import open_access

                self._access = self.access_factory() if self.access_factory else open_access(self.settings)
            return self._access

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        from .events import http_sender
        from .launcher import open_launcher
        from .store import open_store

        return cls(
            settings=settings,
            store=open_store(settings.store_url),
            launcher_factory=lambda: open_launcher(settings),
            send=http_sender(settings.sink),
        )


_current: Runtime | None = None
_current_lock = threading.Lock()


def install(rt: Runtime) -> None:
    """Make ``rt`` the process's runtime (the embedded plane, tests)."""
    global _current
    with _current_lock:
        _current = rt


def current() -> Runtime:
    """The installed runtime, else one built from the environment on first use."""
    global _current
    with _current_lock:
        if _current is None:
            _current = Runtime.from_settings(Settings.from_env(os.environ))
        return _current


def current_settings() -> Settings:
    """The installed runtime's settings, else the environment's, without opening a store or a
    launcher (what a function's app reads when it is created)."""
    with _current_lock:
        if _current is not None:
            return _current.settings
    return Settings.from_env(os.environ)
