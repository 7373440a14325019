"""The launch function: CloudEvents that ask for a run become a run record and a Job.

Thin by design: ``jobplane.planning`` turns the event into a validated plan (``bot.changed``,
``ping``, ``run.requested``), ``jobplane.fanout`` sends one ``run.requested`` per bot for a
fan-out spec, and ``jobplane.launching`` decides concurrency and creates the Job. The run id
derives from the event's ``source`` + ``id``, so a redelivered event finds its run and never
makes a second Job. The reply is a ``dev.jobplane.run.launched`` CloudEvent (or nothing).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

import flask

from .. import events as ev
from .. import audit, baselines, datauris, fanout, launching, logs, planning, receipts, runs, spec as specs, tracing
from ..errors import NotFoundError
from ..fanout import FANNED_OUT, FANOUT_SOURCE
from ..launching import SOURCE, summary
from ..runtime import Runtime
from .common import event_endpoint

__all__ = ["FANNED_OUT", "FANOUT_SOURCE", "SOURCE", "handle", "on_event", "summary"]

log = logging.getLogger(__name__)


PLANE_SOURCES: Final = "/jobplane/"
"""Sources of the plane's own follow-ups (the api's trigger, a fan-out's or a bot.changed's
kb-index request): their origin was audited already (the API request, the first event)."""


def handle(request: flask.Request, rt: Runtime) -> flask.Response:
    return event_endpoint(request, lambda event: audited(event, rt=rt))


def audited(event: ev.Event, *, rt: Runtime) -> ev.Event | None:
    """``on_event``, with an audit entry per run the event triggers (subject: its ``source``),
    whatever the outcome."""
    error: BaseException | None = None
    try:
        return on_event(event, rt=rt)
    except BaseException as e:
        error = e
        raise
    finally:
        if not event.source.startswith(PLANE_SOURCES):
            for found in trigger_entries(event, error, rt=rt):
                audit.record(rt.store, found)


def trigger_entries(event: ev.Event, error: BaseException | None, *, rt: Runtime) -> list[audit.Entry]:
    """The audit entries of a trigger event: one per run it names (one naming the event when none)."""
    detail = f"{event.type} {event.id}" + (f": {error}" if error is not None else "")
    named = receipts.expected_runs(event) or [{}]
    return [audit.entry(action="trigger", target=f"run/{r['runId']}" if r else "run", subject=event.source,
                        outcome=audit.outcome_of(error), now=rt.clock(), spec_id=r.get("specId"),
                        bot_id=r.get("botId"), run_id=r.get("runId"), detail=detail) for r in named]


def on_event(event: ev.Event, *, rt: Runtime) -> ev.Event | None:
    """Plan, store, decide concurrency, launch; the reply is ``run.launched`` (or nothing)."""
    plan = planning.plan_for(event, rt=rt)
    datauris.check_spec(plan.spec, store_url=rt.store.url, prefixes=rt.settings.data_prefixes)
    for key, data in plan.writes:
        planning.create_only(rt, key, data)
    if plan.spec_data is not None:
        planning.point_spec_at(rt, str(plan.spec["id"]), plan.spec_data)
    for spec_id, param, value in plan.points:
        planning.point_spec_at(rt, spec_id, value, param=param)
    for follow_up in plan.follow_ups:  # sent again on a redelivery: its run id absorbs it
        rt.send(follow_up)
    if specs.is_fan_out(plan.spec):
        fanout.fan_out(event, plan, rt=rt)
        return None
    run = runs.new_run(spec=plan.spec, trigger=planning.trigger(event), requested_by=planning.requested_by(event),
                       now=rt.clock())
    run["traceparent"] = tracing.of_event(event.source, event.id, event.extensions)
    logs.bind(runId=run["id"], specId=run["specId"], botId=run.get("botId"))
    if plan.overrides:
        run["params"] = plan.overrides
    if plan.force:
        run["force"] = True  # the result cache is not asked (jobplane.cache)
    plan.spec = baselines.with_baseline(plan.spec, rt.store, run_id=run["id"])  # a bot test's previous success
    try:  # a redelivery is found by a read before anything is written
        return _redelivered(plan.spec, runs.read_record(rt.store, run["id"]), rt=rt)
    except NotFoundError:
        return launching.start(plan.spec, run, rt=rt)


def _redelivered(spec: Mapping[str, Any], stored: runs.Stored, *, rt: Runtime) -> ev.Event | None:
    """The trigger's run exists: finish what the first delivery left undone, never a second Job.
    ``requested``: its create failed for a while (or it died deciding): launch it now.
    ``launched``: the answer may have been 5xx because a write failed after the create, so the
    create is issued again (409: it exists). Later states: the Job exists or existed; only the
    index entries are healed."""
    run = stored.run
    if run["state"] == "requested":
        return launching.start(spec, run, stored=stored, rt=rt)
    runs.write_index(rt.store, runs.index_keys(run))  # heal what a crash between the writes left out
    if run["state"] == "launched":
        launching.create_job(spec, run, rt=rt)
    log.info("run %s exists (state %s): duplicate delivery", run["id"], run["state"])
    return launching.reply(run) if run.get("job") else None
