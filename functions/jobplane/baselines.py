"""A bot test's baseline: the previous succeeded ``bot-test`` run of the same spec and bot.

The launch looks it up and puts it in the Job's params (``baseline``: its run id and the URI
of its ``bot_test.json``), so the trainer compares with it while reading nothing beyond its
inputs: the one object named there. Found through the bot's newest-first listing
(``index/bots/{botId}/{invertedTime}-{runId}``): run ids start with their spec's id
(``runs.run_id_for``), so only that spec's entries are read, newest first, up to ``SCAN`` keys.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from . import conventions as c
from . import runs
from .errors import NotFoundError
from .store.base import ObjectStore

SCAN: Final = 500
"""Most listing keys read back to find the baseline (a bot's runs of every spec, newest first)."""
RESULTS_FILE: Final = "bot_test.json"
_DIGEST: Final = 12


def previous_success(store: ObjectStore, *, spec_id: str, bot_id: str, before: str | None = None) -> runs.Run | None:
    """The newest succeeded ``bot-test`` run of ``spec_id`` for ``bot_id`` (``before``: a
    run id to pass over, the run being launched), or ``None``."""
    for run_id in _spec_runs(store, spec_id=spec_id, bot_id=bot_id):
        if run_id == before:
            continue
        try:
            run = runs.get_run(store, run_id)
        except NotFoundError:
            continue
        if (run.get("specId"), run.get("type"), run.get("state")) == (spec_id, "bot-test", "succeeded") \
                and (run.get("artifacts") or {}).get("botTest"):
            return run
    return None


def _spec_runs(store: ObjectStore, *, spec_id: str, bot_id: str) -> Iterator[str]:
    prefix = f"index/bots/{bot_id}/"
    stem = spec_id[:50].rstrip("-") + "-"
    for key in store.list(prefix, limit=SCAN):
        run_id = key[len(prefix):].split("-", 1)[-1]
        if run_id.startswith(stem) and len(run_id) == len(stem) + _DIGEST:
            yield run_id


def with_baseline(spec: Mapping[str, Any], store: ObjectStore, *, run_id: str | None = None) -> dict[str, Any]:
    """A one-bot ``bot-test`` spec with ``params.baseline`` set to its previous succeeded run
    (left out when there is none); any other spec as it is."""
    params = dict(spec.get("params") or {})
    params.pop("baseline", None)
    out = {**spec, "params": params}
    bot_id = params.get("botId")
    if spec.get("type") != "bot-test" or not isinstance(bot_id, str) or not bot_id:
        return out
    found = previous_success(store, spec_id=str(spec["id"]), bot_id=bot_id, before=run_id)
    if found is not None:
        params["baseline"] = baseline_of(store, found)
    return out


def baseline_of(store: ObjectStore, run: Mapping[str, Any]) -> dict[str, str]:
    """What the Job is given: the run's id and its figures' URI (derived from the id)."""
    return {"runId": str(run["id"]), "metricsUri": store.uri(c.run_artifacts_prefix(str(run["id"])) + RESULTS_FILE)}
