"""Fan-out: a stored spec with ``params.bots: "all"`` (such as ``retrain-all`` or the nightly
bot tests) launches no Job itself; it sends one ``run.requested`` per bot through the broker,
with ids derived from the trigger's (``{id}-{botId}``) so a redelivered ping never doubles a
run. Training runs each bot's own spec ``train-{botId}`` (its history stays in one place); a
bot test runs the fan-out spec for one bot (``params.botId``). The sweep itself leaves one
summary run record, ``succeeded`` with reason ``FannedOut`` and the count, so the run id the
API answered resolves and the spec's history shows when each sweep happened.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any, Final

from . import conventions as c
from . import events as ev
from . import checks, queueing, runs, spec as specs, tracing
from .planning import FORCE_FIELD, REQUESTED_BY_EXTENSION, Plan, requested_by, trigger
from .runtime import Runtime

log = logging.getLogger(__name__)

FANOUT_SOURCE: Final = queueing.FANOUT_SOURCE
"""The per-bot runs' trigger source (their Jobs queue in the batch at low priority)."""
FANNED_OUT: Final = "FannedOut"
PAGE: Final = 500
"""Keys per store listing page while fanning out (only ids are held, a page at a time)."""


def fan_out(event: ev.Event, plan: Plan, *, rt: Runtime) -> None:
    """Send one ``run.requested`` per bot; record the sweep as a summary run. A redelivery
    sends them all again (same ids: the per-bot runs exist already), in case a send failed."""
    run = runs.new_run(spec=plan.spec, trigger=trigger(event), requested_by=requested_by(event), now=rt.clock())
    if plan.overrides:
        run["params"] = plan.overrides
    run, _created = runs.create_run(rt.store, run)
    count = 0
    for bot_id in _bots(plan.spec, rt=rt):
        rt.send(_bot_request(event, plan, bot_id))
        count += 1
    runs.update_run(rt.store, run["id"], lambda r: _fanned_out(r, count, rt=rt))
    log.info("run %s: requested %d runs of %s, one per bot", run["id"], count, plan.spec["id"])


def _bots(spec: Mapping[str, Any], *, rt: Runtime) -> Iterator[str]:
    """Training: every bot with a training spec ``specs/train-{botId}.json``. Bot tests: every
    bot with a promoted model ``bots/{botId}/model.json``."""
    if spec["type"] == "training":
        prefix = "specs/" + specs.TRAINING_PREFIX
        for key in _keys(rt, prefix):
            bot = key[len(prefix):].removesuffix(".json")
            if c.spec_key(specs.TRAINING_PREFIX + bot) == key and checks.DNS_LABEL.match(bot):
                yield bot
        return
    for key in _keys(rt, "bots/"):
        bot = key[len("bots/"):].partition("/")[0]
        if c.bot_model_key(bot) == key and checks.DNS_LABEL.match(bot):
            yield bot


def _keys(rt: Runtime, prefix: str) -> Iterator[str]:
    """Keys under ``prefix``, listed a page at a time."""
    after = ""
    while True:
        page = list(rt.store.list(prefix, start_after=after, limit=PAGE))
        yield from page
        if len(page) < PAGE:
            return
        after = page[-1]


def _bot_request(event: ev.Event, plan: Plan, bot_id: str) -> ev.Event:
    """One bot's ``run.requested``. Training runs the bot's own spec ``train-{botId}`` with
    the fan-out spec's other params (hyper-parameters) as overrides; a bot test runs this
    spec for the bot (its params apply there anyway), with this run's overrides."""
    if plan.spec["type"] == "training":
        params = {k: v for k, v in plan.spec["params"].items() if k != specs.FAN_OUT_FIELD}
        data: dict[str, Any] = {"specId": f"{specs.TRAINING_PREFIX}{bot_id}"}
    else:
        params = specs.for_one_bot(plan.overrides, bot_id)
        data = {"specId": plan.spec["id"]}
    if params:
        data["params"] = params
    if plan.force:
        data[FORCE_FIELD] = True
    return ev.new_event(
        ev.RUN_REQUESTED, source=FANOUT_SOURCE, id=f"{event.id}-{bot_id}", subject=data["specId"], data=data,
        extensions={REQUESTED_BY_EXTENSION: requested_by(event),
                    c.TRACE_EXTENSION: tracing.of_event(event.source, event.id, event.extensions)},
    )


def _fanned_out(run: runs.Run, count: int, *, rt: Runtime) -> runs.Run | None:
    if runs.is_terminal(run):
        return None  # a redelivery: the first sweep's record stands
    new = runs.transition(run, "succeeded", reason=FANNED_OUT, now=rt.clock())
    new["message"] = f"requested {count} run{'s' if count != 1 else ''}, one per bot"
    new["fanOut"] = {"runs": count, "source": FANOUT_SOURCE}
    return new
