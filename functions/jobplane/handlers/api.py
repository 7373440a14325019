"""The api function: the HTTP API of DESIGN.md, its OpenAPI document, health and the dashboard.

Bot builders and scripts manage specs, trigger runs and follow them here. A trigger does not
launch anything itself: it sends ``dev.jobplane.run.requested`` to the broker and answers 202
with the run id the launch function will use (both derive it from the event's source + id),
so the API and the broker path create runs the same way. Errors are JSON
``{"error": {"code", "message", "details"}}`` with the status their kind carries.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import flask

from .. import auth
from .. import conventions as c
from .. import events as ev
from .. import artifacts, audit, catalogue, datauris, deadletters, metrics, openapi, runs, tracing
from ..errors import (
    ConflictError,
    JobplaneError,
    NotFoundError,
    PreconditionFailedError,
    Problem,
    UnsupportedMediaTypeError,
    ValidationError,
)
from ..limits import MAX_JSON_DEPTH, too_deep
from ..runtime import Runtime
from ..settings import JOB_TYPES
from ..spec import MAX_ID, merge_params, validate_spec
from .common import MethodNotAllowedError, error_response, json_response, read_body
from . import pages
from .login import login, login_page, logout

log = logging.getLogger(__name__)

SOURCE: Final = "/jobplane/api"
DEFAULT_LIMIT: Final = 10
MAX_LIMIT: Final = 100
_ID: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

Params = dict[str, str]
Handler = Callable[[flask.Request, Runtime, Params], flask.Response]


class NotImplementedYetError(JobplaneError):
    """A route whose implementation is not installed in this deployment (501)."""

    status = 501
    code = "not_implemented"


@dataclass(frozen=True)
class Route:
    pattern: re.Pattern[str]
    methods: Mapping[str, Handler]


def handle(request: flask.Request, rt: Runtime) -> flask.Response:
    """Answer the request; a create, update, delete, trigger or cancel leaves an audit entry,
    whatever its outcome (``jobplane.audit``)."""
    seen: dict[str, Any] = {}
    response = _answer(request, rt, seen)
    if seen.get("handler") in AUDITED:
        audit.record(rt.store, _audit_entry(request, rt, seen, response))
    return response


def _answer(request: flask.Request, rt: Runtime, seen: dict[str, Any]) -> flask.Response:
    """Admit (Host, Origin, credential), route by path and method, authorize; map every error
    to the API's JSON error shape. ``seen``: who asked and which handler the path names."""
    try:
        who = auth.admit(auth.RequestView.from_environ(request.environ), settings=rt.settings, access=rt.access)
        seen["who"] = who
        route, params = _route(request.path)
        method = "GET" if request.method == "HEAD" else request.method
        handler = route.methods.get(method)
        if handler is None:
            allowed = ", ".join(sorted(route.methods))
            response = error_response(MethodNotAllowedError(f"{request.method} {request.path}: allowed are {allowed}"))
            response.headers["Allow"] = allowed
            return response
        seen["handler"], seen["params"] = handler, params
        if who is not None:
            rt.access.authorize(who, auth.required(request.method, request.path))
        return handler(request, rt, params)
    except JobplaneError as e:
        if e.status == 401 and pages.is_page(request.method, request.path):
            return pages.to_login(request)  # a browser without a session: the login page, not JSON
        if e.status >= 500:
            log.warning("%s %s: %s", request.method, request.path, e)
        response = error_response(e)
        response.headers.update(getattr(e, "headers", {}))
        return response
    except Exception as e:  # noqa: BLE001 - the client gets a generic 500, the log the details
        log.exception("%s %s failed", request.method, request.path)
        return error_response(e)


def _audit_entry(request: flask.Request, rt: Runtime, seen: Mapping[str, Any], response: flask.Response) -> audit.Entry:
    """The audit entry of an audited request: who (the authenticated user), what (the handler's
    action on the spec or run the request named), the outcome (``ok`` or the error's code)."""
    action, kind = AUDITED[seen["handler"]]
    params, noted = seen.get("params") or {}, audit.noted(request.environ)
    spec_id = noted.get("specId") or params.get("spec_id")
    run_id = noted.get("runId") or params.get("run_id")
    name = run_id if kind == "run" else spec_id
    outcome, detail = audit.OK, f"{request.method} {request.path}"
    if response.status_code >= 400:
        error = (response.get_json(silent=True) or {}).get("error") or {}
        outcome = str(error.get("code") or response.status_code)
        detail += f": {error.get('message', '')}"
    who = seen.get("who")
    return audit.entry(action=action, target=f"{kind}/{name}" if audit.is_id(name) else kind,
                       subject=who.user if who is not None else "anonymous", outcome=outcome, now=rt.clock(),
                       spec_id=spec_id, bot_id=noted.get("botId"), run_id=run_id, detail=detail)


