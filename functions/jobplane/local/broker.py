"""The embedded plane's Knative Broker: the Triggers in ``eventing/``, served on one machine.

The plane's functions are written against Knative's delivery contract (at-least-once, retries
on 5xx/404/408/409/429, dead-lettering, reply events), so the local broker keeps that contract
rather than calling the functions directly. It reads the very Broker and Trigger manifests
that go to the cluster, takes events at ``/{namespace}/{broker}`` as Knative's broker ingress
does (binary or structured mode, 202 on accept, 400 with the reason), and delivers them over
real HTTP in binary mode from a pool of worker threads:

- Filtering and delivery settings (retries, backoff, which statuses are retried) are read
  and decided as in Knative; see ``eventing.py``.
- A 2xx answer with a non-empty body that is not a CloudEvent counts as a failed delivery with
  502, like the broker filter does (and so is retried). A 200 answer carrying a CloudEvent is a
  reply: it re-enters the broker. 202 is never a reply (the data-plane spec).
- Exhausted or non-retryable failures go to ``deadLetterSink`` with the ``knativeerrordest``,
  ``knativeerrorcode`` and ``knativeerrordata`` (base64 of the response body, at most 1024
  characters) extensions; without one, the event is dropped and logged.

No deduplication: Knative does none; the functions do (same ``source`` + ``id``).
"""

from __future__ import annotations

import base64
import heapq
import itertools
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final

import requests

from ..errors import JobplaneError, PermanentError, short
from ..events import Event, from_http, to_http
from .eventing import (
    BrokerConfig,
    Delivery,
    Resolve,
    Trigger,
    attributes_match,
    dialect_matches,
    function_resolver,
    is_retryable,
    load_broker,
    load_triggers,
    parse_duration,
    trigger_from_manifest,
)

__all__ = [
    "BrokerConfig", "Delivery", "LocalBroker", "Resolve", "Trigger", "attributes_match", "dialect_matches",
    "error_extensions", "function_resolver", "is_retryable", "load_broker", "load_triggers", "parse_duration",
    "parse_reply", "trigger_from_manifest",
]

log = logging.getLogger(__name__)

ERROR_DEST: Final = "knativeerrordest"
ERROR_CODE: Final = "knativeerrorcode"
ERROR_DATA: Final = "knativeerrordata"
ERROR_DATA_MAX: Final = 1024
NON_EVENT_STATUS: Final = 502
"""What the broker filter answers when a subscriber's 2xx body is not a CloudEvent."""
DISPATCH_ERROR_STATUS: Final = 500
"""Knative's error code when no response came back at all (connection refused, timeout)."""
MAX_HOPS: Final = 255
"""Knative's default broker TTL: a reply chain longer than this is dropped."""

def error_extensions(*, dest: str, code: int, body: bytes) -> dict[str, str]:
    """The extensions Knative adds to a dead-lettered event."""
    ext = {ERROR_DEST: dest, ERROR_CODE: str(code)}
    if body:
        ext[ERROR_DATA] = base64.b64encode(body).decode("ascii")[:ERROR_DATA_MAX]
    return ext


WSGIStartResponse = Callable[..., Any]


# --- the broker ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Task:
    event: Event
    trigger: Trigger
    delivery: Delivery
    attempt: int = 1
    hops: int = 0
    dead_letter: bool = False
    """True: this task sends ``event`` (already carrying knativeerror*) to the dead-letter sink."""


@dataclass(frozen=True)
class _Response:
    status: int
    body: bytes
    headers: Mapping[str, str]


