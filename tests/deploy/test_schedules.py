"""PingSources rendered from a spec's schedule: valid, named as the embedded cron names them,
and the same as the PingSources committed in eventing/ for the built-in specs."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from support.specs import make_spec

from jobplane import schedules
from jobplane.errors import ValidationError

from . import kube

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def scheduled(**overrides: Any) -> dict[str, Any]:
    return make_spec(**{"id": "retrain-pizza", "schedule": "0 2 * * 0", "timezone": "Europe/Berlin", **overrides})


def test_renders_a_pingsource_that_sends_the_spec_id_to_the_broker() -> None:
    doc = yaml.safe_load(schedules.render_pingsource(scheduled()))
    assert doc["kind"] == "PingSource" and doc["apiVersion"] == "sources.knative.dev/v1"
    assert doc["metadata"]["name"] == "jobplane-spec-retrain-pizza"
    assert doc["metadata"]["labels"]["jobplane.dev/spec-id"] == "retrain-pizza"
    assert doc["spec"]["schedule"] == "0 2 * * 0"
    assert doc["spec"]["timezone"] == "Europe/Berlin"
    assert yaml.safe_load(doc["spec"]["data"]) == {"specId": "retrain-pizza"}
    assert doc["spec"]["sink"]["ref"] == {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "default"}


def test_rendered_text_says_where_it_comes_from() -> None:
    assert schedules.render_pingsource(scheduled()).startswith("# Rendered from job spec 'retrain-pizza'")


def test_namespace_and_broker_are_set_when_given() -> None:
    doc = schedules.pingsource_for(scheduled(), namespace="jobplane-dev", broker="other")
    assert doc["metadata"]["namespace"] == "jobplane-dev"
    assert doc["spec"]["sink"]["ref"]["name"] == "other"


def test_timezone_defaults_as_the_spec_does() -> None:
    spec = scheduled()
    del spec["timezone"]
    assert schedules.pingsource_for(spec)["spec"]["timezone"] == "UTC"


def test_spec_without_schedule_is_refused_with_its_field() -> None:
    spec = make_spec(id="no-schedule")
    spec.pop("schedule", None)
    with pytest.raises(ValidationError, match=r"spec\.schedule"):
        schedules.pingsource_for(spec)


def test_invalid_spec_is_refused_with_every_problem() -> None:
    with pytest.raises(ValidationError) as info:
        schedules.pingsource_for(scheduled(schedule="61 * * * *", priority="urgent"))
    fields = {p.field for p in info.value.problems}
    assert {"spec.schedule", "spec.priority"} <= fields


@pytest.mark.parametrize("spec_id", ["a", "retrain-all", "x" * 63])
def test_name_is_a_dns_label_of_at_most_63_characters(spec_id: str) -> None:
    name = schedules.pingsource_name(spec_id)
    assert len(name) <= 63 and DNS_LABEL.match(name)


def test_long_ids_that_share_a_prefix_get_different_names() -> None:
    assert schedules.pingsource_name("x" * 60 + "a") != schedules.pingsource_name("x" * 60 + "b")


def test_the_embedded_cron_fires_the_same_pingsource_for_a_spec() -> None:
    cron = pytest.importorskip("jobplane.local.cron", reason="the embedded cron is not there yet")
    rendered = schedules.pingsource_for(scheduled())
    local = cron.spec_pingsource(scheduled())
    assert local.name == rendered["metadata"]["name"]
    assert local.data == rendered["spec"]["data"].encode()
    assert (local.schedule, local.timezone) == (rendered["spec"]["schedule"], rendered["spec"]["timezone"])


@pytest.mark.skipif(not kube.SCHEMAS.is_dir(), reason=f"{kube.SCHEMAS} absent: CRD schemas unavailable")
def test_rendered_pingsource_validates_against_the_crd() -> None:
    validator = kube.crd_validator("sources.knative.dev/v1", "PingSource")
    errors = [e.message for e in validator.iter_errors(schedules.pingsource_for(scheduled()))]
    assert not errors
