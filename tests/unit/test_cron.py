"""Cron schedules as Knative's PingSource reads them, time zones and DST included, and the
local cron firing real ping events."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from jobplane.errors import PermanentError
from jobplane.events import PING, Event, from_http, to_http
from jobplane.local.cron import (
    LocalCron,
    PingSource,
    load_pingsources,
    next_fire,
    parse_schedule,
    spec_pingsource,
)

REPO = Path(__file__).resolve().parents[2]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


NEXT_FIRE_CASES = [
    # (schedule, tz, after, expected)
    ("* * * * *", "UTC", "2026-01-01T10:00:30+00:00", "2026-01-01T10:01:00+00:00"),
    ("* * * * *", "UTC", "2026-01-01T10:01:00+00:00", "2026-01-01T10:02:00+00:00"),
    ("*/15 * * * *", "UTC", "2026-01-01T10:07:00+00:00", "2026-01-01T10:15:00+00:00"),
    ("5/20 * * * *", "UTC", "2026-01-01T10:26:00+00:00", "2026-01-01T10:45:00+00:00"),
    ("0 2 * * 0", "Etc/UTC", "2026-01-07T00:00:00+00:00", "2026-01-11T02:00:00+00:00"),
    ("0 0 * * 7", "UTC", "2026-01-01T00:00:00+00:00", "2026-01-04T00:00:00+00:00"),
    ("0 9 * * MON-FRI", "Europe/Berlin", "2026-01-09T08:00:00+00:00", "2026-01-12T09:00:00+01:00"),
    ("@daily", "America/New_York", "2026-01-01T05:00:00+00:00", "2026-01-02T00:00:00-05:00"),
    ("@hourly", "UTC", "2026-01-01T10:59:59+00:00", "2026-01-01T11:00:00+00:00"),
    ("@weekly", "UTC", "2026-01-01T00:00:00+00:00", "2026-01-04T00:00:00+00:00"),
    ("@monthly", "UTC", "2026-01-01T00:00:00+00:00", "2026-02-01T00:00:00+00:00"),
    ("@yearly", "UTC", "2026-01-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00"),
    ("0 0 1,15 * *", "UTC", "2026-01-15T00:00:00+00:00", "2026-02-01T00:00:00+00:00"),
    ("0 12 * JAN,jul *", "UTC", "2026-02-01T00:00:00+00:00", "2026-07-01T12:00:00+00:00"),
    # both day fields restricted: either matches (Fri 2 Jan comes before the 13th)
    ("0 0 13 * FRI", "UTC", "2026-01-01T00:00:00+00:00", "2026-01-02T00:00:00+00:00"),
    # day-of-week unrestricted: only the day of month counts
    ("0 0 13 * *", "UTC", "2026-01-01T00:00:00+00:00", "2026-01-13T00:00:00+00:00"),
    ("0 0 13 * ?", "UTC", "2026-01-01T00:00:00+00:00", "2026-01-13T00:00:00+00:00"),
    # a step restricts the field (robfig/cron): days 1,11,21,31 or Mondays
    ("0 0 */10 * MON", "UTC", "2026-01-01T00:00:00+00:00", "2026-01-05T00:00:00+00:00"),
    ("0 0 29 2 *", "UTC", "2026-03-01T00:00:00+00:00", "2028-02-29T00:00:00+00:00"),
    # CRON_TZ (or TZ) prefix wins over the tz argument (a PingSource's spec.timezone)
    ("CRON_TZ=Asia/Tokyo 0 9 * * *", None, "2026-01-01T00:00:00+00:00", "2026-01-02T09:00:00+09:00"),
    ("CRON_TZ=Asia/Tokyo 0 9 * * *", "Europe/Berlin", "2026-01-01T00:00:00+00:00", "2026-01-02T09:00:00+09:00"),
    ("TZ=America/New_York 0 9 * * *", "UTC", "2026-01-01T00:00:00+00:00", "2026-01-01T09:00:00-05:00"),
    # the macros are robfig/cron's: @midnight is @daily, @annually is @yearly, @weekly is Sunday
    ("@midnight", "UTC", "2026-01-01T10:00:00+00:00", "2026-01-02T00:00:00+00:00"),
    ("@annually", "UTC", "2026-06-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00"),
    # ? is * in any field; 7 and SUN are Sunday; a dow range 0-7 still restricts (OR with the 13th)
    ("? ? ? ? ?", "UTC", "2026-01-01T10:00:30+00:00", "2026-01-01T10:01:00+00:00"),
    ("0 0 13 * 1-5", "UTC", "2026-01-10T00:00:00+00:00", "2026-01-12T00:00:00+00:00"),
    ("0 0 13 * 0-7", "UTC", "2026-01-10T00:00:00+00:00", "2026-01-11T00:00:00+00:00"),
    # */1 is unrestricted (AND with Friday), */2 is not (OR)
    ("0 0 */1 * FRI", "UTC", "2026-01-10T00:00:00+00:00", "2026-01-16T00:00:00+00:00"),
    ("0 0 */2 * FRI", "UTC", "2026-01-10T00:00:00+00:00", "2026-01-11T00:00:00+00:00"),
    # a day of month that exists in one allowed month only fires there
    ("0 0 31 2,3 *", "UTC", "2026-01-01T00:00:00+00:00", "2026-03-31T00:00:00+00:00"),
    ("0 0 30 2 MON", "UTC", "2026-02-01T00:00:00+00:00", "2026-02-02T00:00:00+00:00"),
    # DST spring forward: 02:30 does not exist on 29 Mar 2026 in Berlin, 8 Mar 2026 in New York
    ("30 2 * * *", "Europe/Berlin", "2026-03-28T01:30:00+00:00", "2026-03-30T02:30:00+02:00"),
    ("30 2 * * *", "America/New_York", "2026-03-07T07:30:00+00:00", "2026-03-09T02:30:00-04:00"),
    ("0 3 * * *", "Europe/Berlin", "2026-03-28T12:00:00+00:00", "2026-03-29T03:00:00+02:00"),
    # DST fall back (25 Oct 2026 in Berlin): a daily 02:30 runs once, at the first 02:30 ...
    ("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00+00:00", "2026-10-25T02:30:00+02:00"),
    ("30 2 * * *", "Europe/Berlin", "2026-10-25T00:30:00+00:00", "2026-10-26T02:30:00+01:00"),
    # ... an hourly one keeps its pace through the repeated hour
    ("30 * * * *", "Europe/Berlin", "2026-10-25T00:30:00+00:00", "2026-10-25T02:30:00+01:00"),
    ("0 1 * * *", "Australia/Lord_Howe", "2026-01-01T00:00:00+00:00", "2026-01-02T01:00:00+11:00"),
]


@pytest.mark.parametrize(("schedule", "tz", "after", "expected"), NEXT_FIRE_CASES)
def test_next_fire(schedule: str, tz: str | None, after: str, expected: str) -> None:
    got = next_fire(schedule, tz, at(after))
    # compare in UTC: Python never calls an ambiguous (DST-fold) local time equal across zones
    assert got.astimezone(UTC) == at(expected).astimezone(UTC)
    assert got.utcoffset() == at(expected).utcoffset()  # reported in the schedule's zone


def test_next_fire_is_strictly_after_and_minute_aligned() -> None:
    t = at("2026-05-05T05:05:05.5+00:00")
    seen = []
    for _ in range(5):
        t = next_fire("*/7 * * * *", "UTC", t)
        seen.append(t.minute)
        assert t.second == 0 and t.microsecond == 0
    assert seen == [7, 14, 21, 28, 35]


@pytest.mark.parametrize(
    ("schedule", "problem"),
    [
        ("60 * * * *", "minute: 60 is out of range"),
        ("* 24 * * *", "hour: 24 is out of range"),
        ("* * 0 * *", "day of month: 0 is out of range"),
        ("* * * 13 *", "month: 13 is out of range"),
        ("* * * * 8", "day of week: 8 is out of range"),
        ("* * * *", "expected 5 fields"),
        ("* * * * * *", "expected 5 fields"),
        ("a * * * *", "not a number"),
        ("*/0 * * * *", "step must be at least 1"),
        ("5-1 * * * *", "starts after it ends"),
        ("* * * FOO *", "not a number or one of JAN"),
        ("@every 5m", "unknown macro"),
        ("@reboot", "unknown macro"),
        # croniter reads these; PingSource (robfig/cron) does not
        ("0 0 L * *", "day of month: 'L' is not a number"),
        ("0 0 1W * *", "cannot parse '1W'"),
        ("0 0 * * 5#2", "cannot parse '5#2'"),
        ("0 0 * * 5L", "cannot parse '5L'"),
        ("0 0 * * * 2026", "expected 5 fields"),
        ("10-5 * * * *", "starts after it ends"),
        ("* * * DEC-JAN *", "starts after it ends"),
        ("* * * * SAT-SUN", "starts after it ends"),
        # a schedule that can never fire is refused, not searched for years
        ("0 0 30 2 *", "never fires"),
        ("0 0 31 2,4,6,9,11 *", "never fires"),
    ],
)
def test_rejects_bad_schedules_naming_the_field(schedule: str, problem: str) -> None:
    with pytest.raises(PermanentError, match=problem):
        parse_schedule(schedule)


def test_schedule_that_never_fires_and_unknown_zone_are_errors() -> None:
    with pytest.raises(PermanentError, match="never fires: no month among '2' has day '31'"):
        next_fire("0 0 31 2 *", "UTC", at("2026-01-01T00:00:00+00:00"))
    with pytest.raises(PermanentError, match="unknown time zone"):
        next_fire("* * * * *", "Mars/Olympus", at("2026-01-01T00:00:00+00:00"))


# --- PingSources and the cron --------------------------------------------------------------

PINGSOURCES_YAML = """
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {name: every-minute}
spec:
  schedule: "* * * * *"
  contentType: application/json
  data: '{"specId": "retrain-all"}'
  sink: {ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}}
