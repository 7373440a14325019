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
  characters) extensions. Where Knative would drop the event (no sink, or the sink refused it
  too) this broker keeps it in its journal as ``dead``, logged, listed and replayable.
- Durable: every delivery is a row in the journal (``journal.py``, SQLite) before the ingress
  answers 202 or ``publish`` returns, a reply is kept before its parent delivery counts as
  done, and ``resume()`` picks up what a previous process left. At least once, best-effort
  FIFO, as Knative: duplicates are possible and absorbed by the functions.
- Events no Trigger matches are counted per type and logged once per type (Knative drops them
  silently); ``stats()`` shows the counts.

No deduplication: Knative does none; the functions do (same ``source`` + ``id``).
"""

from __future__ import annotations

import base64
import heapq
import itertools
import json
import logging
import sqlite3
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import requests

from .. import metrics
from ..errors import RETRY_AFTER_SECONDS, JobplaneError, PermanentError, UnavailableError, short
from ..events import Event, from_http, to_dict, to_http
from ..limits import DEFAULT_MAX_EVENT_BYTES, read_capped
from . import journal as jr
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
DEAD_ID_PREFIX: Final = "broker-"
"""Dead-letter ids of the journal's dead rows, as the api lists them."""
DRAIN_TIMEOUT_S: Final = 10.0
"""How long ``close`` waits for deliveries under way; what is left stays in the journal."""

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
    row: int = 0
    """The journal row this task delivers."""
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
    not on a worker. ``db`` is the journal's SQLite file (``":memory:"``: this process only);
    ``resume()`` delivers what an earlier process left in it.
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
        db: str | Path = ":memory:",
        headers_for: Callable[[str], Mapping[str, str]] = lambda url: {},
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        receipt: Callable[[Event], list[dict[str, Any]] | None] = lambda event: None,
    ) -> None:
        self.name, self.namespace = name, namespace
        self.receipt = receipt  # the runs an accepted event will make (``receipts``), answered to its sender
        self.headers_for = headers_for  # extra headers per URL: the embedded plane's token for its functions
        self.max_event_bytes = max_event_bytes
        self.triggers = [t for t in triggers if t.broker == name and t.namespace == namespace]
        self.resolve = resolve
        self.delivery = delivery or Delivery()
        self.request_timeout = request_timeout
        self.journal = jr.Journal(db)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"broker-{name}")
        self._cond = threading.Condition()
        self._timers: list[tuple[float, int, _Task]] = []
        self._seq = itertools.count()
        self._pending = 0
        self._running = 0
        self._accepting = True
        self._closed = False
        self._unmatched: Counter[str] = Counter()
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
        """Accept an event: keep one delivery per matching Trigger in the journal, then
        schedule them; how many matched. ``UnavailableError`` once the broker is stopping."""
        with self._cond:
            if not self._accepting:
                raise UnavailableError(f"broker {self.path} is shutting down: send again after a restart")
        return self._accept(event, hops=hops)

    def send(self, event: Event) -> None:
        """``Runtime.send`` for the embedded plane: publish without an HTTP round trip."""
        self.publish(event)

    def __call__(self, environ: dict[str, Any], start_response: WSGIStartResponse) -> Iterable[bytes]:
        """The ingress: POST a CloudEvent (binary or structured) → 202 once kept; malformed → 400,
        over ``max_event_bytes`` → 413 (unread), not a CloudEvent → 415; shutting down or a
        journal that cannot keep it now → 503 with ``Retry-After``."""
        path = (environ.get("PATH_INFO") or "/").rstrip("/")
        if path != self.path:
            err = JobplaneError(f"no broker at {path or '/'}: this is {self.path}")
            return _respond(start_response, 404, "not_found", err)
        if environ.get("REQUEST_METHOD") != "POST":
            return _respond(start_response, 405, "method_not_allowed", JobplaneError("the broker ingress takes POST"))
        try:
            event = from_http(_wsgi_headers(environ), _wsgi_body(environ, self.max_event_bytes))
        except PermanentError as e:
            return _respond(start_response, _refusal_status(e), e.code, e)
        try:
            self.publish(event)
        except (UnavailableError, sqlite3.Error) as e:
            err = e if isinstance(e, UnavailableError) else UnavailableError(f"broker journal: {e}")
            return _respond(start_response, 503, "unavailable", err)
        return _accepted(start_response, event, self._receipt_of(event))

    def _receipt_of(self, event: Event) -> list[dict[str, Any]] | None:
        try:
            return self.receipt(event)
        except Exception:  # noqa: BLE001 - the event is kept already; only the answer's body is lost
            log.exception("broker: the runs of %s %s could not be named", event.type, event.id)
            return None

    def _accept(self, event: Event, *, hops: int, finish: int | None = None) -> int:
        """Journal one row per matching Trigger (and finish row ``finish`` in the same commit)."""
        matched = [t for t in self.triggers if t.matches(event.attributes())] if hops <= MAX_HOPS else []
        if hops > MAX_HOPS:
            self._record(event, None, None, 0, "dropped", f"reply chain longer than {MAX_HOPS} hops")
        elif not matched:
            self._unmatched_event(event)
        if not matched:
            if finish is not None:
                self.journal.finish(finish)
            return 0
        rows = self.journal.add([jr.NewRow(event, t.name, hops) for t in matched], finish=finish)
        for trigger, row in zip(matched, rows, strict=True):
            self._submit(_Task(event=event, trigger=trigger, delivery=self._delivery_of(trigger), row=row, hops=hops))
        return len(matched)

    def _delivery_of(self, trigger: Trigger) -> Delivery:
        return Delivery.from_spec(trigger.delivery, base=self.delivery)

    def _unmatched_event(self, event: Event) -> None:
        with self._cond:
            self._unmatched[event.type] += 1
            first = self._unmatched[event.type] == 1
        self._record(event, None, None, 0, "unmatched", "no Trigger matches")
        if first:
            log.warning("broker %s: no Trigger matches events of type %s (counted in stats(); logged once per type)",
                        self.path, event.type)

    # --- after a restart; dead rows ---

    def resume(self) -> int:
        """Schedule every delivery the journal holds unfinished (a previous process's), at once:
        a retry's backoff waited for a subscriber that a restart brings back; how many."""
        by_name = {t.name: t for t in self.triggers}
        rows = self.journal.unfinished()
        for row in rows:
            trigger = by_name.get(row.trigger)
            if trigger is None:
                self.journal.bury(row.id, detail=f"no Trigger named {row.trigger!r} any more")
                log.error("broker: delivery %d of %s %s kept dead: its Trigger %s is gone", row.id, row.event.type,
                          row.event.id, row.trigger)
                continue
            self._submit(self._task_of(row, trigger))
        if rows:
            log.warning("broker %s: resuming %d unfinished deliveries from %s", self.path, len(rows), self.journal.path)
        return len(rows)

    def _task_of(self, row: jr.Row, trigger: Trigger) -> _Task:
        return _Task(event=row.event, trigger=trigger, delivery=self._delivery_of(trigger), row=row.id,
                     attempt=row.attempt, hops=row.hops, dead_letter=row.state == jr.DEAD_LETTER)

    def dead(self, *, limit: int | None = None) -> list[jr.Row]:
        """Deliveries the dead-letter sink would not take (or that had none), oldest first."""
        return self.journal.dead(limit=limit)

    def dead_letters(self, *, limit: int | None = None) -> list[dict[str, Any]]:
        """``dead()`` as the api lists dead letters (``id`` is ``broker-{row}``)."""
        return [
            {"id": f"{DEAD_ID_PREFIX}{r.id}", "where": "broker", "trigger": r.trigger, "event": to_dict(r.event),
             "error": {"detail": r.detail}, "receivedAt": _rfc3339(r.created), "replayedAt": None}
            for r in self.dead(limit=limit)
        ]

    def replay_dead(self, row: int) -> bool:
        """Deliver a dead row again (attempt 1, the Trigger's policy anew); False when there is
        no such dead row (already replayed, say)."""
        revived = self.journal.revive(row)
        if revived is None:
            return False
        trigger = next((t for t in self.triggers if t.name == revived.trigger), None)
        if trigger is None:
            self.journal.bury(row, detail=f"no Trigger named {revived.trigger!r} any more")
            return False
        event = replace(revived.event, extensions={
            k: v for k, v in revived.event.extensions.items() if k not in (ERROR_DEST, ERROR_CODE, ERROR_DATA)})
        self._submit(replace(self._task_of(revived, trigger), event=event))
        return True

    def stats(self) -> dict[str, Any]:
        """Journal rows per state and the unmatched events per type."""
        counts = self.journal.counts()
        with self._cond:
            unmatched = dict(self._unmatched)
        return {"pending": counts.get(jr.PENDING, 0), "deadLettering": counts.get(jr.DEAD_LETTER, 0),
                "dead": counts.get(jr.DEAD, 0), "unmatched": unmatched}

    # --- waiting and stopping ---

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every accepted event is delivered, dead-lettered or dropped
        (retries and reply chains included); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)

    def stop_intake(self) -> None:
        """Take no more events: the ingress answers 503 + Retry-After, ``publish`` raises.
        Deliveries go on (and their replies are still kept)."""
        with self._cond:
            self._accepting = False

    def close(self, timeout: float = DRAIN_TIMEOUT_S) -> None:
        """Stop: take no more events, start no more deliveries, let those under way finish (up
        to ``timeout``). Whatever is not done stays in the journal for ``resume``."""
        self.stop_intake()
        with self._cond:
            self._closed = True
            self._timers.clear()
            self._cond.notify_all()
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._cond:
            drained = self._cond.wait_for(lambda: self._running == 0, timeout)
        if not drained:
            log.warning("broker %s: deliveries still under way after %gs; they stay in the journal", self.path, timeout)
        self._scheduler.join(timeout=5)
        with self._cond:  # abandoned retries and cancelled deliveries will never finish here
            self._pending = 0
            self._cond.notify_all()
        self.journal.close()

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
        with self._cond:
            self._running += 1
        try:
            if task.dead_letter:
                self._send_dead_letter(task)
            else:
                self._deliver(task)
        except sqlite3.ProgrammingError:  # the journal closed under a delivery: it stays unfinished there
            log.info("broker: %s to %s left for the next start", task.event.id, task.trigger.name)
        except Exception:  # a bug here must not wedge flush()
            log.exception("broker: delivering %s to %s failed", task.event.id, task.trigger.name)
        finally:
            with self._cond:
                self._running -= 1
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
                if reply is None:
                    self.journal.finish(task.row)
                    return
                self._record(reply, task.trigger, url, task.attempt, "reply", f"reply {reply.type} re-enters the broker")
                self._accept(reply, hops=task.hops + 1, finish=task.row)
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
        self.journal.retry(task.row, attempt=task.attempt + 1, due=time.time() + delay)
        self._submit(replace(task, attempt=task.attempt + 1), delay)
        return True

    def _dead_letter(self, task: _Task, url: str, resp: _Response) -> None:
        sink = task.delivery.dead_letter_sink
        detail = f"HTTP {resp.status}: {short(resp.body, 120)}"
        if not sink:
            self._bury(task, url, resp.status, detail + "; no deadLetterSink")
            return
        ext = error_extensions(dest=url, code=resp.status, body=resp.body)
        event = replace(task.event, extensions={**task.event.extensions, **ext})
        self._record(task.event, task.trigger, url, task.attempt, "dead-letter", detail, resp.status)
        self.journal.to_dead_letter(task.row, event=event)
        self._submit(replace(task, event=event, attempt=1, dead_letter=True))

    def _send_dead_letter(self, task: _Task) -> None:
        sink = task.delivery.dead_letter_sink or {}
        url, resp = self._dispatch(sink, task.event, prefer_reply=False, timeout=task.delivery.timeout)
        if 200 <= resp.status < 300:
            self._record(task.event, task.trigger, url, task.attempt, "dead-lettered", f"HTTP {resp.status}", resp.status)
            self.journal.finish(task.row)
        elif not self._retry(task, url, resp):
            self._bury(task, url, resp.status, f"dead-letter sink answered HTTP {resp.status}: {short(resp.body, 120)}")

    def _bury(self, task: _Task, url: str, status: int, detail: str) -> None:
        """Where Knative would lose the event: keep it dead in the journal, replayable."""
        self.journal.bury(task.row, detail=detail)
        metrics.dead_lettered(task.event.type)
        self._record(task.event, task.trigger, url, task.attempt, "dead", detail + "; kept in the journal", status)
        log.error("broker: %s %s kept dead (replay it with `jobplane deadletter replay`): %s",
                  task.event.type, task.event.id, detail)

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


