"""The API's OpenAPI 3.1 document, served at ``/openapi.json``.

Its data schemas (job specs by type, each type's params, the run record, CloudEvent data) are
``schemas/jobplane.json``'s, the same ones the validator uses, so the document cannot drift
from what the API accepts; the envelopes (errors, listings, requests) are here. Pure: a
function returning a dict.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from . import catalogue, schemas
from . import spec as specs
from .settings import JOB_TYPES

VERSION: Final = "0.1.0"
JSON: Final = "application/json"
_ID_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}, **extra}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(status): {"$ref": f"#/components/responses/E{status}"} for status in statuses}


def _param(name: str, where: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": where, "required": where == "path", "description": description, "schema": schema}


ID: Final = {"type": "string", "pattern": _ID_PATTERN, "maxLength": specs.MAX_ID}
SPEC_ID: Final = _param("specId", "path", "Job spec id (DNS-1123 label).", ID)
RUN_ID: Final = _param("runId", "path", "Run id (also the Kubernetes Job's name).", ID)
ARTIFACT: Final = _param("name", "path", "An artifact's file name under the run (metrics.json, confusion_matrix.png, "
                         "model.npz…).", {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"})
BOT_ID: Final = _param("botId", "path", "Bot id.", ID)
LIMIT: Final = _param("limit", "query", "Page size.", {"type": "integer", "minimum": 1, "maximum": 100, "default": 10})
PAGE_TOKEN: Final = _param("pageToken", "query", "The previous page's nextPageToken (a bad one is a 400).",
                           {"type": "string"})
NOT_BLANK: Final = "[^\\s\\x1c-\\x1f]"
"""Some character that is not white space (Python's ``str.strip`` strips U+001C–U+001F too)."""
ETAG: Final = {"ETag": {"description": "The spec's generation; send it back in If-Match.",
                        "schema": {"type": "string"}}}


def _schemas() -> dict[str, Any]:
    return {
        **schemas.components(),
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "required": ["code", "message", "details"], "properties": {
                "code": {"type": "string"}, "message": {"type": "string"},
                "details": {"type": "array", "items": {"type": "object", "required": ["field", "problem"],
                                                       "properties": {"field": {"type": "string"},
                                                                      "problem": {"type": "string"}}}}}}}},
        "SpecList": {"type": "object", "required": ["specs"], "properties": {
            "specs": {"type": "array", "items": _ref("Spec")},
            "nextPageToken": {"type": "string", "description": "There is more: pass it as pageToken."}}},
        "RunList": {"type": "object", "required": ["runs"], "properties": {
            "runs": {"type": "array", "items": _ref("Run")},
            "nextPageToken": {"type": "string", "description": "There is more: pass it as pageToken."}}},
        "EventCatalogue": {"type": "object", "required": ["events"], "properties": {
            "specversion": {"const": "1.0"},
            "events": {"type": "array", "items": {"type": "object", "required": ["type", "dataschema"], "properties": {
                "type": {"type": "string"}, "producer": {"type": "string"}, "consumer": {"type": "string"},
                "subject": {"type": "string"}, "summary": {"type": "string"},
                "direction": {"enum": ["consumed", "emitted", "internal"]},
                "datacontenttype": {"const": "application/json"},
                "dataschema": {"type": "string", "description": "Served here: GET it for the data's JSON Schema."}}}}}},
        "RunRequest": {"type": "object", "additionalProperties": False,
                       "properties": {"params": {"type": "object", "description": "Overrides of the spec's params."},
                                      "force": {"type": "boolean", "description": "Train even when a succeeded run "
                                                "had the same inputs (no CacheHit)."}}},
        "RunAccepted": {"type": "object", "required": ["runId", "specId"],
                        "properties": {"runId": ID, "specId": ID}},
        "Model": {"type": "object", "description": "The bot's promoted model: run id, model URI, metrics.",
                  "properties": {"runId": {"type": "string"}, "modelUri": {"type": "string"},
                                 "metrics": {"type": "object"}}},
        "SearchRequest": {"type": "object", "required": ["query"], "additionalProperties": False,
                          "properties": {"query": {"type": "string", "minLength": 1, "maxLength": 2000, "pattern": NOT_BLANK},
                                         "k": {"type": "integer", "minimum": 1, "maximum": 50, "default": 5}}},
        "SearchResults": {"type": "object", "properties": {
            "results": {"type": "array", "items": {"type": "object", "properties": {
                "articleId": {"type": "string"}, "title": {"type": "string"}, "heading": {"type": "string"},
                "text": {"type": "string", "description": "the passage"},
                "score": {"type": "number", "description": "hybrid: 0.8 cosine + 0.2 BM25 scaled to the query's best"},
                "semanticScore": {"type": "number"}, "lexicalScore": {"type": "number"},
                "matchedBy": {"type": "array", "items": {"enum": ["semantic", "lexical"]}}}}},
            "index": {"type": "object", "properties": {"runId": {"type": "string"}, "uri": {"type": "string"},
                                                       "passages": {"type": "integer"}}}}},
        "PredictRequest": {"type": "object", "required": ["text"], "additionalProperties": False,
                           "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 2000, "pattern": NOT_BLANK}}},
        "Prediction": {"type": "object", "properties": {
            "intent": {"type": ["string", "null"]}, "confidence": {"type": "number"},
            "entities": {"type": "array", "items": {"type": "object"}}, "model": {"type": "object"}}},
    }


