"""A small stateful Kubernetes API server over real HTTP on 127.0.0.1, for testing the
launcher through the official client: batch/v1 Jobs, core/v1 Pods and Namespaces with
create/get/list/replace/patch/delete/watch, Status bodies, resourceVersions, label selectors,
delete propagation, injected faults and controller hooks (see ``state.ClusterState``); and
TokenReview/SubjectAccessReview from a table of tokens and grants (``reviews.Reviews``)."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .reviews import ACCESS_REVIEWS, TOKEN_REVIEWS, Reviews
from .selectors import SelectorError
from .state import RESOURCES, ClusterState, Obj, merge_patch
from .status import ApiError, status_body

MAX_WATCH_SECONDS = 60
PENDING_WORKLOADS = re.compile(
    r"/apis/visibility\.kueue\.x-k8s\.io/v1beta1/namespaces/(?P<ns>[^/]+)/localqueues/(?P<lq>[^/]+)/pendingworkloads")
"""Kueue's visibility API: a LocalQueue's pending Workloads with their positions."""
MERGE_TYPES = ("application/merge-patch+json", "application/strategic-merge-patch+json", "application/apply-patch+yaml")


def route(path: str) -> tuple[str, str | None, str | None, str | None]:
    """``(plural, namespace, name, subresource)``; ``namespace`` is None for cluster-wide lists."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        gv, rest = "v1", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        gv, rest = f"{parts[1]}/{parts[2]}", parts[3:]
    else:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    ns: str | None = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        ns, rest = rest[1], rest[2:]
    if not rest or rest[0] not in RESOURCES or RESOURCES[rest[0]].group_version != gv or len(rest) > 3:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    plural = rest[0]
    if RESOURCES[plural].namespaced is False:
        ns = ""
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if sub not in (None, "status"):
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    return plural, ns, name, sub