def _accepted(start_response: WSGIStartResponse, event: Event, runs: list[dict[str, Any]] | None) -> list[bytes]:
    """202, empty as Knative's ingress answers; for an event that makes runs, ``{"id", "runs"}``
    and ``Location`` of the first run, so the sender can follow it."""
    if runs is None:
        start_response("202 Accepted", [("Content-Length", "0")])
        return [b""]
    body = json.dumps({"id": event.id, "runs": runs}, separators=(",", ":")).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    if runs:
        headers.append(("Location", f"/v1/runs/{runs[0]['runId']}"))
    start_response("202 Accepted", headers)
    return [body]


def _now() -> float:
    return time.monotonic()


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _wsgi_headers(environ: Mapping[str, Any]) -> dict[str, str]:
    headers = {k[5:].replace("_", "-").lower(): str(v) for k, v in environ.items() if k.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = str(environ["CONTENT_TYPE"])
    return headers


def _wsgi_body(environ: Mapping[str, Any], limit: int = DEFAULT_MAX_EVENT_BYTES) -> bytes:
    """The request body, never read past ``limit + 1`` bytes: by ``Content-Length`` (over the
    limit: refused unread), or to the end of a chunked body the server dechunks
    (``wsgi.input_terminated``); ``PayloadTooLargeError`` when over ``limit``."""
    try:
        declared: int | None = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        declared = None
    stream = environ.get("wsgi.input")
    if stream is None or (declared is None and not environ.get("wsgi.input_terminated")):
        return b""
    return read_capped(stream, limit, declared=declared)


def _refusal_status(err: PermanentError) -> int:
    """What the ingress answers for an event it will never accept."""
    return err.status if err.status in (413, 415) else 400


_REASONS: Final = {
    400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 413: "Content Too Large",
    415: "Unsupported Media Type", 503: "Service Unavailable",
}


def _respond(start_response: WSGIStartResponse, status: int, code: str, err: JobplaneError) -> list[bytes]:
    body = err.to_body()
    body["error"]["code"] = code
    raw = json.dumps(body).encode()
    reason = _REASONS[status]
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(raw)))]
    if status == 405:
        headers.append(("Allow", "POST"))
    if status == 503:
        headers.append(("Retry-After", str(RETRY_AFTER_SECONDS)))
    start_response(f"{status} {reason}", headers)
    return [raw]
