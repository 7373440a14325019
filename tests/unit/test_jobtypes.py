"""The job-type registry: one module per type, registered once, matching the trainer image's
entry points, the settings' image variables and the Kueue queues the manifests ship."""

from __future__ import annotations

from pathlib import Path

import yaml

from jobplane import jobtypes, manifests, settings
from jobplane.spec import validate_spec
from jobplane_trainer import jobtypes as trainer_jobtypes

KUEUE = Path(__file__).resolve().parents[2] / "knative" / "components" / "kueue"


def test_every_registered_type_is_one_the_trainer_image_runs() -> None:
    assert set(jobtypes.REGISTRY) == set(trainer_jobtypes.ENTRYPOINTS) == set(settings.JOB_TYPES)


def test_every_types_queue_is_a_local_queue_the_kueue_component_ships() -> None:
    shipped = {yaml.safe_load(p.read_text())["metadata"]["name"] for p in KUEUE.glob("local_queue_*.yaml")}
    assert {t.queue for t in jobtypes.REGISTRY.values()} <= shipped
    assert manifests.KUEUE_QUEUES == {name: t.queue for name, t in jobtypes.REGISTRY.items()}


def test_a_spec_gets_its_types_default_resources_and_timeout() -> None:
    kb = validate_spec({"id": "kb-b", "type": "kb-index", "params": {"botId": "b"}})
    assert (kb["resources"], kb["timeoutSeconds"]) == (dict(jobtypes.REGISTRY["kb-index"].resources), 1800)
    training = validate_spec({"id": "t", "type": "training", "params": {"botId": "b", "trainingData": {"uri": "gs://bkt/x.json"}}})
    assert (training["resources"]["cpu"], training["timeoutSeconds"]) == ("2", 3600)


def test_only_types_that_say_so_may_fan_out() -> None:
    assert {n for n, t in jobtypes.REGISTRY.items() if t.fan_out} == {"training", "bot-test"}


def test_an_unknown_type_is_not_registered() -> None:
    assert jobtypes.get("kb_index") is None and jobtypes.get(None) is None
