"""What a trainer may touch in the store, checked again inside the Job (defence in depth).

The plane checks every data URI before it makes a run (``jobplane.datauris``); the trainer
checks again before it reads, reads at most ``JOBPLANE_MAX_DATA_BYTES`` of any data object
(never more: ``/dev/zero``-like inputs end with a clear error), and works through a store
scoped to its own run (``jobplane.store.scoped``): writes only under ``runs/{runId}/``, reads
there, under its bot's ``bots/{botId}/`` and under the inputs it was given. Messages name the
field and the key, never the store's location.
"""

from __future__ import annotations

from collections.abc import Sequence

from jobplane import datauris
from jobplane.errors import ForbiddenError, NotFoundError, PermanentError, Problem
from jobplane.store import ObjectStore, open_store, resolve_uri
from jobplane.store.base import DataTooLargeError, read_capped
from jobplane.store.scoped import ScopedStore, for_run

from .data import BadDataError


def run_store(store_url: str, *, run_id: str, bot_id: str) -> ScopedStore:
    """The Job's view of the store: its run's prefix to write, its bot's to read."""
    return for_run(open_store(store_url), run_id=run_id, bot_id=bot_id)


def read_data(store: ObjectStore, uri: object, *, field: str, bot_id: str, prefixes: Sequence[str],
              limit: int) -> tuple[bytes, str]:
    """The bytes of a data object the run may read, and its name; ``BadDataError`` (the run
    fails, no retries) when the URI is not allowed, names nothing, or is over ``limit``."""
    if not isinstance(uri, str) or not datauris.allowed(uri, bot_id=bot_id, store_url=store.url, prefixes=prefixes):
        raise BadDataError([datauris.problem(field, bot_id)])
    where, key = resolve_uri(uri, store=store)  # another store only under an allowed prefix
    try:
        return read_capped(where, key, limit).data, key.rsplit("/", 1)[-1]
    except DataTooLargeError as e:
        raise BadDataError([Problem(field, f"the object is larger than JOBPLANE_MAX_DATA_BYTES ({limit} bytes)")]) from e
    except (NotFoundError, ForbiddenError) as e:
        raise BadDataError([Problem(field, f"no readable object {key!r}")]) from e
    except PermanentError as e:
        raise BadDataError([Problem(field, e.message)]) from e
