"""The ``predict`` function: answers a bot's utterances with its promoted model (numpy only).

``predict(rt, bot_id, text)`` is what the API's ``/v1/bots/{botId}:predict`` calls. Models are
cached per bot; the cache is dropped on ``dev.jobplane.model.ready`` and re-checked against
``bots/{botId}/model.json``'s generation at most every few seconds, so a promotion made
elsewhere is picked up without an event too. ``handle`` serves the Knative Service: CloudEvents
(``model.ready``) and plain JSON ``{"botId", "text"}`` requests.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import conventions
from ..errors import NotFoundError, PermanentError, Problem, UnsupportedMediaTypeError, ValidationError
from ..events import MODEL_READY
from ..inference import Model
from ..store import resolve_uri

if TYPE_CHECKING:
    import flask

    from ..events import Event
    from ..runtime import Runtime

RECHECK_SECONDS = 5.0
"""How long a cached model is trusted before ``model.json``'s generation is read again."""
MAX_TEXT = 2000


@dataclass
class _Entry:
    model: Model
    pointer: dict[str, Any]
    generation: int
    checked: float


_cache: dict[tuple[str, str], _Entry] = {}
_lock = threading.Lock()


def predict(rt: Runtime, bot_id: str, text: str) -> dict[str, Any]:
    """``{intent, confidence, fallback, threshold, ranking, entities, model}`` for ``text``.

    ``NotFoundError`` when the bot has no promoted model; ``ValidationError`` for bad text."""
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
        raise ValidationError([Problem("text", f"must be a non-empty string of at most {MAX_TEXT} characters")])
    entry = _model_for(rt, bot_id)
    answer = entry.model.predict(text, threshold=rt.settings.predict_threshold)
    answer["model"] = {"runId": entry.pointer.get("runId"), "uri": entry.pointer.get("modelUri")}
    return answer


def invalidate(rt: Runtime, bot_id: str | None = None) -> None:
    """Drop the cached model of ``bot_id`` (every bot when None)."""
    with _lock:
        for key in [k for k in _cache if k[0] == rt.store.url and bot_id in (None, k[1])]:
            del _cache[key]


def _model_for(rt: Runtime, bot_id: str) -> _Entry:
    key = (rt.store.url, bot_id)
    now = time.monotonic()
    with _lock:
        entry = _cache.get(key)
    if entry is not None and now - entry.checked < RECHECK_SECONDS:
        return entry
    blob = rt.store.read(conventions.bot_model_key(bot_id))  # NotFoundError: no model yet
    if entry is not None and entry.generation == blob.generation:
        entry.checked = now
        return entry
    pointer = json.loads(blob.data)
    model_store, model_key = resolve_uri(pointer["modelUri"], store=rt.store)
    model = Model.from_bytes(model_store.read(model_key).data, encoder_path=rt.settings.encoder_path or None)
    entry = _Entry(model=model, pointer=pointer, generation=blob.generation, checked=now)
    with _lock:
        _cache[key] = entry
    return entry


def on_event(rt: Runtime, event: Event) -> None:
    """``model.ready``: drop the bot's cached model and load the new one now."""
    if event.type != MODEL_READY:
        raise PermanentError(f"predict takes {MODEL_READY} events, got {event.type!r}")
    data = event.data if isinstance(event.data, dict) else {}
    bot_id = data.get("botId") or event.subject
    if not bot_id:
        raise PermanentError("model.ready carries no bot id (data.botId or subject)")
    invalidate(rt, bot_id)
    try:
        _model_for(rt, str(bot_id))
    except NotFoundError:
        pass  # the pointer may not be visible yet; the next predict loads it


def handle(request: flask.Request, rt: Runtime) -> flask.Response:
    """CloudEvents (binary or structured) → cache refresh; JSON ``{"botId","text"}`` → answer."""
    from ..events import is_json
    from ..limits import loads
    from .common import error_response, event_endpoint, json_response, read_body

    if request.headers.get("ce-type") or request.mimetype == "application/cloudevents+json":
        return event_endpoint(request, lambda ev: on_event(rt, ev))
    try:
        if not is_json(request.content_type):
            raise UnsupportedMediaTypeError(
                f"expected a CloudEvent or an application/json body, got {request.content_type or 'no content type'!r}")
        body = loads(read_body(request), "body")
        if not isinstance(body, dict) or not isinstance(body.get("botId"), str):
            raise ValidationError([Problem("botId", "required string")], what="predict request")
        return json_response(predict(rt, body["botId"], str(body.get("text") or "")), 200)
    except PermanentError as err:
        return error_response(err)
