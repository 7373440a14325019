"""A run's artifacts served over HTTP: ``GET /v1/runs/{runId}/artifacts/{name}``.

The trainer writes artifacts under ``runs/{runId}/artifacts/`` and the run record names them
by store URI (``gs://``, ``file://``), which no browser can open. Here a name is confined to
that one run's prefix (a plain file name: no slash, no dot first, so never another key) and
answered with the content type its extension says.
"""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass
from typing import Final

from . import conventions as c
from .errors import NotFoundError
from .store.base import ObjectStore, read_capped

MAX_ARTIFACT_BYTES: Final = 512 * 1024 * 1024
"""A model of a large bot is tens of MiB; the api function holds one artifact in memory."""
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_TYPES: Final = {".json": "application/json", ".png": "image/png", ".npz": "application/octet-stream",
                 ".txt": "text/plain; charset=utf-8", ".yaml": "application/yaml"}
INLINE: Final = frozenset({"application/json", "image/png", "text/plain; charset=utf-8"})
"""Types a browser may show in place; anything else downloads."""


@dataclass(frozen=True)
class Artifact:
    name: str
    data: bytes
    content_type: str

    @property
    def inline(self) -> bool:
        return self.content_type in INLINE


def content_type(name: str) -> str:
    suffix = name[name.rfind("."):].lower() if "." in name else ""
    return _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def read_artifact(store: ObjectStore, run_id: str, name: str) -> Artifact:
    """The artifact ``name`` of run ``run_id``; ``NotFoundError`` for a name that is not a plain
    file name or that the run does not have."""
    if not _NAME.fullmatch(name) or ".." in name:
        raise NotFoundError(f"run {run_id!r} has no artifact {name!r}")
    try:
        blob = read_capped(store, c.run_artifacts_prefix(run_id) + name, MAX_ARTIFACT_BYTES)
    except NotFoundError:
        raise NotFoundError(f"run {run_id!r} has no artifact {name!r}") from None
    return Artifact(name=name, data=blob.data, content_type=content_type(name))
