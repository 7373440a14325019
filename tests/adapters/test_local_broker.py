"""The local broker keeps Knative's delivery contract over real HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import textwrap
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from support.servers import serve_wsgi

from jobplane.events import Event, from_http, new_event, to_http
from jobplane.local.broker import (
    Delivery,
    LocalBroker,
    Trigger,
    attributes_match,
    dialect_matches,
    function_resolver,
    is_retryable,
    load_broker,
    load_triggers,
    parse_duration,
)

REPO = Path(__file__).resolve().parents[2]
Reply = tuple[int, dict[str, str], bytes]


@dataclass
class Subscriber:
    """A WSGI app recording every request; ``answer`` decides each response."""

    answer: Callable[[Event, int], Reply] = lambda event, n: (204, {}, b"")
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        with self.lock:
            self.received.append((headers, body))
            n = len(self.received)
        status, out_headers, out = self.answer(from_http(headers, body), n)
        start_response(f"{status} X", [*out_headers.items(), ("Content-Length", str(len(out)))])
        return [out]

    def events(self) -> list[Event]:
        with self.lock:
            return [from_http(h, b) for h, b in self.received]


TRIGGERS_YAML = """
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default}
spec:
  delivery:
    retry: 2
    backoffPolicy: linear
    backoffDelay: PT0.01S
    deadLetterSink:
      ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: dls}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: to-a}
spec:
  broker: default
  filter: {attributes: {type: test.a}}
  subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: a}}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: to-b}
spec:
  broker: default
  filter: {attributes: {type: test.b}}
  subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: b}}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: to-bots}
spec:
  broker: default
  filter: {attributes: {type: test.c, botid: ""}}
  subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: c}}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: other-broker}
spec:
  broker: elsewhere
  filter: {attributes: {type: test.a}}
  subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: c}}
