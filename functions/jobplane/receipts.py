"""The runs a launch-bound CloudEvent will make, known before anything launches.

A run's id derives from (spec id, trigger ``source`` + ``id``) (``runs.run_id_for``), so
whoever holds the event can name its runs without asking anyone: the embedded broker's
ingress answers them to the sender (202 with ``{"id", "runs"}`` and ``Location``), the
launch function names them in its audit entries, and a sender to Knative's broker (whose
ingress answers an empty 202) computes them the same way. Derived exactly as the launch
derives them: ``bot.changed`` runs the bot's ``train-{botId}`` with the event's source + id,
and with ``knowledgeBase`` its ``kb-{botId}`` (with the follow-up's source + id when the event
trains too, ``planning.kb_trigger``); ``ping`` and ``run.requested`` run ``data.specId`` (or an
inline ``data.spec``). Pure: the job type of a stored spec comes from ``spec_type``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Final

from . import events as ev
from . import runs, spec as specs
from .planning import kb_trigger

Receipt = dict[str, Any]
LAUNCHED_BY: Final = frozenset({ev.BOT_CHANGED, ev.PING, ev.RUN_REQUESTED})


def expected_runs(event: ev.Event, *, spec_type: Callable[[str], str | None] = lambda spec_id: None) -> list[Receipt] | None:
    """``[{"runId", "specId", "type", "botId"?}]`` the launch will make of ``event`` (empty when
    its data names none); None for an event the launch does not take."""
    if event.type not in LAUNCHED_BY:
        return None
    data = _data(event.data)
    if event.type == ev.BOT_CHANGED:
        return _bot_changed(event, data)
    inline = data.get("spec") if isinstance(data.get("spec"), Mapping) else None
    spec_id = (inline or data).get("specId" if inline is None else "id")
    if not isinstance(spec_id, str) or not spec_id:
        return []
    job_type = str(inline.get("type")) if inline is not None and inline.get("type") else spec_type(spec_id)
    params = (inline or data).get("params")
    bot = params.get("botId") if isinstance(params, Mapping) else None
    return [_receipt(spec_id, job_type, event.source, event.id, bot_id=bot)]


def _bot_changed(event: ev.Event, data: Mapping[str, Any]) -> list[Receipt]:
    bot = data.get("botId")
    if not isinstance(bot, str) or not bot:
        return []
    found = []
    if "trainingData" in data:
        found.append(_receipt(f"{specs.TRAINING_PREFIX}{bot}", "training", event.source, event.id, bot_id=bot))
    if "knowledgeBase" in data:
        source, event_id = kb_trigger(event.id) if found else (event.source, event.id)
        found.append(_receipt(f"{specs.KB_PREFIX}{bot}", "kb-index", source, event_id, bot_id=bot))
    return found


def _receipt(spec_id: str, job_type: str | None, source: str, event_id: str, *, bot_id: object = None) -> Receipt:
    found: Receipt = {"runId": runs.run_id_for(spec_id, source=source, event_id=event_id), "specId": spec_id,
                      "type": job_type}
    if isinstance(bot_id, str) and bot_id:
        found["botId"] = bot_id
    return found


def _data(data: Any) -> Mapping[str, Any]:
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return {}
    return data if isinstance(data, Mapping) else {}