class LocalBroker:
    """Knative's broker on one machine: WSGI ingress, filtering, retrying delivery, replies.

    Call it as a WSGI app (the plane mounts it at ``/{namespace}/{broker}``), or ``publish``
    an event in-process. Deliveries run on ``workers`` threads; a retry waits on a timer,
    not on a worker.
    """

    def __init__(
        self,
        triggers: Iterable[Trigger],
        *,
        resolve: Resolve,
        delivery: Delivery | None = None,
        name: str = "default",
        namespace: str = "default",
        workers: int = 4,
        request_timeout: float = 30.0,
        log_size: int = 1000,
        headers_for: Callable[[str], Mapping[str, str]] = lambda url: {},
    ) -> None:
        self.name, self.namespace = name, namespace
        self.headers_for = headers_for  # extra headers per URL: the embedded plane's token for its functions
        self.triggers = [t for t in triggers if t.broker == name and t.namespace == namespace]
        self.resolve = resolve
        self.delivery = delivery or Delivery()
        self.request_timeout = request_timeout
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"broker-{name}")
        self._cond = threading.Condition()
        self._timers: list[tuple[float, int, _Task]] = []
        self._seq = itertools.count()
        self._pending = 0
        self._closed = False
        self._local = threading.local()
        self._log: deque[dict[str, Any]] = deque(maxlen=log_size)
        self._scheduler = threading.Thread(target=self._run_timers, name=f"broker-{name}-timers", daemon=True)
        self._scheduler.start()

    @property
    def path(self) -> str:
        """The ingress path, as in Knative's broker URL."""
        return f"/{self.namespace}/{self.name}"

    # --- intake ---

    def publish(self, event: Event, *, hops: int = 0) -> int:
        """Accept an event: schedule one delivery per matching Trigger; how many matched."""
        if hops > MAX_HOPS:
            self._record(event, None, None, 0, "dropped", f"reply chain longer than {MAX_HOPS} hops")
            return 0
        attrs = event.attributes()
        matched = [t for t in self.triggers if t.matches(attrs)]
        for trigger in matched:
            delivery = Delivery.from_spec(trigger.delivery, base=self.delivery)
            self._submit(_Task(event=event, trigger=trigger, delivery=delivery, hops=hops))
        if not matched:
            self._record(event, None, None, 0, "unmatched", "no Trigger matches")
        return len(matched)

    def send(self, event: Event) -> None:
        """``Runtime.send`` for the embedded plane: publish without an HTTP round trip."""
        self.publish(event)

    def __call__(self, environ: dict[str, Any], start_response: WSGIStartResponse) -> Iterable[bytes]:
        """The ingress: POST a CloudEvent (binary or structured) → 202; malformed → 400."""
        path = (environ.get("PATH_INFO") or "/").rstrip("/")
        if path != self.path:
            err = JobplaneError(f"no broker at {path or '/'}: this is {self.path}")
            return _respond(start_response, 404, "not_found", err)
        if environ.get("REQUEST_METHOD") != "POST":
            return _respond(start_response, 405, "method_not_allowed", JobplaneError("the broker ingress takes POST"))
        try:
            event = from_http(_wsgi_headers(environ), _wsgi_body(environ))
        except PermanentError as e:
            return _respond(start_response, 400, e.code, e)
        self.publish(event)
        start_response("202 Accepted", [("Content-Length", "0")])
        return [b""]

    # --- waiting and stopping ---

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every accepted event is delivered, dead-lettered or dropped
        (retries and reply chains included); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        """Stop: pending retries are abandoned, deliveries under way finish."""
        with self._cond:
            self._closed = True
            self._timers.clear()
            self._cond.notify_all()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._scheduler.join(timeout=5)
        with self._cond:  # abandoned retries and cancelled deliveries will never finish
            self._pending = 0
            self._cond.notify_all()

    def deliveries(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The delivery log, oldest first (bounded): one entry per attempt and outcome."""
        with self._cond:
            entries = list(self._log)
        return entries[-limit:] if limit else entries

    # --- scheduling ---

    def _submit(self, task: _Task, delay: float = 0.0) -> None:
        with self._cond:
            if self._closed:
                return
            self._pending += 1
            if delay > 0:
                heapq.heappush(self._timers, (_now() + delay, next(self._seq), task))
                self._cond.notify_all()
                return
        self._start(task)

    def _start(self, task: _Task) -> None:
        try:
            self._pool.submit(self._run, task)
        except RuntimeError:  # shut down between the check and the submit
            self._done()

    def _run_timers(self) -> None:
        while True:
            with self._cond:
                due = self._next_due()
                if due is None:
                    return
            for task in due:
                self._start(task)

    def _next_due(self) -> list[_Task] | None:
        """Under the lock: wait until some timer is due; None once closed."""
        while not self._closed:
            now = _now()
            due = []
            while self._timers and self._timers[0][0] <= now:
                due.append(heapq.heappop(self._timers)[2])
            if due:
                return due
            wait = self._timers[0][0] - now if self._timers else None
            self._cond.wait(wait)
        return None

    def _run(self, task: _Task) -> None:
        try:
            if task.dead_letter:
                self._send_dead_letter(task)
            else:
                self._deliver(task)
        except Exception:  # a bug here must not wedge flush()
            log.exception("broker: delivering %s to %s failed", task.event.id, task.trigger.name)
        finally:
            self._done()

    def _done(self) -> None:
        with self._cond:
            self._pending -= 1
            self._cond.notify_all()

    # --- delivery ---

    def _deliver(self, task: _Task) -> None:
        url, resp = self._dispatch(task.trigger.subscriber, task.event, prefer_reply=True, timeout=task.delivery.timeout)
        if 200 <= resp.status < 300:
            reply, problem = parse_reply(resp)
            if problem is None:
                self._record(task.event, task.trigger, url, task.attempt, "delivered", f"HTTP {resp.status}", resp.status)
                if reply is not None:
                    self._record(reply, task.trigger, url, task.attempt, "reply", f"reply {reply.type} re-enters the broker")
                    self.publish(reply, hops=task.hops + 1)
                return
            resp = _Response(NON_EVENT_STATUS, resp.body, resp.headers)
            self._record(task.event, task.trigger, url, task.attempt, "failed", problem, resp.status)
        if self._retry(task, url, resp):
            return
        self._dead_letter(task, url, resp)

    def _retry(self, task: _Task, url: str, resp: _Response) -> bool:
        """Schedule the next attempt when the response is retryable and retries are left."""
        if not is_retryable(resp.status) or task.attempt > task.delivery.retry:
            return False
        delay = task.delivery.backoff(task.attempt)
        detail = f"HTTP {resp.status}: {short(resp.body, 120)}; retry {task.attempt} in {delay:g}s"
        self._record(task.event, task.trigger, url, task.attempt, "retry", detail, resp.status)
        self._submit(replace(task, attempt=task.attempt + 1), delay)
        return True

    def _dead_letter(self, task: _Task, url: str, resp: _Response) -> None:
        sink = task.delivery.dead_letter_sink
        detail = f"HTTP {resp.status}: {short(resp.body, 120)}"
        if not sink:
            self._record(task.event, task.trigger, url, task.attempt, "dropped", detail + "; no deadLetterSink", resp.status)
            return
        ext = error_extensions(dest=url, code=resp.status, body=resp.body)
        event = replace(task.event, extensions={**task.event.extensions, **ext})
        self._record(task.event, task.trigger, url, task.attempt, "dead-letter", detail, resp.status)
        self._submit(replace(task, event=event, attempt=1, dead_letter=True))

    def _send_dead_letter(self, task: _Task) -> None:
        sink = task.delivery.dead_letter_sink or {}
        url, resp = self._dispatch(sink, task.event, prefer_reply=False, timeout=task.delivery.timeout)
        if 200 <= resp.status < 300:
            self._record(task.event, task.trigger, url, task.attempt, "dead-lettered", f"HTTP {resp.status}", resp.status)
        elif not self._retry(task, url, resp):
            detail = f"dead-letter sink answered HTTP {resp.status}: {short(resp.body, 120)}; event lost"
            self._record(task.event, task.trigger, url, task.attempt, "lost", detail, resp.status)
            log.error("broker: %s %s lost: %s", task.event.type, task.event.id, detail)

    def _dispatch(self, dest: Mapping[str, Any], event: Event, *, prefer_reply: bool, timeout: float | None) -> tuple[str, _Response]:
        """POST ``event`` in binary mode; a missing response is Knative's 500 "dispatch error"."""
        try:
            url = self.resolve(dest)
        except Exception as e:
            return str(dest), _Response(DISPATCH_ERROR_STATUS, f"dispatch error: {e}".encode(), {})
        headers, body = to_http(event)
        headers.update(self.headers_for(url))
        if prefer_reply:
            headers["Prefer"] = "reply"
        try:
            r = self._session().post(url, data=body, headers=headers, timeout=timeout or self.request_timeout)
        except requests.RequestException as e:
            return url, _Response(DISPATCH_ERROR_STATUS, f"dispatch error: {e}".encode(), {})
        return url, _Response(r.status_code, r.content, dict(r.headers))

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _record(
        self, event: Event, trigger: Trigger | None, url: str | None, attempt: int, outcome: str, detail: str, status: int | None = None
    ) -> None:
        entry = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "type": event.type, "source": event.source, "id": event.id, "subject": event.subject,
            "trigger": trigger.name if trigger else None, "url": url, "attempt": attempt,
            "status": status, "outcome": outcome, "detail": detail,
        }
        with self._cond:
            self._log.append(entry)
        level = logging.WARNING if outcome in ("dropped", "dead-letter", "failed") else logging.DEBUG
        log.log(level, "broker %s %s %s → %s: %s", outcome, event.type, event.id, trigger.name if trigger else "-", detail)


