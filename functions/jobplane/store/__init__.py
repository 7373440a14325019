"""Open the object store a URL names, and resolve data URIs to (store, key).

``file:///abs/dir`` is the embedded filesystem store; ``gs://bucket/prefix`` is Google Cloud
Storage (the client honours ``STORAGE_EMULATOR_HOST``). The GCS client is imported only when
a ``gs://`` URL is opened, so the embedded plane never loads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from ..errors import PermanentError
from .base import Blob, ObjectStore

__all__ = ["Blob", "ObjectStore", "client_env", "open_store", "split_uri", "resolve_uri"]

GCS_CLIENT_ENV = ("STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CONFIG")
"""What the GCS client reads from the environment to find the store and its credentials."""


def open_store(url: str) -> ObjectStore:
    """The store at ``url``: ``file:///abs/dir`` or ``gs://bucket[/prefix]``.

    ``file:///abs/dir?fsync=false`` skips the fsync of each write (still atomic, but the last
    writes may be lost if the machine, not the process, crashes): for scratch planes only.
    """
    if url.startswith("file:///"):
        from .files import FileStore

        parts = urlsplit(url)
        fsync = parse_qs(parts.query).get("fsync", ["true"])[-1].lower() not in ("0", "false", "no")
        return FileStore(Path(unquote(parts.path)), fsync=fsync)
    if url.startswith("gs://"):
        from .gcs import GcsStore

        return GcsStore(url)
    raise PermanentError(f"unsupported store URL {url!r}: expected file:///abs/dir or gs://bucket/prefix")


def client_env(url: str, env: Mapping[str, str]) -> dict[str, str]:
    """The variables a child process (a local Job) needs to open the store at ``url`` as
    this process does. Local Jobs get a HOME of their own, so user credentials found under
    ``$HOME/.config/gcloud`` are passed by ``CLOUDSDK_CONFIG``."""
    if not url.startswith("gs://"):
        return {}
    found = {name: env[name] for name in GCS_CLIENT_ENV if env.get(name)}
    gcloud = Path(env.get("HOME", "/nonexistent")) / ".config" / "gcloud"
    if "CLOUDSDK_CONFIG" not in found and gcloud.is_dir():
        found["CLOUDSDK_CONFIG"] = str(gcloud)
    return found


def split_uri(uri: str, *, base_url: str | None = None) -> tuple[str, str]:
    """``(store_url, key)`` for an object URI.

    With ``base_url`` (a store's ``url``) and a URI inside it, the key is relative to that
    store, so ``split_uri(store.uri(k), base_url=store.url) == (store.url, k)``. Otherwise a
    ``gs://bucket/a/b`` URI splits at the bucket and a ``file:///dir/name`` one at its parent.
    """
    if base_url:
        base = base_url.rstrip("/") + "/"
        if uri.startswith(base) and len(uri) > len(base):
            return base_url, unquote(uri[len(base):]) if uri.startswith("file:") else uri[len(base):]
    if uri.startswith("gs://"):
        bucket, _, key = uri[len("gs://"):].partition("/")
        if bucket and key:
            return f"gs://{bucket}", key
    elif uri.startswith("file:///"):
        path = Path(unquote(urlsplit(uri).path))
        if path.name:
            return path.parent.as_uri(), path.name
    raise PermanentError(f"invalid object URI {uri!r}: expected gs://bucket/key or file:///path")


def resolve_uri(uri: str, *, store: ObjectStore) -> tuple[ObjectStore, str]:
    """The store holding ``uri`` and its key there: ``store`` itself when the URI is inside
    it (the usual case: artifacts and data the plane wrote), else one opened for the URI."""
    url, key = split_uri(uri, base_url=store.url)
    return (store, key) if url == store.url else (open_store(url), key)
