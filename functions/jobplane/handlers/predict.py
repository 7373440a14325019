"""The ``predict`` function: answers a bot's utterances with its promoted model (numpy only).

``predict(rt, bot_id, text)`` is what the API's ``/v1/bots/{botId}:predict`` calls. Models are
cached per bot (``jobplane.pointers``); the cache is dropped on ``dev.jobplane.model.ready``, and
a promotion made elsewhere is picked up within seconds without an event too. ``handle`` serves
the Knative Service: CloudEvents (``model.ready``) and plain JSON ``{"botId", "text"}`` requests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import conventions
from ..errors import NotFoundError, PermanentError, Problem, UnsupportedMediaTypeError, ValidationError
from ..events import MODEL_READY
from ..inference import Model
from ..pointers import PointerCache

if TYPE_CHECKING:
    import flask

    from ..events import Event
    from ..runtime import Runtime

MAX_TEXT = 2000

models: PointerCache[Model] = PointerCache(
    pointer_key=conventions.bot_model_key, uri_field="modelUri", missing="model",
    parse=lambda data, rt: Model.from_bytes(data, encoder_path=rt.settings.encoder_path or None))
"""Each bot's promoted model, by (store, bot)."""


def predict(rt: Runtime, bot_id: str, text: str) -> dict[str, Any]:
    """``{intent, confidence, fallback, threshold, ranking, entities, model}`` for ``text``.

    ``NotFoundError`` when the bot has no promoted model; ``ValidationError`` for bad text."""
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
        raise ValidationError([Problem("text", f"must be a non-empty string of at most {MAX_TEXT} characters")])
    entry = models.get(rt, bot_id)
    answer = entry.value.predict(text, threshold=rt.settings.predict_threshold)
    answer["model"] = {"runId": entry.pointer.get("runId"), "uri": entry.pointer.get("modelUri")}
    return answer


def invalidate(rt: Runtime, bot_id: str | None = None) -> None:
    """Drop the cached model of ``bot_id`` (every bot when None)."""
    models.invalidate(rt, bot_id)


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
        models.get(rt, str(bot_id))
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
