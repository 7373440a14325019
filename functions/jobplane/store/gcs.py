"""The cloud object store: Google Cloud Storage behind the ``ObjectStore`` port.

Objects live under ``gs://bucket/prefix/``. Generation preconditions give create-only writes
(``if_generation_match=0``) and compare-and-swap (``if_generation_match=<generation>``);
reads return the generation the bytes were read at (``x-goog-generation``). Every call has a
bounded retry deadline, so a dead or unreachable store fails fast as ``UnavailableError``
(the function answers 5xx and the broker retries) instead of hanging the request.

The client honours ``STORAGE_EMULATOR_HOST``; with it set, requests go unauthenticated to
the emulator (fake-gcs-server in tests, ``jobplane up`` against a local bucket).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import requests
import requests.adapters
from google.api_core import exceptions as gexc
from google.api_core.retry import Retry
from google.auth import exceptions as auth_exc
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from ..errors import NotFoundError, PermanentError, PreconditionFailedError, UnavailableError, short
from .base import Blob, DataTooLargeError
from .keys import check_key

RESUMABLE_THRESHOLD = 8 * 1024 * 1024
"""Files larger than this upload in resumable chunks of this size."""
DEFAULT_TIMEOUT_S = 10.0
"""Per-request timeout (connect and read)."""
DEFAULT_DEADLINE_S = 15.0
"""Total time one store call may spend retrying before it gives up as unavailable."""
POOL_SIZE = 64
"""HTTP connections kept per client (a status pod runs up to 50 request threads)."""
_LIST_PAGE_SIZE = 1000
T = TypeVar("T")
log = logging.getLogger(__name__)


def default_client(env: Mapping[str, str] | None = None) -> storage.Client:
    """A client from the environment: anonymous against ``STORAGE_EMULATOR_HOST`` if set,
    else Application Default Credentials (Workload Identity on GKE). Its connection pool
    holds ``POOL_SIZE`` connections, as many as a function's request threads."""
    env = os.environ if env is None else env
    emulator = env.get("STORAGE_EMULATOR_HOST")
    project: str | None
    if emulator:
        from google.auth.credentials import AnonymousCredentials

        credentials: Any = AnonymousCredentials()  # type: ignore[no-untyped-call]
        project = env.get("GOOGLE_CLOUD_PROJECT", "jobplane-local")
        options: dict[str, str] = {"api_endpoint": emulator if "://" in emulator else f"http://{emulator}"}
    else:
        import google.auth

        credentials, project = google.auth.default(scopes=storage.Client.SCOPE)
        options = {}
    return storage.Client(project=env.get("GOOGLE_CLOUD_PROJECT", project), credentials=credentials,
                          client_options=options or None, _http=_pooled_session(credentials))