def _route(path: str) -> tuple[Route, Params]:
    path = path.rstrip("/") or "/"
    for route in ROUTES:
        match = route.pattern.fullmatch(path)
        if match:
            return route, match.groupdict()
    raise NotFoundError(f"no such path {path!r}; see /openapi.json")


# --- request helpers ---------------------------------------------------------------------------


def _json_body(request: flask.Request, *, required: bool = True) -> Any:
    """The body as JSON: ``application/json`` (or ``…+json``, or no content type), within the
    size limit (413) and the nesting limit (400); any other content type is a 415."""
    raw = read_body(request)
    if not raw.strip():
        if required:
            raise ValidationError([Problem("body", "required: a JSON object")], what="request")
        return {}
    if request.content_type and not ev.is_json(request.content_type):
        raise UnsupportedMediaTypeError(
            f"the body must be application/json, got {request.content_type!r}",
            details=[Problem("body", "content type must be application/json")],
        )
    if too_deep(raw):
        raise ValidationError([Problem("body", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")], what="request")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValidationError([Problem("body", f"not valid JSON: {e}")], what="request") from e


def _checked_id(value: str, what: str) -> str:
    """Ids in paths are DNS labels; anything else cannot name an object (and never a key)."""
    if len(value) > MAX_ID or not _ID.match(value):
        raise NotFoundError(f"no {what} {value!r}")
    return value


def _limit(request: flask.Request) -> int:
    raw = request.args.get("limit", str(DEFAULT_LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise ValidationError([Problem("limit", f"must be an integer between 1 and {MAX_LIMIT}, got {raw!r}")],
                              what="query")
    return int(raw)


def _read_json(rt: Runtime, key: str, missing: str) -> tuple[Any, int]:
    try:
        blob = rt.store.read(key)
    except NotFoundError:
        raise NotFoundError(missing) from None
    return json.loads(blob.data), blob.generation


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


# --- plain pages ---------------------------------------------------------------------------------


def healthz(request: flask.Request, rt: Runtime, params: Params) -> flask.Response:
    """Alive; with an in-process broker, its deliveries per state and unmatched events per type."""
    return json_response({"status": "ok", **({"broker": rt.broker.stats()} if rt.broker is not None else {})})


def openapi_json(request: flask.Request, rt: Runtime, params: Params) -> flask.Response:
    return json_response(openapi.document())


# --- specs ---------------------------------------------------------------------------------------


def _page_token(request: flask.Request, valid: Callable[[str], bool] = lambda token: True) -> str:
    """The ``pageToken`` query parameter ("" for the first page); 400 at ``pageToken`` for one
    that no listing gave."""
    token = request.args.get("pageToken", "")
    if token and not valid(token):
        raise ValidationError([Problem("pageToken", "must be a nextPageToken of this listing")], what="query")
    return token


def _paged(key: str, items: list[Any], next_token: str | None) -> dict[str, Any]:
    """A listing's answer: items under their plural key, ``nextPageToken`` only when there is more."""
    return {key: items, **({"nextPageToken": next_token} if next_token else {})}


def list_specs(request: flask.Request, rt: Runtime, params: Params) -> flask.Response:
    limit = _limit(request) if "limit" in request.args else MAX_LIMIT
    token = _page_token(request, lambda t: len(t) <= MAX_ID and bool(_ID.match(t)))
    after = c.spec_key(token) if token else ""
    keys = list(rt.store.list("specs/", start_after=after, limit=limit + 1))
    specs = []
    for key in keys[:limit]:
        try:
            specs.append(json.loads(rt.store.read(key).data))
        except NotFoundError:
            continue  # deleted between list and read
    body: dict[str, Any] = {"specs": specs}
    if len(keys) > limit:
        body["nextPageToken"] = keys[limit - 1][len("specs/") : -len(".json")]
    return json_response(body)


def create_spec(request: flask.Request, rt: Runtime, params: Params) -> flask.Response:
    body = _json_body(request)
    audit.note(request.environ, **_spec_fields(body))
    spec = _stored_form(validate_spec(body), rt=rt)
    try:
        generation = rt.store.write(c.spec_key(spec["id"]), _dump(spec), if_generation_match=0)
    except PreconditionFailedError:
        raise ConflictError(f"spec {spec['id']!r} exists; PUT /v1/specs/{spec['id']} to change it") from None
    headers = {"Location": f"/v1/specs/{spec['id']}", "ETag": f'"{generation}"'}
    return json_response(spec, 201, headers=headers)


def get_spec(request: flask.Request, rt: Runtime, params: Params) -> flask.Response:
    spec_id = _checked_id(params["spec_id"], "spec")
    spec, generation = _read_json(rt, c.spec_key(spec_id), f"no spec {spec_id!r}")
    return json_response(spec, headers={"ETag": f'"{generation}"'})


def put_spec(request: flask.Request, rt: Runtime, params: Params) -> flask.Response:
    spec_id = _checked_id(params["spec_id"], "spec")
    body = _json_body(request)
    audit.note(request.environ, botId=_spec_fields(body).get("botId"))
    if isinstance(body, dict) and body.setdefault("id", spec_id) != spec_id:
        raise ValidationError([Problem("spec.id", f"must match the path ({spec_id!r}), got {body['id']!r}")],
                              what="job spec")
    spec = validate_spec(body)
    _, generation = _read_json(rt, c.spec_key(spec_id), f"no spec {spec_id!r}; POST /v1/specs to create it")
    _check_if_match(request, generation)
    spec = _stored_form(spec, rt=rt)
    try:
        new_generation = rt.store.write(c.spec_key(spec_id), _dump(spec), if_generation_match=generation)
    except PreconditionFailedError:
        raise ConflictError(f"spec {spec_id!r} changed while it was being replaced; read it and retry") from None
    return json_response(spec, headers={"ETag": f'"{new_generation}"'})


def _spec_fields(body: Any) -> dict[str, Any]:
    """A spec body's id and bot (for its audit entry), as far as it has them."""
    if not isinstance(body, Mapping):
        return {}
    params = body.get("params")
    return {"specId": body.get("id"), "botId": params.get("botId") if isinstance(params, Mapping) else None}


def _check_if_match(request: flask.Request, generation: int) -> None:
    wanted = request.headers.get("If-Match")
    if wanted and wanted.strip() not in ("*", f'"{generation}"', str(generation)):
        raise PreconditionFailedError(f"If-Match {wanted} does not match the spec's ETag \"{generation}\"")


def delete_spec(request: flask.Request, rt: Runtime, params: Params) -> flask.Response:
    spec_id = _checked_id(params["spec_id"], "spec")
    try:
        stored, _ = _read_json(rt, c.spec_key(spec_id), f"no spec {spec_id!r}")
        audit.note(request.environ, botId=_spec_fields(stored).get("botId"))
        rt.store.delete(c.spec_key(spec_id))
    except NotFoundError:
        raise NotFoundError(f"no spec {spec_id!r}") from None
    return flask.Response(status=204)


def _stored_form(spec: dict[str, Any], *, rt: Runtime) -> dict[str, Any]:
    """Inline training examples move to ``bots/{botId}/data/`` and the spec keeps their URI:
    a Job gets training data by URI only (DESIGN.md, "Job specs")."""
    params = spec.get("params") or {}
    _check_local_uris(params, rt=rt)
    data = params.get("trainingData")
    if spec.get("type") != "training" or not isinstance(data, Mapping) or "examples" not in data:
        return spec
    body = _dump({"examples": data["examples"]})
    key = f"{c.bot_data_prefix(params['botId'])}sha256-{hashlib.sha256(body).hexdigest()[:32]}.json"
    try:
        rt.store.write(key, body, if_generation_match=0)
    except PreconditionFailedError:
        pass  # same content, same key: already stored
    stored = copy.deepcopy(spec)
    stored["params"]["trainingData"] = {"uri": rt.store.uri(key)}
    return stored


def _check_local_uris(params: Mapping[str, Any], *, rt: Runtime) -> None:
    """Data URIs must lie under the bot's own ``bots/{botId}/`` or an allowed prefix (``datauris``)."""
    datauris.check_params(params, store_url=rt.store.url, prefixes=rt.settings.data_prefixes)


# --- runs ----------------------------------------------------------------------------------------


def trigger_run(request: flask.Request, rt: Runtime, params: Params) -> flask.Response:
    """Send ``run.requested`` and answer 202 with the run id launch will give the run."""
    spec_id = _checked_id(params["spec_id"], "spec")
    stored, _ = _read_json(rt, c.spec_key(spec_id), f"no spec {spec_id!r}")
    audit.note(request.environ, botId=_spec_fields(stored).get("botId"))
    body = _json_body(request, required=False)
    overrides = _run_overrides(body, stored, rt=rt)
    data: dict[str, Any] = {"specId": spec_id}
    if overrides:
        data["params"] = overrides
    if body.get("force") is True:
        data["force"] = True  # train even when a succeeded run had the same inputs (no cache hit)
    trace = tracing.parse(request.headers.get(c.TRACE_EXTENSION)) or tracing.new()
    event = ev.new_event(ev.RUN_REQUESTED, source=SOURCE, subject=spec_id, data=data,
                         extensions={c.TRACE_EXTENSION: trace})
    run_id = runs.run_id_for(spec_id, source=SOURCE, event_id=event.id)
    audit.note(request.environ, runId=run_id)
    rt.send(event)
    return json_response({"runId": run_id, "specId": spec_id}, 202, headers={"Location": f"/v1/runs/{run_id}"})


def _run_overrides(body: Any, stored: Mapping[str, Any], *, rt: Runtime) -> dict[str, Any]:
    """The body's ``params`` overrides, checked against the stored spec before anything is sent."""
    if not isinstance(body, Mapping):
        raise ValidationError([Problem("body", f"must be an object, got {type(body).__name__}")], what="run request")
    unknown = [Problem(f"body.{k}", "unknown field (expected params, force)") for k in body if k not in ("params", "force")]
    if not isinstance(body.get("force", False), bool):
        unknown.append(Problem("body.force", "must be a boolean"))
    overrides = body.get("params", {})
    if unknown or not isinstance(overrides, Mapping):
        raise ValidationError(unknown or [Problem("body.params", "must be an object")], what="run request")
    merged = {**stored, "params": merge_params(stored.get("params") or {}, overrides)}  # botId: one bot of a fan-out spec
    effective = _stored_form(validate_spec(merged), rt=rt)
    return {key: effective["params"][key] for key in overrides}


def list_spec_runs(request: flask.Request, rt: Runtime, params: Params) -> flask.Response:
    spec_id = _checked_id(params["spec_id"], "spec")
    page = runs.page_runs(rt.store, spec_id=spec_id, limit=_limit(request), token=_page_token(request))
    if not page.runs and not page.next_token:
        _read_json(rt, c.spec_key(spec_id), f"no spec {spec_id!r}")
    return json_response(_paged("runs", page.runs, page.next_token))


def list_bot_runs(request: flask.Request, rt: Runtime, params: Params) -> flask.Response:
    bot_id = _checked_id(params["bot_id"], "bot")
    job_type = request.args.get("type") or None
    if job_type is not None and job_type not in JOB_TYPES:
        raise ValidationError([Problem("type", f"must be one of {', '.join(JOB_TYPES)}, got {job_type!r}")], what="query")
    page = runs.page_runs(rt.store, bot_id=bot_id, limit=_limit(request), job_type=job_type,
                          token=_page_token(request))
    return json_response(_paged("runs", page.runs, page.next_token))


def get_run(request: flask.Request, rt: Runtime, params: Params) -> flask.Response:
    run_id = _checked_id(params["run_id"], "run")
    try:
        return json_response(runs.get_run(rt.store, run_id))
    except NotFoundError:
        raise NotFoundError(f"no run {run_id!r}") from None


def get_artifact(request: flask.Request, rt: Runtime, params: Params) -> flask.Response:
    """One artifact of the run, from under its ``runs/{runId}/artifacts/`` prefix only."""
    run_id = _checked_id(params["run_id"], "run")
    found = artifacts.read_artifact(rt.store, run_id, params["name"])
    disposition = "inline" if found.inline else "attachment"
    headers = {"Content-Disposition": f'{disposition}; filename="{found.name}"', "X-Content-Type-Options": "nosniff",
               "Content-Length": str(len(found.data)), "Content-Security-Policy": "default-src 'none'; sandbox"}
    return flask.Response(_chunks(found.data), status=200, content_type=found.content_type, headers=headers)


def _chunks(data: bytes, size: int = 256 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


def cancel_run(request: flask.Request, rt: Runtime, params: Params) -> flask.Response:
    """Mark the run cancelled, then delete its Job. Cancelling a cancelled run deletes the Job
    again (so a retry after a failed delete works); any other final state is a 409."""
    run_id = _checked_id(params["run_id"], "run")

    def mutate(run: runs.Run) -> runs.Run | None:
        audit.note(request.environ, specId=run.get("specId"), botId=run.get("botId"))
        if run["state"] == "cancelled":
            return None
        if runs.is_terminal(run):
            raise ConflictError(f"run {run_id!r} is already {run['state']}; nothing to cancel")
        return runs.transition(run, "cancelled", reason="Cancelled through the API", now=rt.clock())

    try:
        run = runs.update_run(rt.store, run_id, mutate)
    except NotFoundError:
        raise NotFoundError(f"no run {run_id!r}") from None
    job = run.get("job") or {}
    rt.launcher.cancel(str(job.get("name") or run_id))
    return json_response(run)


# --- bots ----------------------------------------------------------------------------------------


def get_model(request: flask.Request, rt: Runtime, params: Params) -> flask.Response:
    bot_id = _checked_id(params["bot_id"], "bot")
    pointer, _ = _read_json(rt, c.bot_model_key(bot_id), f"bot {bot_id!r} has no promoted model yet")
    return json_response(pointer)


def predict(request: flask.Request, rt: Runtime, params: Params) -> flask.Response:
    bot_id = _checked_id(params["bot_id"], "bot")
    body = _json_body(request)
    if not isinstance(body, Mapping) or set(body) - {"text"}:
        raise ValidationError([Problem("body", 'must be an object {"text": "..."}')], what="predict request")
    try:
        predict_module = importlib.import_module(f"{__package__}.predict")
    except ImportError as e:
        raise NotImplementedYetError(f"prediction is not available in this deployment: {e}") from e
    fn = getattr(predict_module, "predict", None)
    if fn is None:
        raise NotImplementedYetError("prediction is not available in this deployment")
    return json_response(fn(rt, bot_id, body.get("text")))


def search(request: flask.Request, rt: Runtime, params: Params) -> flask.Response:
    """The bot's knowledge base, searched: ``{"query", "k"?}`` → the top passages."""
    bot_id = _checked_id(params["bot_id"], "bot")
    body = _json_body(request)
    if not isinstance(body, Mapping) or set(body) - {"query", "k"}:
        raise ValidationError([Problem("body", 'must be an object {"query": "...", "k": 5}')], what="search request")
    try:
        from .. import search as kb_search
        from ..encoder import EncoderNotFound

        return json_response(kb_search.search(rt, bot_id, body.get("query"), body.get("k", kb_search.DEFAULT_K)))
    except (ImportError, EncoderNotFound) as e:
        raise NotImplementedYetError(f"search is not available in this deployment: {e}") from e


# --- the CloudEvents catalogue ------------------------------------------------------------------


def list_events(request: flask.Request, rt: Runtime, params: Params) -> flask.Response:
    return json_response(catalogue.catalogue())


def asyncapi_json(request: flask.Request, rt: Runtime, params: Params) -> flask.Response:
    return json_response(catalogue.asyncapi(openapi.VERSION))


def event_schema(request: flask.Request, rt: Runtime, params: Params) -> flask.Response:
    return json_response(catalogue.data_schema(params["event_type"]))


# --- dead letters ------------------------------------------------------------------------------


def list_dead_letters(request: flask.Request, rt: Runtime, params: Params) -> flask.Response:
    page = deadletters.list_dead_letters(rt.store, broker=rt.broker, limit=_limit(request),
                                         token=_page_token(request, deadletters.is_store_id))
    return json_response(_paged("deadLetters", page.items, page.next_token))


def replay_dead_letter(request: flask.Request, rt: Runtime, params: Params) -> flask.Response:
    deadletters.replay(rt.store, rt.send, params["dead_id"], broker=rt.broker, now=rt.clock(),
                       key=rt.settings.callback_key)
    return json_response({"replayed": [params["dead_id"]], "more": False}, status=202)


def replay_dead_letters(request: flask.Request, rt: Runtime, params: Params) -> flask.Response:
    done, more = deadletters.replay_all(rt.store, rt.send, broker=rt.broker, now=rt.clock(),
                                        key=rt.settings.callback_key)
    return json_response({"replayed": done, "more": more}, status=202)


# --- audit trail, metrics ---------------------------------------------------------------------


def list_audit(request: flask.Request, rt: Runtime, params: Params) -> flask.Response:
    """Audit entries newest first, filtered by ``specId``, ``botId``, ``runId``."""
    filters = {name: request.args.get(name, "") for name in ("specId", "botId", "runId")}
    for name, value in filters.items():
        if value and not audit.is_id(value):
            raise ValidationError([Problem(name, f"must be an id (DNS-1123 label), got {value!r}")], what="query")
    page = audit.query(rt.store, filters=filters, limit=_limit(request), token=request.args.get("pageToken", ""))
    body: dict[str, Any] = {"entries": page.entries}
    if page.next_token:
        body["nextPageToken"] = page.next_token
    return json_response(body)


def prometheus(request: flask.Request, rt: Runtime, params: Params) -> flask.Response:
    """This process's counters in Prometheus' text format (``jobplane.metrics``)."""
    return flask.Response(metrics.render(), status=200, headers={"Content-Type": metrics.CONTENT_TYPE})


AUDITED: Final[dict[Handler, tuple[str, str]]] = {
    create_spec: ("create", "spec"), put_spec: ("update", "spec"), delete_spec: ("delete", "spec"),
    trigger_run: ("trigger", "run"), cancel_run: ("cancel", "run"),
}
"""Handlers whose every call is an audit entry: (action, kind of target)."""

ROUTES: Final[tuple[Route, ...]] = (
    Route(re.compile(r"/"), {"GET": pages.overview}),
    Route(re.compile(r"/runs/(?P<run_id>[^/:]+)"), {"GET": pages.run_page}),
    Route(re.compile(r"/bots/(?P<bot_id>[^/:]+)"), {"GET": pages.bot_page}),
    Route(re.compile(r"/healthz"), {"GET": healthz}),
    Route(re.compile(r"/openapi\.json"), {"GET": openapi_json}),
    Route(re.compile(r"/metrics"), {"GET": prometheus}),
    Route(re.compile(r"/login"), {"GET": login_page, "POST": login}),
    Route(re.compile(r"/logout"), {"POST": logout}),
    Route(re.compile(r"/v1/specs"), {"GET": list_specs, "POST": create_spec}),
    Route(re.compile(r"/v1/specs/(?P<spec_id>[^/:]+)"), {"GET": get_spec, "PUT": put_spec, "DELETE": delete_spec}),
    Route(re.compile(r"/v1/specs/(?P<spec_id>[^/:]+)/runs"), {"GET": list_spec_runs, "POST": trigger_run}),
    Route(re.compile(r"/v1/runs/(?P<run_id>[^/:]+)"), {"GET": get_run}),
    Route(re.compile(r"/v1/runs/(?P<run_id>[^/:]+):cancel"), {"POST": cancel_run}),
    Route(re.compile(r"/v1/runs/(?P<run_id>[^/:]+)/artifacts/(?P<name>[^/:]+)"), {"GET": get_artifact}),
    Route(re.compile(r"/v1/bots/(?P<bot_id>[^/:]+)/model"), {"GET": get_model}),
    Route(re.compile(r"/v1/bots/(?P<bot_id>[^/:]+)/runs"), {"GET": list_bot_runs}),
    Route(re.compile(r"/v1/bots/(?P<bot_id>[^/:]+):predict"), {"POST": predict}),
    Route(re.compile(r"/v1/bots/(?P<bot_id>[^/:]+):search"), {"POST": search}),
    Route(re.compile(r"/v1/events"), {"GET": list_events}),
    Route(re.compile(r"/v1/asyncapi\.json"), {"GET": asyncapi_json}),
    Route(re.compile(r"/v1/events/(?P<event_type>[^/:]+)/schema"), {"GET": event_schema}),
    Route(re.compile(r"/v1/deadletters"), {"GET": list_dead_letters}),
    Route(re.compile(r"/v1/audit"), {"GET": list_audit}),
    Route(re.compile(r"/v1/deadletters:replay"), {"POST": replay_dead_letters}),
    Route(re.compile(r"/v1/deadletters/(?P<dead_id>[^/:]+):replay"), {"POST": replay_dead_letter}),
)