def pending_workloads(state: ClusterState, ns: str, queue: str) -> Obj:
    """The Workloads of LocalQueue ``queue`` without quota, in Kueue's order: priority, then age."""
    items, _rv = state.list("workloads", ns)

    def waiting(w: Obj) -> bool:
        conds = {c.get("type"): c.get("status") for c in (w.get("status") or {}).get("conditions") or []}
        return conds.get("QuotaReserved") != "True" and (w.get("spec") or {}).get("queueName") == queue

    pending = sorted((w for w in items if waiting(w)),
                     key=lambda w: (-int((w.get("spec") or {}).get("priority") or 0), w["metadata"]["creationTimestamp"]))
    return {"kind": "PendingWorkloadsSummary", "apiVersion": "visibility.kueue.x-k8s.io/v1beta1", "metadata": {},
            "items": [{"metadata": {"name": w["metadata"]["name"], "namespace": ns,
                                    "creationTimestamp": w["metadata"]["creationTimestamp"]},
                       "priority": int((w.get("spec") or {}).get("priority") or 0), "localQueueName": queue,
                       "positionInLocalQueue": i, "positionInClusterQueue": i}
                      for i, w in enumerate(pending)]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in separate writes
    server: FakeHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    @property
    def state(self) -> ClusterState:
        return self.server.state

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        body = self._read_body()
        try:
            if url.path == "/version":
                return self._send(200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0-jobplane-fake"})
            if method == "POST" and url.path in (TOKEN_REVIEWS, ACCESS_REVIEWS):
                return self._send(201, self.server.reviews.answer(url.path, self._json(body)) or {})
            pending = PENDING_WORKLOADS.fullmatch(url.path)
            if method == "GET" and pending:
                if not self.server.visibility:
                    raise ApiError(404, "NotFound", "the server could not find the requested resource")
                return self._send(200, pending_workloads(self.state, pending["ns"], pending["lq"]))
            plural, ns, name, sub = route(url.path)
            fault = self.state.take_fault(method, plural)
            if fault:
                return self._fault(fault)
            self._dispatch(method, plural, ns, name, sub, query, body)
        except ApiError as e:
            self._send(e.code, e.body(), headers=e.headers)
        except SelectorError as e:
            self._send(400, status_body(400, "BadRequest", str(e)))
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _dispatch(self, method: str, plural: str, ns: str | None, name: str | None, sub: str | None,
                  query: dict[str, str], body: bytes) -> None:
        st = self.state
        if name is None:
            if method == "GET" and query.get("watch") in ("true", "1"):
                return self._watch(plural, ns, query)
            if method == "GET":
                return self._list(plural, ns, query)
            if method == "POST" and ns is not None:
                return self._send(201, st.create(plural, ns, self._json(body)))
        elif ns is not None:
            if method == "GET":
                return self._send(200, st.get(plural, ns, name))
            if method == "PUT":
                return self._send(200, st.replace(plural, ns, name, self._json(body), status_only=sub == "status"))
            if method == "PATCH":
                return self._send(200, st.patch(plural, ns, name, self._patch_body(body), status_only=sub == "status"))
            if method == "DELETE" and sub is None:
                opts = self._json(body) if body.strip() else {}
                policy = query.get("propagationPolicy") or opts.get("propagationPolicy")
                if opts.get("orphanDependents") is True:
                    policy = policy or "Orphan"
                return self._send(200, st.delete(plural, ns, name, propagation=policy,
                                                 preconditions=opts.get("preconditions")))
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def _list(self, plural: str, ns: str | None, query: dict[str, str]) -> None:
        items, rv = self.state.list(plural, ns, label_selector=query.get("labelSelector"),
                                    field_selector=query.get("fieldSelector"))
        res = RESOURCES[plural]
        for item in items:
            item.pop("apiVersion", None)
            item.pop("kind", None)
        meta: Obj = {"resourceVersion": str(rv)}
        start = int(query.get("continue") or 0)  # an opaque token for clients; an offset here
        limit = int(query.get("limit") or 0)
        if limit and start + limit < len(items):
            meta["continue"] = str(start + limit)
            meta["remainingItemCount"] = len(items) - start - limit
        page = items[start:start + limit] if limit else items[start:]
        self._send(200, {"kind": f"{res.kind}List", "apiVersion": res.group_version, "metadata": meta, "items": page})

    def _watch(self, plural: str, ns: str | None, query: dict[str, str]) -> None:
        raw_rv = query.get("resourceVersion")
        since = int(raw_rv) if raw_rv and raw_rv != "0" else None
        if since is not None and since < self.state.oldest_rv() - 1:
            raise ApiError(410, "Expired", f"too old resource version: {since} ({self.state.oldest_rv()})")
        timeout = min(float(query.get("timeoutSeconds") or MAX_WATCH_SECONDS), MAX_WATCH_SECONDS)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for kind, obj in self.state.watch(plural, ns, since=since, label_selector=query.get("labelSelector"),
                                          field_selector=query.get("fieldSelector"), timeout=timeout):
            self._chunk(json.dumps({"type": kind, "object": obj}).encode() + b"\n")
        self._chunk(b"")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _fault(self, fault: Any) -> None:
        if fault.delay:
            time.sleep(fault.delay)
        reason = {429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
                  504: "Timeout", 403: "Forbidden"}.get(fault.status, "Unknown")
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        self._send(fault.status, status_body(fault.status, reason, fault.message), headers=headers)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _json(self, body: bytes) -> Obj:
        try:
            value = json.loads(body or b"{}")
        except json.JSONDecodeError as e:
            raise ApiError(400, "BadRequest", f"couldn't get version/kind; json parse error: {e}") from e
        if not isinstance(value, dict):
            raise ApiError(400, "BadRequest", "expected a JSON object")
        return value

    def _patch_body(self, body: bytes) -> Obj:
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype not in MERGE_TYPES:
            raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - accepted media types include: {', '.join(MERGE_TYPES)}")
        return self._json(body)

    def _send(self, code: int, body: Obj, *, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, val in (headers or {}).items():
            self.send_header(k, val)
        self.end_headers()
        self.wfile.write(data)


class FakeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, state: ClusterState) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.state = state
        self.reviews = Reviews()
        self.visibility = True
        """Whether Kueue's visibility API (pending workloads' positions) is served."""


class FakeKubeApi:
    """``with FakeKubeApi() as api:`` — a running server at ``api.url`` with ``api.state``."""

    def __init__(self, *, auto_pods: bool = True) -> None:
        self.state = ClusterState(auto_pods=auto_pods)
        self._server = FakeHTTPServer(self.state)
        self._thread = threading.Thread(target=lambda: self._server.serve_forever(poll_interval=0.02), name="fake-kube-api", daemon=True)

    @property
    def reviews(self) -> Reviews:
        """TokenReview/SubjectAccessReview answers: ``reviews.add_user(token, name)``,
        ``reviews.grant(name, verb, resource)``."""
        return self._server.reviews

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeKubeApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.state.close()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeKubeApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def api_client(self) -> Any:
        """An official ``kubernetes.client.ApiClient`` pointed at this server."""
        from kubernetes import client

        config = client.Configuration()
        config.host = self.url
        config.verify_ssl = False
        return client.ApiClient(config)


__all__ = ["FakeKubeApi", "Reviews", "merge_patch"]