def _pooled_session(credentials: Any) -> requests.Session:
    from google.auth.transport.requests import AuthorizedSession

    session = AuthorizedSession(credentials)  # type: ignore[no-untyped-call]
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class GcsStore:
    """``ObjectStore`` on ``gs://bucket/prefix``."""

    def __init__(
        self,
        url: str,
        *,
        client: storage.Client | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        deadline: float = DEFAULT_DEADLINE_S,
    ) -> None:
        bucket, prefix = _parse_url(url)
        self.url = f"gs://{bucket}/{prefix}".rstrip("/")
        self._prefix = f"{prefix}/" if prefix else ""
        self._client_factory: Callable[[], storage.Client] = (lambda: client) if client else default_client
        self._bucket_name = bucket
        self._bucket: storage.Bucket | None = None
        self._timeout = timeout
        self._retry: Retry = DEFAULT_RETRY.with_timeout(deadline)

    def __repr__(self) -> str:
        return f"GcsStore({self.url!r})"

    @property
    def bucket(self) -> storage.Bucket:
        if self._bucket is None:  # lazily: building a client may look up credentials
            self._bucket = _call(_BUCKET, lambda: self._client_factory().bucket(self._bucket_name))
        return self._bucket

    def read(self, key: str) -> Blob:
        blob = self.bucket.blob(self._name(key))
        data = _call(repr(key), lambda: blob.download_as_bytes(timeout=self._timeout, retry=self._retry))
        return Blob(key=key, data=data, generation=int(blob.generation or 0))

    def read_limited(self, key: str, limit: int) -> Blob:
        """At most ``limit`` bytes (a ranged download of ``limit + 1``); ``DataTooLargeError`` beyond."""
        blob = self.bucket.blob(self._name(key))
        data = _call(repr(key), lambda: blob.download_as_bytes(
            start=0, end=limit, timeout=self._timeout, retry=self._retry))
        if len(data) > limit:
            raise DataTooLargeError(f"object {key!r} is larger than the limit of {limit} bytes")
        return Blob(key=key, data=data, generation=int(blob.generation or 0))

    def write(
        self,
        key: str,
        data: bytes,
        *,
        if_generation_match: int | None = None,
        content_type: str = "application/json",
        durable: bool = True,
    ) -> int:
        blob = self.bucket.blob(self._name(key))
        _call(repr(key), lambda: blob.upload_from_string(
            data, content_type=content_type, if_generation_match=if_generation_match,
            timeout=self._timeout, retry=self._retry))
        return int(blob.generation or 0)

    def sync(self, key: str) -> None:
        """Every GCS write is durable once it returns: nothing to do."""

    def delete(self, key: str, *, if_generation_match: int | None = None) -> None:
        blob = self.bucket.blob(self._name(key))
        _call(repr(key), lambda: blob.delete(
            if_generation_match=if_generation_match, timeout=self._timeout, retry=self._retry))

    def list(self, prefix: str, *, start_after: str = "", limit: int | None = None) -> Iterator[str]:
        return self._iter_keys(prefix, start_after=start_after, limit=limit)

    def upload_file(self, key: str, path: Path, *, content_type: str = "application/octet-stream") -> int:
        large = path.stat().st_size > RESUMABLE_THRESHOLD
        blob = self.bucket.blob(self._name(key), chunk_size=RESUMABLE_THRESHOLD if large else None)
        _call(repr(key), lambda: blob.upload_from_filename(
            str(path), content_type=content_type, timeout=self._timeout, retry=self._retry))
        return int(blob.generation or 0)

    def download_file(self, key: str, path: Path) -> None:
        blob = self.bucket.blob(self._name(key))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
        try:
            _call(repr(key), lambda: blob.download_to_filename(
                str(tmp), timeout=self._timeout, retry=self._retry))
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def uri(self, key: str) -> str:
        return f"gs://{self._bucket_name}/{self._name(key)}"

    def _name(self, key: str) -> str:
        check_key(key)
        return self._prefix + key

    def _iter_keys(self, prefix: str, *, start_after: str, limit: int | None) -> Iterator[str]:
        if limit is not None and limit <= 0:
            return
        full_prefix = self._prefix + prefix
        offset = self._prefix + start_after if start_after > prefix else None
        page_size = min(limit, _LIST_PAGE_SIZE) if limit else _LIST_PAGE_SIZE
        blobs = _call(_BUCKET, lambda: iter(self.bucket.client.list_blobs(
            self.bucket, prefix=full_prefix, start_offset=offset, page_size=page_size,
            timeout=self._timeout, retry=self._retry)))
        count = 0
        while True:
            item = _call(_BUCKET, lambda: next(blobs, None))
            if item is None:
                return
            key = item.name[len(self._prefix):]
            if key <= start_after:
                continue
            yield key
            count += 1
            if limit is not None and count >= limit:
                return


def _parse_url(url: str) -> tuple[str, str]:
    if not url.startswith("gs://"):
        raise PermanentError(f"invalid GCS store URL {url!r}: expected gs://bucket/prefix")
    bucket, _, prefix = url[len("gs://"):].partition("/")
    if not bucket:
        raise PermanentError(f"invalid GCS store URL {url!r}: no bucket")
    return bucket, prefix.strip("/")


def _call(where: str, fn: Callable[[], T]) -> T:
    """Run one client call, mapping its failures onto the plane's errors. ``where`` names the
    object by key (or ``"the bucket"``): messages reach API clients, so they never carry the
    bucket or the client's URL; the client's own text goes to the log only."""
    try:
        return fn()
    except gexc.NotFound as e:
        raise NotFoundError(f"no object {where}" if where != _BUCKET else "the object store's bucket is missing") from e
    except gexc.PreconditionFailed as e:
        raise PreconditionFailedError(f"precondition failed on {where}: the generation moved") from e
    except (gexc.TooManyRequests, gexc.ServerError, gexc.RetryError) as e:
        raise UnavailableError(f"the object store is unavailable for {where}{_logged(e)}") from e
    except (gexc.Forbidden, gexc.Unauthorized) as e:
        # Our credentials or IAM are wrong, not the event: let the broker retry once fixed.
        raise UnavailableError(f"the object store denied access to {where}{_logged(e)}") from e
    except gexc.GoogleAPICallError as e:
        raise PermanentError(f"the object store rejected the request for {where}{_logged(e)}") from e
    except (requests.RequestException, auth_exc.GoogleAuthError, ConnectionError, TimeoutError) as e:
        raise UnavailableError(f"the object store is unreachable for {where}{_logged(e)}") from e


_BUCKET = "the bucket"


def _logged(e: BaseException) -> str:
    """Log the client's text (it names the bucket and URL); the message gets its kind only."""
    log.warning("GCS: %s", short(str(e)))
    code = getattr(e, "code", None)
    return f" ({type(e).__name__}{f' {code}' if isinstance(code, int) else ''})"