def parse_reply(resp: _Response) -> tuple[Event | None, str | None]:
    """A 2xx response: (reply event or None, None) when acceptable, (None, why) when it is a
    failed delivery (a non-empty body that is not a valid CloudEvent)."""
    if not resp.body.strip() and not any(k.lower() == "ce-specversion" for k in resp.headers):
        return None, None
    try:
        event = from_http(resp.headers, resp.body)
    except PermanentError as e:
        if any(k.lower().startswith("ce-") for k in resp.headers) or "cloudevents" in resp.headers.get("Content-Type", ""):
            return None, f"malformed reply event: {e.message}"
        return None, "received a non-empty response not recognized as CloudEvent. The response MUST be either empty or a valid CloudEvent"
    return (None if resp.status == 202 else event), None


def _now() -> float:
    return time.monotonic()


def _wsgi_headers(environ: Mapping[str, Any]) -> dict[str, str]:
    headers = {k[5:].replace("_", "-").lower(): str(v) for k, v in environ.items() if k.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = str(environ["CONTENT_TYPE"])
    return headers


def _wsgi_body(environ: Mapping[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    stream = environ.get("wsgi.input")
    return stream.read(length) if stream is not None and length > 0 else b""


def _respond(start_response: WSGIStartResponse, status: int, code: str, err: JobplaneError) -> list[bytes]:
    body = err.to_body()
    body["error"]["code"] = code
    raw = json.dumps(body).encode()
    reason = {400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}[status]
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(raw)))]
    if status == 405:
        headers.append(("Allow", "POST"))
    start_response(f"{status} {reason}", headers)
    return [raw]
