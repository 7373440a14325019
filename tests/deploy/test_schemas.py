"""Every resource validates: core kinds against Kubernetes' OpenAPI schemas, Knative and Kueue
kinds against their CRDs (../shared/schemas), a Knative Service's pod template against PodSpec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from . import kube

needs_schemas = pytest.mark.skipif(not kube.SCHEMAS.is_dir(), reason=f"{kube.SCHEMAS} absent: CRD schemas unavailable")


def _resources_by_file() -> list[tuple[str, kube.Resource]]:
    patches = kube.patch_files()
    return [
        (f"{p.relative_to(kube.REPO)}", doc)
        for p in kube.yaml_files()
        if p.resolve() not in patches
        for doc in kube.load_all(p)
        if kube.is_resource(doc)
    ]


RESOURCES = _resources_by_file()
CORE = [(name, r) for name, r in RESOURCES if not kube.is_crd_kind(r)]
CUSTOM = [(name, r) for name, r in RESOURCES if kube.is_crd_kind(r)]


@pytest.mark.parametrize(("name", "resource"), CORE, ids=[n for n, _ in CORE])
def test_core_kind_validates_against_kubernetes_schema(name: str, resource: kube.Resource) -> None:
    kube.validate_core(resource)


@needs_schemas
@pytest.mark.parametrize(("name", "resource"), CUSTOM, ids=[n for n, _ in CUSTOM])
def test_knative_and_kueue_kinds_validate_against_their_crds(name: str, resource: kube.Resource) -> None:
    kube.validate_custom(resource)


@needs_schemas
@pytest.mark.skipif(not kube.has_kubectl(), reason="kubectl not installed: the source files are validated instead")
@pytest.mark.parametrize("overlay", kube.OVERLAYS, ids=lambda p: p.name)
def test_every_resource_of_a_built_overlay_validates(overlay: Path) -> None:
    for resource in kube.build(overlay):
        kube.validate(resource)


@needs_schemas
@pytest.mark.parametrize(
    ("path", "mutate", "match"),
    [
        ("eventing/trigger_run_progress.yaml", lambda r: r["spec"]["subscriber"]["ref"].update(nmae="x"), "nmae"),
        ("eventing/broker.yaml", lambda r: r["spec"]["delivery"].update(retry="5"), "'5' is not of type 'integer'"),
        ("knative/components/kueue/cluster_queue_training.yaml", lambda r: r["spec"].update(queueingStrategy="LIFO"), "LIFO"),
    ],
    ids=["misspelt-field", "wrong-type", "not-in-enum"],
)
def test_crd_validation_catches_broken_resources(path: str, mutate: Any, match: str) -> None:
    resource = kube.load_all(kube.REPO / path)[0]
    mutate(resource)
    with pytest.raises(jsonschema.ValidationError, match=match):
        kube.validate_custom(resource)


def test_pod_template_validation_catches_a_misspelt_container_field() -> None:
    service = kube.load_all(kube.REPO / "knative" / "base" / "service_launch.yaml")[0]
    service["spec"]["template"]["spec"]["containers"][0]["enviroment"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kube.validate_core(kube.pod_of(service))