def _responses() -> dict[str, Any]:
    reasons = {400: "Invalid request; details list every problem with its field path.",
               404: "No such object or path.", 405: "Method not allowed on this path.",
               409: "Conflicts with the current state.", 412: "If-Match did not match.",
               413: "Request body over JOBPLANE_MAX_EVENT_BYTES.", 415: "The body is not application/json.",
               501: "Not available in this deployment.",
               401: "No credential, or one that authenticates nobody (WWW-Authenticate: Bearer).",
               403: "Refused: a Host or Origin this plane does not answer to, or RBAC denies the verb "
                    "on the resource (kubernetes auth).",
               503: "A dependency is unavailable; retry after the Retry-After header's seconds."}
    return {f"E{status}": _json(_ref("Error"), text) for status, text in reasons.items()}


def _spec_paths() -> dict[str, Any]:
    spec = _json(_ref("Spec"), "The spec, normalized with defaults.", headers=ETAG)
    body = {"required": True, "content": {JSON: {"schema": _ref("Spec")}}}
    return {
        "/v1/specs": {
            "get": {"operationId": "listSpecs", "summary": "List job specs", "parameters": [
                _param("limit", "query", "Page size.", {"type": "integer", "minimum": 1, "maximum": 100, "default": 100}),
                PAGE_TOKEN],
                "responses": {"200": _json(_ref("SpecList"), "Specs by id."), **_errors(400)}},
            "post": {"operationId": "createSpec", "summary": "Create a job spec", "requestBody": body,
                     "responses": {"201": {**spec, "headers": {**ETAG, "Location": {"schema": {"type": "string"}}}},
                                   **_errors(400, 409, 413, 415, 503)}},
        },
        "/v1/specs/{specId}": {
            "parameters": [SPEC_ID],
            "get": {"operationId": "getSpec", "summary": "Get a job spec",
                    "responses": {"200": spec, **_errors(404)}},
            "put": {"operationId": "replaceSpec", "summary": "Replace a job spec", "requestBody": body,
                    "parameters": [_param("If-Match", "header", "ETag of the spec read.", {"type": "string"})],
                    "responses": {"200": spec, **_errors(400, 404, 409, 412, 413, 415, 503)}},
            "delete": {"operationId": "deleteSpec", "summary": "Delete a job spec (its runs stay)",
                       "responses": {"204": {"description": "Deleted."}, **_errors(404)}},
        },
    }