---
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {name: binary-to-service, namespace: ops}
spec:
  schedule: "*/5 * * * *"
  timezone: Europe/Berlin
  contentType: application/octet-stream
  dataBase64: "AAEC"
  ceOverrides: {extensions: {team: ml}}
  sink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: jobplane-reconciler}}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: not-a-pingsource}
spec: {broker: default, subscriber: {uri: "http://x"}}
"""


@pytest.fixture
def sources(tmp_path: Path) -> list[PingSource]:
    (tmp_path / "sources.yaml").write_text(PINGSOURCES_YAML)
    return load_pingsources(tmp_path)


def test_loads_pingsources_as_knative_reads_them(sources: list[PingSource]) -> None:
    every, binary = sources
    assert every.source == "/apis/v1/namespaces/default/pingsources/every-minute"
    assert every.to_broker and every.data == b'{"specId": "retrain-all"}'
    assert binary.source == "/apis/v1/namespaces/ops/pingsources/binary-to-service"
    assert not binary.to_broker and binary.data == b"\x00\x01\x02" and binary.timezone == "Europe/Berlin"


def test_ping_event_has_knatives_type_source_and_data(sources: list[PingSource]) -> None:
    now = at("2026-01-01T10:00:00+00:00")
    event = sources[0].event(now=now)
    assert event.type == PING == "dev.knative.sources.ping"
    assert event.source == "/apis/v1/namespaces/default/pingsources/every-minute"
    assert event.data == {"specId": "retrain-all"} and event.datacontenttype == "application/json"
    assert event.time == "2026-01-01T10:00:00.000Z" and event.id
    binary = sources[1].event(now=now)
    headers, body = to_http(binary)
    assert body == b"\x00\x01\x02" and headers["Content-Type"] == "application/octet-stream"
    assert headers["ce-team"] == "ml"
    assert from_http(headers, body).data == b"\x00\x01\x02"


def test_spec_pingsource_matches_what_a_cluster_runs() -> None:
    src = spec_pingsource({"id": "train-b1", "schedule": "0 3 * * *", "timezone": "Europe/Berlin"}, namespace="bots")
    assert src.source == "/apis/v1/namespaces/bots/pingsources/jobplane-spec-train-b1"
    event = src.event(now=at("2026-01-01T02:00:00+00:00"))
    assert event.data == {"specId": "train-b1"} and src.to_broker


def test_spec_pingsource_equals_the_rendered_manifest() -> None:
    from jobplane import schedules
    from jobplane.local.cron import pingsource_from_manifest
    from support.specs import make_spec

    spec = make_spec(id="t-" + "x" * 60, schedule="*/5 * * * *", timezone="Europe/Berlin")
    rendered = pingsource_from_manifest(schedules.pingsource_for(spec))
    local = spec_pingsource(spec)
    assert local == rendered
    assert len(local.name) <= 63


class Clock:
    def __init__(self, start: str) -> None:
        self.now = at(start)
        self.lock = threading.Lock()

    def __call__(self) -> datetime:
        with self.lock:
            return self.now

    def set(self, text: str) -> None:
        with self.lock:
            self.now = at(text)


def make_cron(sources: list[PingSource], specs: list[dict[str, Any]], clock: Clock) -> tuple[LocalCron, list[Event], list[tuple[Event, Any]]]:
    sent: list[Event] = []
    direct: list[tuple[Event, Any]] = []
    cron = LocalCron(
        sources, send=sent.append, specs_with_schedule=lambda: specs, clock=clock,
        send_direct=lambda e, sink: direct.append((e, sink)), tick=0.01,
    )
    return cron, sent, direct


def test_cron_fires_sources_and_scheduled_specs_at_most_once_a_minute(sources: list[PingSource]) -> None:
    clock = Clock("2026-01-01T09:59:10+00:00")
    specs = [{"id": "train-b1", "schedule": "*/2 * * * *", "timezone": "UTC"}, {"id": "no-schedule"}]
    cron, sent, direct = make_cron(sources, specs, clock)
    assert cron.run_pending() == []  # the first tick starts the count
    clock.set("2026-01-01T10:00:00.200+00:00")
    cron.run_pending()
    assert sorted(e.source.rsplit("/", 1)[1] for e in sent) == ["every-minute", "jobplane-spec-train-b1"]
    assert [e.source for e, _ in direct] == ["/apis/v1/namespaces/ops/pingsources/binary-to-service"]  # :00 Berlin
    clock.set("2026-01-01T10:00:40+00:00")
    assert cron.run_pending() == []
    clock.set("2026-01-01T10:01:02+00:00")
    assert [e.source.rsplit("/", 1)[1] for e in cron.run_pending()] == ["every-minute"]
    spec_event = next(e for e in sent if "jobplane-spec" in e.source)
    assert spec_event.data == {"specId": "train-b1"} and spec_event.type == PING
    assert len({e.id for e in sent}) == len(sent)


def test_a_late_tick_fires_each_source_once_not_once_per_missed_minute(sources: list[PingSource]) -> None:
    clock = Clock("2026-01-01T10:00:30+00:00")
    cron, sent, _ = make_cron(sources[:1], [], clock)
    cron.run_pending()
    clock.set("2026-01-01T11:30:00+00:00")
    assert len(cron.run_pending()) == 1


def test_invalid_spec_schedule_is_skipped_not_fatal(sources: list[PingSource]) -> None:
    clock = Clock("2026-01-01T10:00:30+00:00")
    cron, sent, _ = make_cron(sources[:1], [{"id": "bad", "schedule": "61 * * * *"}], clock)
    cron.run_pending()
    clock.set("2026-01-01T10:01:00+00:00")
    assert [e.source.rsplit("/", 1)[1] for e in cron.run_pending()] == ["every-minute"]


def test_cron_thread_fires_on_its_own(sources: list[PingSource]) -> None:
    clock = Clock("2026-01-01T10:00:30+00:00")
    fired = threading.Event()
    cron = LocalCron(sources[:1], send=lambda e: fired.set(), clock=clock, tick=0.01).start()
    try:
        threading.Event().wait(0.05)
        clock.set("2026-01-01T10:01:00+00:00")
        assert fired.wait(5)
    finally:
        cron.close()


def test_next_fires_lists_every_source(sources: list[PingSource]) -> None:
    clock = Clock("2026-01-01T10:00:30+00:00")
    cron, _, _ = make_cron(sources, [{"id": "s", "schedule": "0 0 * * *"}], clock)
    fires = cron.next_fires()
    assert fires["every-minute"] == at("2026-01-01T10:01:00+00:00")
    assert fires["binary-to-service"] == at("2026-01-01T11:05:00+01:00")
    assert fires["jobplane-spec-s"] == at("2026-01-02T00:00:00+00:00")


@pytest.mark.skipif(not (REPO / "eventing").is_dir(), reason="eventing/ manifests not in this checkout")
def test_loads_the_projects_pingsources() -> None:
    found = load_pingsources(REPO / "eventing")
    assert found, "eventing/ has PingSources"
    for src in found:
        assert src.source.startswith("/apis/v1/namespaces/default/pingsources/jobplane-")
        next_fire(src.schedule, src.timezone, datetime.now(UTC))
        assert src.event(now=datetime.now(UTC)).type == PING


# --- a spec whose PingSource is also a manifest fires once -----------------------------------

RETRAIN_MANIFEST = """
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {name: jobplane-spec-retrain-all}
spec:
  schedule: "0 2 * * 0"
  timezone: UTC
  contentType: application/json
  data: '{"specId": "retrain-all"}'
  sink: {ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}}