"""


@pytest.fixture
def eventing_dir(tmp_path: Path) -> Path:
    d = tmp_path / "eventing"
    d.mkdir()
    (d / "all.yaml").write_text(TRIGGERS_YAML)
    (d / "kustomization.yaml").write_text("resources: [all.yaml]\n")
    return d


class Plane:
    """Subscribers a, b, c and the dead-letter sink behind one server, the broker behind another."""

    def __init__(self, eventing_dir: Path, stack: ExitStack) -> None:
        self.subs = {name: Subscriber() for name in ("a", "b", "c", "dls")}
        base = stack.enter_context(serve_wsgi(self._route))
        config = load_broker(eventing_dir)
        self.broker = LocalBroker(load_triggers(eventing_dir), resolve=function_resolver(base), delivery=config.delivery)
        stack.callback(self.broker.close)
        self.url = stack.enter_context(serve_wsgi(self.broker)) + "/default/default"
        self.base = base

    def _route(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        name = environ["PATH_INFO"].removeprefix("/_functions/")
        return self.subs[name](environ, start_response)

    def post(self, event: Event, *, structured: bool = False) -> requests.Response:
        headers, body = to_http(event, structured=structured)
        return requests.post(self.url, data=body, headers=headers, timeout=10)

    def flush(self) -> None:
        assert self.broker.flush(timeout=20)


@pytest.fixture
def plane(eventing_dir: Path) -> Iterator[Plane]:
    with ExitStack() as stack:
        yield Plane(eventing_dir, stack)


def ev(type: str, **kw: Any) -> Event:
    return new_event(type, source="/tests", data={"n": 1}, **kw)


def test_routes_by_type_to_the_matching_trigger_only(plane: Plane) -> None:
    r = plane.post(ev("test.a", subject="s1"))
    assert r.status_code == 202 and r.content == b""
    plane.flush()
    (got,) = plane.subs["a"].events()
    assert got.type == "test.a" and got.subject == "s1" and got.data == {"n": 1}
    assert plane.subs["b"].received == [] and plane.subs["c"].received == []
    headers = plane.subs["a"].received[0][0]
    assert headers["ce-type"] == "test.a" and headers["prefer"] == "reply"  # binary mode, replies welcome


def test_structured_ingress_is_delivered_in_binary_mode(plane: Plane) -> None:
    event = ev("test.b", extensions={"botid": "b1"})
    assert plane.post(event, structured=True).status_code == 202
    plane.flush()
    headers, body = plane.subs["b"].received[0]
    assert headers["ce-id"] == event.id and headers["ce-botid"] == "b1" and json.loads(body) == {"n": 1}


def test_empty_filter_value_means_present_and_non_empty(plane: Plane) -> None:
    plane.post(ev("test.c", extensions={"botid": "b7"}))
    plane.post(ev("test.c"))
    plane.flush()
    assert [e.extensions["botid"] for e in plane.subs["c"].events()] == ["b7"]


def test_malformed_event_gets_400_with_the_reason_and_nothing_is_delivered(plane: Plane) -> None:
    r = requests.post(plane.url, data=b'{"x":1}', headers={"Content-Type": "application/json", "ce-type": "test.a"}, timeout=10)
    assert r.status_code == 400
    assert "missing required attribute" in r.json()["error"]["message"]
    r = requests.post(plane.url, data=b"{not json", headers={"Content-Type": "application/cloudevents+json"}, timeout=10)
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
    plane.flush()
    assert all(not s.received for s in plane.subs.values())


def test_unknown_broker_is_404_and_get_is_405(plane: Plane) -> None:
    headers, body = to_http(ev("test.a"))
    assert requests.post(plane.url.replace("/default/default", "/default/nope"), data=body, headers=headers, timeout=10).status_code == 404
    r = requests.get(plane.url, timeout=10)
    assert r.status_code == 405 and r.headers["Allow"] == "POST"


def test_5xx_is_retried_then_dead_lettered_with_knative_error_extensions(plane: Plane) -> None:
    plane.subs["a"].answer = lambda e, n: (503, {"Content-Type": "text/plain"}, b"busy, try later")
    event = ev("test.a")
    plane.post(event)
    plane.flush()
    assert len(plane.subs["a"].received) == 3  # 1 + retry: 2
    (dead,) = plane.subs["dls"].events()
    assert dead.id == event.id and dead.type == "test.a" and dead.data == {"n": 1}
    assert dead.extensions["knativeerrorcode"] == "503"
    assert dead.extensions["knativeerrordest"] == plane.base + "/_functions/a"
    assert base64.b64decode(dead.extensions["knativeerrordata"]) == b"busy, try later"
    outcomes = [d["outcome"] for d in plane.broker.deliveries() if d["id"] == event.id]
    assert outcomes == ["retry", "retry", "dead-letter", "dead-lettered"]


def test_transient_failure_then_success_is_delivered_once(plane: Plane) -> None:
    plane.subs["a"].answer = lambda e, n: (500, {}, b"") if n == 1 else (202, {}, b"")
    plane.post(ev("test.a"))
    plane.flush()
    assert len(plane.subs["a"].received) == 2 and plane.subs["dls"].received == []


@pytest.mark.parametrize("status", [400, 403, 422])
def test_permanent_4xx_is_not_retried_and_goes_to_the_dead_letter_sink(plane: Plane, status: int) -> None:
    plane.subs["a"].answer = lambda e, n: (status, {"Content-Type": "application/json"}, b'{"error":{"message":"bad"}}')
    plane.post(ev("test.a"))
    plane.flush()
    assert len(plane.subs["a"].received) == 1
    (dead,) = plane.subs["dls"].events()
    assert dead.extensions["knativeerrorcode"] == str(status)


def test_reply_event_re_enters_the_broker(plane: Plane) -> None:
    def reply(event: Event, n: int) -> Reply:
        headers, body = to_http(new_event("test.b", source="/a", data={"from": event.id}))
        return 200, headers, body

    plane.subs["a"].answer = reply
    event = ev("test.a")
    plane.post(event)
    plane.flush()
    (got,) = plane.subs["b"].events()
    assert got.type == "test.b" and got.data == {"from": event.id}


def test_202_with_an_event_body_is_not_a_reply(plane: Plane) -> None:
    def accepted(event: Event, n: int) -> Reply:
        headers, body = to_http(new_event("test.b", source="/a", data={}))
        return 202, headers, body

    plane.subs["a"].answer = accepted
    plane.post(ev("test.a"))
    plane.flush()
    assert plane.subs["b"].received == [] and plane.subs["dls"].received == []


def test_non_cloudevent_2xx_body_counts_as_a_failed_delivery(plane: Plane) -> None:
    plane.subs["a"].answer = lambda e, n: (200, {"Content-Type": "text/plain"}, b"OK")
    plane.post(ev("test.a"))
    plane.flush()
    assert len(plane.subs["a"].received) == 3  # 502 is retried like any 5xx
    (dead,) = plane.subs["dls"].events()
    assert dead.extensions["knativeerrorcode"] == "502"


def test_unreachable_subscriber_is_retried_then_dead_lettered_as_500(eventing_dir: Path) -> None:
    with ExitStack() as stack:
        dls = Subscriber()
        dls_url = stack.enter_context(serve_wsgi(dls))
        trigger = Trigger(name="t", subscriber={"uri": "http://127.0.0.1:9/nothing"}, attributes={"type": "test.a"})
        delivery = Delivery(retry=1, backoff_delay=0.01, dead_letter_sink={"uri": dls_url})
        broker = LocalBroker([trigger], resolve=function_resolver("http://unused"), delivery=delivery)
        stack.callback(broker.close)
        broker.publish(ev("test.a"))
        assert broker.flush(timeout=20)
        (dead,) = dls.events()
        assert dead.extensions["knativeerrorcode"] == "500"
        assert base64.b64decode(dead.extensions["knativeerrordata"]).startswith(b"dispatch error")


def test_trigger_delivery_overrides_the_brokers_field_by_field(eventing_dir: Path) -> None:
    base = load_broker(eventing_dir).delivery
    merged = Delivery.from_spec({"retry": 0}, base=base)
    assert merged.retry == 0 and merged.backoff_policy == "linear" and merged.dead_letter_sink == base.dead_letter_sink


def test_loads_fixture_manifests(eventing_dir: Path) -> None:
    triggers = {t.name: t for t in load_triggers(eventing_dir)}
    assert set(triggers) == {"to-a", "to-b", "to-bots", "other-broker"}
    assert triggers["to-bots"].attributes == {"type": "test.c", "botid": ""}
    config = load_broker(eventing_dir)
    assert config.delivery == Delivery(
        retry=2, backoff_policy="linear", backoff_delay=0.01,
        dead_letter_sink={"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "dls"}},
    )


@pytest.mark.skipif(not (REPO / "eventing" / "broker.yaml").exists(), reason="eventing/ manifests not in this checkout")
def test_loads_the_projects_eventing_manifests() -> None:
    from jobplane import conventions, events

    triggers = load_triggers(REPO / "eventing")
    config = load_broker(REPO / "eventing")
    assert config.delivery.retry >= 1 and config.delivery.dead_letter_sink
    routed = {t.attributes.get("type"): t.subscriber["ref"]["name"] for t in triggers}
    for event_type in (events.BOT_CHANGED, events.PING, events.RUN_REQUESTED, events.RUN_PROGRESS):
        assert routed[event_type] in conventions.SERVICE_TARGETS
    resolve = function_resolver("http://127.0.0.1:1")
    assert resolve(config.delivery.dead_letter_sink).startswith("http://127.0.0.1:1/_functions/jobplane-")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("PT0.5S", 0.5), ("PT1S", 1.0), ("PT1M30S", 90.0), ("PT2H", 7200.0), ("P1D", 86400.0), ("P1DT1S", 86401.0), ("PT0,25S", 0.25), ("P1W", 604800.0)],
)
def test_parses_iso8601_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["1s", "P", "PT", "PT1", "2007-03-01T13:00:00Z/P1Y", ""])
def test_rejects_what_is_not_an_iso8601_duration(text: str) -> None:
    from jobplane.errors import PermanentError

    with pytest.raises(PermanentError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("policy", "delay", "waits"),
    [("linear", 2.5, [2.5, 5.0, 7.5]), ("exponential", 1.5, [3.0, 6.0, 12.0]), ("exponential", 0.5, [1.0, 2.0, 4.0])],
)
def test_backoff_matches_knatives_retry_config(policy: str, delay: float, waits: list[float]) -> None:
    d = Delivery(retry=3, backoff_policy=policy, backoff_delay=delay)
    assert [d.backoff(n) for n in (1, 2, 3)] == waits


@pytest.mark.parametrize(
    ("status", "retried"),
    [(-1, True), (200, False), (301, False), (400, False), (401, False), (403, False), (404, True), (408, True), (409, True), (429, True), (500, True), (502, True), (503, True)],
)
def test_retries_what_knatives_selective_retry_retries(status: int, retried: bool) -> None:
    assert is_retryable(status) is retried


@pytest.mark.parametrize(
    ("expected", "attrs", "match"),
    [
        ({"type": "a"}, {"type": "a", "source": "s"}, True),
        ({"type": "a"}, {"type": "ab"}, False),
        ({"type": "a", "source": "s"}, {"type": "a", "source": "t"}, False),
        ({"botid": ""}, {"botid": "x"}, True),
        ({"botid": ""}, {"type": "a"}, False),
        ({"botid": ""}, {"botid": ""}, False),
        ({}, {"type": "anything"}, True),
    ],
)
def test_filter_attributes_semantics(expected: dict[str, str], attrs: dict[str, str], match: bool) -> None:
    assert attributes_match(expected, attrs) is match


@pytest.mark.parametrize(
    ("f", "match"),
    [
        ({"exact": {"type": "dev.x.run"}}, True),
        ({"prefix": {"type": "dev.x."}}, True),
        ({"suffix": {"type": ".run"}}, True),
        ({"not": {"exact": {"type": "dev.x.run"}}}, False),
        ({"any": [{"exact": {"type": "no"}}, {"prefix": {"source": "/s"}}]}, True),
        ({"all": [{"exact": {"type": "dev.x.run"}}, {"exact": {"missing": "v"}}]}, False),
    ],
)
def test_filters_dialects(f: dict[str, Any], match: bool) -> None:
    assert dialect_matches(f, {"type": "dev.x.run", "source": "/s/1"}) is match


def test_function_resolver_addresses() -> None:
    resolve = function_resolver("http://127.0.0.1:8080/")
    assert resolve({"ref": {"kind": "Service", "name": "jobplane-launch"}}) == "http://127.0.0.1:8080/_functions/jobplane-launch"
    assert resolve({"ref": {"kind": "Broker", "name": "default"}}) == "http://127.0.0.1:8080/default/default"
    assert resolve({"ref": {"kind": "Service", "name": "s"}, "uri": "/hook"}) == "http://127.0.0.1:8080/_functions/s/hook"
    assert resolve({"uri": "http://example.test/x"}) == "http://example.test/x"


def test_manifest_without_subscriber_is_rejected(tmp_path: Path) -> None:
    from jobplane.errors import PermanentError

    (tmp_path / "t.yaml").write_text(textwrap.dedent("""
        apiVersion: eventing.knative.dev/v1
        kind: Trigger
        metadata: {name: broken}
        spec: {broker: default}
    """))
    with pytest.raises(PermanentError, match="subscriber"):
        load_triggers(tmp_path)


def test_trigger_with_bad_delivery_is_rejected_at_load(tmp_path: Path) -> None:
    from jobplane.errors import PermanentError

    (tmp_path / "t.yaml").write_text(textwrap.dedent("""
        apiVersion: eventing.knative.dev/v1
        kind: Trigger
        metadata: {name: bad-delivery}
        spec:
          broker: default
          subscriber: {uri: "http://127.0.0.1:1/"}
          delivery: {retry: 3, backoffPolicy: linear, backoffDelay: "1 second"}
    """))
    with pytest.raises(PermanentError, match="bad-delivery|t.yaml"):
        load_triggers(tmp_path)


def test_close_leaves_pending_retries_in_the_journal_and_takes_no_more_events(eventing_dir: Path) -> None:
    from jobplane.errors import UnavailableError

    trigger = Trigger(name="t", subscriber={"uri": "http://127.0.0.1:9/"}, attributes={"type": "test.a"})
    broker = LocalBroker([trigger], resolve=function_resolver("http://unused"), delivery=Delivery(retry=5, backoff_delay=60))
    broker.publish(ev("test.a"))
    assert not broker.flush(timeout=0.5)  # a retry is waiting a minute
    assert broker.stats()["pending"] == 1
    broker.close()
    assert broker.flush(timeout=1)
    with pytest.raises(UnavailableError, match="shutting down"):
        broker.publish(ev("test.a"))


# --- durability: the journal across restarts ----------------------------------------------------


def durable_broker(base: str, db: Path, *, delivery: Delivery | None = None) -> LocalBroker:
    triggers = [
        Trigger(name="to-a", subscriber={"ref": {"kind": "Service", "name": "a"}}, attributes={"type": "test.a"}),
        Trigger(name="to-b", subscriber={"ref": {"kind": "Service", "name": "b"}}, attributes={"type": "test.b"}),
    ]
    delivery = delivery or Delivery(retry=2, backoff_delay=0.01, backoff_policy="linear",
                                    dead_letter_sink={"ref": {"kind": "Service", "name": "dls"}})
    return LocalBroker(triggers, resolve=function_resolver(base), delivery=delivery, db=db)


@pytest.fixture
def subs() -> Iterator[tuple[str, dict[str, Subscriber]]]:
    found = {name: Subscriber() for name in ("a", "b", "dls")}

    def route(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        return found[environ["PATH_INFO"].removeprefix("/_functions/")](environ, start_response)

    with serve_wsgi(route) as base:
        yield base, found


def test_an_accepted_event_is_delivered_by_the_next_broker_on_the_same_journal(tmp_path: Path, subs: Any) -> None:
    base, found = subs
    found["a"].answer = lambda e, n: (503, {}, b"down")
    first = durable_broker(base, tmp_path / "broker.db", delivery=Delivery(retry=3, backoff_delay=60))
    event = ev("test.a", subject="kept")
    url_ctx = serve_wsgi(first)
    with url_ctx as url:
        headers, body = to_http(event)
        assert requests.post(url + "/default/default", data=body, headers=headers, timeout=10).status_code == 202
    first.close(timeout=5)  # the retry waits a minute: not done, so it stays in the journal

    found["a"].answer = lambda e, n: (204, {}, b"")
    second = durable_broker(base, tmp_path / "broker.db")
    try:
        assert second.resume() == 1
        assert second.flush(timeout=20)
        assert [e.id for e in found["a"].events()][-1] == event.id and found["a"].events()[-1].subject == "kept"
        assert second.stats()["pending"] == 0
    finally:
        second.close()
    third = durable_broker(base, tmp_path / "broker.db")
    assert third.resume() == 0  # delivered means gone from the journal
    third.close()


def test_a_reply_is_kept_before_its_parent_delivery_counts_as_done(tmp_path: Path, subs: Any) -> None:
    base, found = subs

    def reply(event: Event, n: int) -> Reply:
        headers, body = to_http(new_event("test.b", source="/a", id="reply-1", data={"from": event.id}))
        return 200, headers, body

    found["a"].answer = reply
    found["b"].answer = lambda e, n: (500, {}, b"")
    first = durable_broker(base, tmp_path / "broker.db", delivery=Delivery(retry=3, backoff_delay=60))
    first.publish(ev("test.a"))
    assert not first.flush(timeout=1)
    first.close(timeout=5)

    found["b"].answer = lambda e, n: (204, {}, b"")
    second = durable_broker(base, tmp_path / "broker.db")
    try:
        assert second.resume() == 1  # the reply's delivery, not its parent's
        assert second.flush(timeout=20)
    finally:
        second.close()
    assert len(found["a"].received) == 1 and found["b"].events()[-1].id == "reply-1"


def test_an_event_the_dead_letter_sink_refuses_is_kept_dead_and_can_be_replayed(tmp_path: Path, subs: Any) -> None:
    base, found = subs
    found["a"].answer = lambda e, n: (400, {}, b"bad")
    found["dls"].answer = lambda e, n: (503, {}, b"store down")
    broker = durable_broker(base, tmp_path / "broker.db")
    try:
        event = ev("test.a")
        broker.publish(event)
        assert broker.flush(timeout=20)
        (dead,) = broker.dead()
        assert dead.event.id == event.id and dead.trigger == "to-a" and "HTTP 503" in (dead.detail or "")
        assert len(found["dls"].received) == 3 and broker.stats()["dead"] == 1
        assert [d["outcome"] for d in broker.deliveries()][-1] == "dead"

        found["a"].answer = lambda e, n: (204, {}, b"")
        assert broker.replay_dead(dead.id) and not broker.replay_dead(dead.id)  # once only
        assert broker.flush(timeout=20)
        replayed = found["a"].events()[-1]
        assert (replayed.id, replayed.source) == (event.id, event.source)
        assert not any(k.startswith("knativeerror") for k in replayed.extensions)
        assert broker.dead() == [] and broker.stats()["dead"] == 0
    finally:
        broker.close()


def test_dead_rows_survive_a_restart(tmp_path: Path, subs: Any) -> None:
    base, found = subs
    found["a"].answer = lambda e, n: (400, {}, b"bad")
    broker = durable_broker(base, tmp_path / "broker.db", delivery=Delivery(retry=0))  # no sink
    broker.publish(ev("test.a"))
    assert broker.flush(timeout=20)
    broker.close()
    again = durable_broker(base, tmp_path / "broker.db")
    try:
        assert again.resume() == 0
        assert [r.trigger for r in again.dead()] == ["to-a"] and "no deadLetterSink" in (again.dead()[0].detail or "")
    finally:
        again.close()


def test_unmatched_events_are_counted_per_type_and_logged_once(tmp_path: Path, subs: Any, caplog: pytest.LogCaptureFixture) -> None:
    base, _ = subs
    broker = durable_broker(base, tmp_path / "broker.db")
    try:
        with caplog.at_level("WARNING", logger="jobplane.local.broker"):
            assert [broker.publish(ev(t)) for t in ("test.x", "test.x", "test.y", "test.x")] == [0, 0, 0, 0]
        assert broker.stats()["unmatched"] == {"test.x": 3, "test.y": 1}
        logged = [r.getMessage() for r in caplog.records if "no Trigger matches" in r.getMessage()]
        assert len(logged) == 2 and broker.stats()["pending"] == 0
    finally:
        broker.close()


def test_the_ingress_answers_503_with_retry_after_once_intake_stops(tmp_path: Path, subs: Any) -> None:
    base, found = subs
    broker = durable_broker(base, tmp_path / "broker.db")
    try:
        with serve_wsgi(broker) as url:
            broker.stop_intake()
            headers, body = to_http(ev("test.a"))
            r = requests.post(url + "/default/default", data=body, headers=headers, timeout=10)
        assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0
        assert r.json()["error"]["code"] == "unavailable" and broker.stats()["pending"] == 0
    finally:
        broker.close()


def test_the_broker_journal_holding_callback_tokens_is_the_owners_only(tmp_path: Path) -> None:
    import stat

    from jobplane import events
    from jobplane.local.journal import Journal, NewRow

    path = tmp_path / "data" / "broker.db"
    journal = Journal(path)
    token_event = events.new_event("dev.jobplane.run.progress", source="/t", data={}, extensions={"jobplanetoken": "v2.1.abc"})
    journal.add([NewRow(event=token_event, trigger="t")])
    files = [p for p in path.parent.iterdir() if p.name.startswith("broker.db")]
    assert path in files and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files), files