def _run_paths() -> dict[str, Any]:
    accepted = _json(_ref("RunAccepted"), "Requested through the broker; follow the run at Location (404 "
                     "there for the moment until the launch function has created it).",
                     headers={"Location": {"schema": {"type": "string"}}})
    return {
        "/v1/specs/{specId}/runs": {
            "parameters": [SPEC_ID],
            "post": {"operationId": "triggerRun", "summary": "Trigger a run of the spec",
                     "requestBody": {"required": False, "content": {JSON: {"schema": _ref("RunRequest")}}},
                     "responses": {"202": accepted, **_errors(400, 404, 413, 415, 503)}},
            "get": {"operationId": "listSpecRuns", "summary": "The spec's runs, newest first", "parameters": [LIMIT, PAGE_TOKEN],
                    "responses": {"200": _json(_ref("RunList"), "Runs, newest first."), **_errors(400, 404)}},
        },
        "/v1/runs/{runId}": {"parameters": [RUN_ID], "get": {
            "operationId": "getRun", "summary": "Get a run", "responses": {
                "200": _json(_ref("Run"), "The run record."), **_errors(404)}}},
        "/v1/runs/{runId}/artifacts/{name}": {"parameters": [RUN_ID, ARTIFACT], "get": {
            "operationId": "getRunArtifact", "summary": "Download one of the run's artifacts", "responses": {
                "200": {"description": "The artifact's bytes, with the content type its name says (JSON, PNG, "
                        "application/octet-stream for a model).", "content": {
                            "application/json": {"schema": {}}, "image/png": {"schema": {"type": "string", "format": "binary"}},
                            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
                **_errors(404)}}},
        "/v1/runs/{runId}:cancel": {"parameters": [RUN_ID], "post": {
            "operationId": "cancelRun", "summary": "Cancel a run and delete its Job", "responses": {
                "200": _json(_ref("Run"), "The cancelled run."), **_errors(404, 409, 503)}}},
    }


def _bot_paths() -> dict[str, Any]:
    return {
        "/v1/bots/{botId}/model": {"parameters": [BOT_ID], "get": {
            "operationId": "getModel", "summary": "The bot's promoted model", "responses": {
                "200": _json(_ref("Model"), "Model pointer."), **_errors(404)}}},
        "/v1/bots/{botId}/runs": {"parameters": [BOT_ID], "get": {
            "operationId": "listBotRuns", "summary": "The bot's runs, newest first (with their metrics: "
            "?type=bot-test gives the trend of its tests)", "parameters": [LIMIT, PAGE_TOKEN, _param(
                "type", "query", "Only runs of this job type.", {"enum": list(JOB_TYPES)})],
            "responses": {"200": _json(_ref("RunList"), "Runs, newest first."), **_errors(400, 404)}}},
        "/v1/bots/{botId}:predict": {"parameters": [BOT_ID], "post": {
            "operationId": "predict", "summary": "Classify an utterance with the bot's model",
            "requestBody": {"required": True, "content": {JSON: {"schema": _ref("PredictRequest")}}},
            "responses": {"200": _json(_ref("Prediction"), "Intent, confidence, entities."),
                          **_errors(400, 404, 413, 415, 501)}}},
        "/v1/bots/{botId}:search": {"parameters": [BOT_ID], "post": {
            "operationId": "search", "summary": "Search the bot's knowledge base (its promoted kb-index)",
            "requestBody": {"required": True, "content": {JSON: {"schema": _ref("SearchRequest")}}},
            "responses": {"200": _json(_ref("SearchResults"), "The top passages, best first."),
                          **_errors(400, 404, 413, 415, 501)}}},
    }


def _dead_letter_paths() -> dict[str, Any]:
    item = {"type": "object", "properties": {
        "id": {"type": "string", "description": "{date}.{name} (stored by the dead-letter function) or "
                                                "broker-{row} (kept by the embedded broker: the sink refused it)"},
        "where": {"enum": ["store", "broker"]}, "type": {"type": "string"}, "source": {"type": "string"},
        "eventId": {"type": "string"}, "subject": {"type": ["string", "null"]},
        "receivedAt": {"type": ["string", "null"]}, "error": {"type": ["object", "null"]},
        "replayedAt": {"type": ["string", "null"]}, "trigger": {"type": "string"}}}
    replayed = _json({"type": "object", "properties": {"replayed": {"type": "array", "items": {"type": "string"}},
                                                         "more": {"type": "boolean"}}},
                     "Sent to the broker again (source and id kept: a redelivery).")
    dead_id = _param("deadLetterId", "path", "Dead letter id, as listed.", {"type": "string"})
    return {
        "/v1/deadletters": {"get": {
            "operationId": "listDeadLetters", "summary": "Events the broker gave up on",
            "parameters": [LIMIT, PAGE_TOKEN],
            "responses": {"200": _json({"type": "object", "required": ["deadLetters"], "properties": {
                "deadLetters": {"type": "array", "items": item}, "nextPageToken": {"type": "string"}}},
                "Dead letters."), **_errors(400, 503)}}},
        "/v1/deadletters:replay": {"post": {
            "operationId": "replayDeadLetters", "summary": "Replay every dead letter not replayed yet",
            "responses": {"202": replayed, **_errors(503)}}},
        "/v1/deadletters/{deadLetterId}:replay": {"parameters": [dead_id], "post": {
            "operationId": "replayDeadLetter", "summary": "Replay one dead letter",
            "responses": {"202": replayed, **_errors(404, 409, 503)}}},
    }


def _audit_paths() -> dict[str, Any]:
    """The audit trail and the Prometheus scrape."""
    entry = {"type": "object", "required": ["id", "time", "subject", "action", "target", "outcome"], "properties": {
        "id": {"type": "string"}, "time": {"type": "string", "format": "date-time"},
        "subject": {"type": "string", "description": "The authenticated subject, or the CloudEvent's source."},
        "action": {"enum": ["create", "update", "delete", "trigger", "cancel"]},
        "target": {"type": "string", "description": "spec/ID or run/ID."},
        "specId": {"type": "string"}, "botId": {"type": "string"}, "runId": {"type": "string"},
        "outcome": {"type": "string", "description": "ok, or the error's code (not_found, conflict, invalid, …)."},
        "detail": {"type": "string"}}}
    filters = [_param(name, "query", f"Only entries about this {what}.", ID)
               for name, what in (("specId", "spec"), ("botId", "bot"), ("runId", "run"))]
    return {
        "/v1/audit": {"get": {
            "operationId": "listAudit", "summary": "Who created, changed, deleted, triggered or cancelled what",
            "parameters": [*filters, {**LIMIT, "description": "How many entries, newest first."},
                           PAGE_TOKEN],
            "responses": {"200": _json({"type": "object", "required": ["entries"], "properties": {
                "entries": {"type": "array", "items": entry}, "nextPageToken": {"type": "string"}}},
                "Audit entries, newest first."), **_errors(400)}}},
        "/metrics": {"get": {
            "operationId": "metrics", "summary": "This process's counters (Prometheus text format)",
            "responses": {"200": {"description": "Prometheus text exposition format.",
                                  "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
    }


def _event_paths() -> dict[str, Any]:
    event_type = _param("eventType", "path", "A CloudEvent type, as listed.", {"type": "string"})
    return {
        "/v1/events": {"get": {
            "operationId": "listEvents", "summary": "The CloudEvents jobplane takes and emits, each with its dataschema",
            "responses": {"200": _json(_ref("EventCatalogue"), "The catalogue.")}}},
        catalogue.ASYNCAPI_PATH: {"get": {
            "operationId": "getAsyncApi", "summary": "The catalogue as an AsyncAPI 3.0 document",
            "responses": {"200": _json({"type": "object", "required": ["asyncapi"]}, "AsyncAPI 3.0 document.")}}},
        catalogue.SCHEMA_PATH.replace("{type}", "{eventType}"): {"parameters": [event_type], "get": {
            "operationId": "getEventSchema", "summary": "The JSON Schema (2020-12) of one event type's data",
            "responses": {"200": _json({"type": "object"}, "A JSON Schema document."), **_errors(404)}}},
    }


def _plain_paths() -> dict[str, Any]:
    return {
        "/healthz": {"get": {"operationId": "health", "summary": "Liveness", "responses": {
            "200": _json({"type": "object", "properties": {"status": {"const": "ok"}, "broker": {
                "type": "object", "description": "Embedded plane only: deliveries per state, unmatched events per type.",
                "properties": {"pending": {"type": "integer"}, "deadLettering": {"type": "integer"},
                               "dead": {"type": "integer"}, "unmatched": {"type": "object"}}}}}, "Alive.")}}},
        "/openapi.json": {"get": {"operationId": "openapi", "summary": "This document", "responses": {
            "200": _json({"type": "object"}, "OpenAPI 3.1 document.")}}},
        "/": {"get": {"operationId": "dashboard", "summary": "The dashboard: specs, their schedules and last runs "
                      "(without a session: 303 to the login page)", "parameters": [
                          _param("pageToken", "query", "More specs after this spec id.", {"type": "string"})],
                      "responses": {"200": HTML, "303": LOGIN_REDIRECT}}},
        "/runs/{runId}": {"parameters": [RUN_ID], "get": {
            "operationId": "runPage", "summary": "The dashboard's page of a run", "responses": {
                "200": HTML, "303": LOGIN_REDIRECT, "404": HTML_404}}},
        "/bots/{botId}": {"parameters": [BOT_ID], "get": {
            "operationId": "botPage", "summary": "The dashboard's page of a bot: its model, history, try it", "responses": {
                "200": HTML, "303": LOGIN_REDIRECT, "404": HTML_404}}},
        "/login": {
            "get": {"operationId": "loginPage", "summary": "Log a browser in (open /login#token=… as printed by "
                    "jobplane up)", "responses": {"200": HTML}},
            "post": {"operationId": "login", "summary": "Exchange a token for the session cookie",
                     "requestBody": {"required": True, "content": {JSON: {"schema": {
                         "type": "object", "required": ["token"], "additionalProperties": False,
                         "properties": {"token": {"type": "string"}}}}}},
                     "responses": {"204": {"description": "Logged in: Set-Cookie jobplane_session… (HttpOnly, "
                                                          "SameSite=Strict, Path=/)."}, **_errors(400, 401, 403)}},
        },
        "/logout": {"post": {"operationId": "logout", "summary": "Clear the session cookie",
                             "responses": {"204": {"description": "Logged out."}}}},
    }


HTML: Final = {"description": "HTML page.", "content": {"text/html": {"schema": {"type": "string"}}}}
HTML_404: Final = {"description": "No such run or bot (an HTML page; the API's JSON error for an id that cannot "
                                  "name one).", "content": {"text/html": {"schema": {"type": "string"}},
                                                            JSON: {"schema": _ref("Error")}}}
LOGIN_REDIRECT: Final = {"description": "No session: to the login page.", "headers": {"Location": {"schema": {"type": "string"}}}}
OPEN: Final[list[dict[str, list[str]]]] = []
"""``security`` of the paths served without a credential."""


def _security_schemes() -> dict[str, Any]:
    return {
        "bearer": {"type": "http", "scheme": "bearer", "description": (
            "JOBPLANE_AUTH=token: the plane's token ({data-dir}/api.token). JOBPLANE_AUTH=kubernetes: a "
            "Kubernetes token (TokenReview), each request authorized by a SubjectAccessReview in API group "
            "jobplane.dev (resources specs, runs, bots; subresources specs/runs, runs/cancel, bots/predict, "
            "bots/search with verb create).")},
        "session": {"type": "apiKey", "in": "cookie", "name": "jobplane_session",
                    "description": "Set by POST /login (the name carries the port: jobplane_session_8080). "
                                   "Changes made with it need an Origin header matching the Host."},
    }


def _open_paths(paths: dict[str, Any]) -> dict[str, Any]:
    """Mark the paths served without a credential (``security: []``) and add 401/403 to the rest."""
    for path, item in paths.items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            if path in ("/healthz", "/openapi.json", "/login", "/logout"):
                operation["security"] = OPEN
            else:
                operation["responses"].update(_errors(401, 403))
    return paths


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the api function (a fresh copy each call)."""
    return copy.deepcopy({
        "openapi": "3.1.0",
        "info": {"title": "jobplane API", "version": VERSION,
                 "description": "Job specs, runs and models of the jobplane event-driven jobs plane."},
        "paths": _open_paths({**_plain_paths(), **_spec_paths(), **_run_paths(), **_bot_paths(), **_event_paths(),
                              **_dead_letter_paths(), **_audit_paths()}),
        "components": {"schemas": _schemas(), "responses": _responses(), "securitySchemes": _security_schemes()},
        "security": [{"bearer": []}, {"session": []}],
    })