"""


def manifest_sources(tmp_path: Path) -> list[PingSource]:
    (tmp_path / "pingsource_retrain_all.yaml").write_text(RETRAIN_MANIFEST)
    return load_pingsources(tmp_path)


def test_a_stored_spec_with_the_same_pingsource_as_a_manifest_fires_once(tmp_path: Path) -> None:
    clock = Clock("2026-01-11T01:59:30+00:00")  # a Sunday
    spec = {"id": "retrain-all", "schedule": "0 2 * * 0", "timezone": "UTC"}
    cron, sent, _ = make_cron(manifest_sources(tmp_path), [spec], clock)
    cron.run_pending()
    clock.set("2026-01-11T02:00:01+00:00")

    fired = cron.run_pending()

    assert [e.data for e in fired] == [{"specId": "retrain-all"}] and sent == fired
    assert list(cron.next_fires()) == ["jobplane-spec-retrain-all"]


def test_when_spec_and_manifest_disagree_the_manifest_fires_and_the_difference_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock("2026-01-11T00:59:30+00:00")
    spec = {"id": "retrain-all", "schedule": "0 1 * * 0", "timezone": "UTC"}  # edited: an hour earlier
    cron, sent, _ = make_cron(manifest_sources(tmp_path), [spec], clock)
    cron.run_pending()
    for moment in ("2026-01-11T01:00:01+00:00", "2026-01-11T01:01:00+00:00"):
        clock.set(moment)
        assert cron.run_pending() == []
    clock.set("2026-01-11T02:00:00+00:00")

    assert len(cron.run_pending()) == 1 and len(sent) == 1
    assert "the manifest fires" in caplog.text and "'0 1 * * 0'" in caplog.text


@pytest.mark.skipif(not (REPO / "eventing").is_dir(), reason="eventing/ manifests not in this checkout")
def test_the_projects_scheduled_pingsources_and_built_in_specs_fire_each_once() -> None:
    import json

    from jobplane.local.plane import builtin_specs_dir

    specs = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(builtin_specs_dir().glob("*.json"))]
    clock = Clock("2026-01-11T01:59:30+00:00")  # Sunday: the weekly retrain, then the nightly tests
    cron, sent, _ = make_cron(load_pingsources(REPO / "eventing"), specs, clock)
    cron.run_pending()
    for moment in ("2026-01-11T02:00:00+00:00", "2026-01-11T02:01:00+00:00", "2026-01-11T03:30:00+00:00"):
        clock.set(moment)
        cron.run_pending()

    assert [e.data for e in sent] == [{"specId": "retrain-all"}, {"specId": "nightly-bot-tests"}]
