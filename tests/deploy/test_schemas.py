"""Every resource validates: core kinds against Kubernetes' OpenAPI schemas, Knative and Kueue
kinds against their CRDs (../shared/schemas), a Knative Service's pod template against PodSpec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from . import kube

CRD_GROUPS = ("serving.knative.dev", "eventing.knative.dev", "sources.knative.dev", "kueue.x-k8s.io")
KNATIVE_REVISION_FIELDS = ("containerConcurrency", "timeoutSeconds", "responseStartTimeoutSeconds", "idleTimeoutSeconds")
"""Fields a Knative revision template adds beside the PodSpec ones."""
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


def _is_crd_kind(r: kube.Resource) -> bool:
    return str(r["apiVersion"]).split("/")[0] in CRD_GROUPS


RESOURCES = _resources_by_file()
CORE = [(name, r) for name, r in RESOURCES if not _is_crd_kind(r)]
CUSTOM = [(name, r) for name, r in RESOURCES if _is_crd_kind(r)]


def validate_core(resource: kube.Resource) -> None:
    kubernetes_validate.validate(resource, kube.KUBERNETES_VERSION, strict=True)


def validate_custom(resource: kube.Resource) -> None:
    key = (resource["apiVersion"], resource["kind"])
    schemas = kube.crd_schemas()
    assert key in schemas, f"no CRD schema for {key} in {kube.SCHEMAS}"
    error = jsonschema.exceptions.best_match(kube.crd_validator(*key).iter_errors(resource))
    if error is not None:
        raise error
    if resource["kind"] == "Service":
        validate_core(pod_of(resource))


def pod_of(service: kube.Resource) -> dict[str, Any]:
    """The Knative Service's revision template as a core Pod (its spec is mostly unchecked by
    the CRD: x-kubernetes-preserve-unknown-fields)."""
    spec = {k: v for k, v in service["spec"]["template"]["spec"].items() if k not in KNATIVE_REVISION_FIELDS}
    meta = {"name": service["metadata"]["name"], **service["spec"]["template"].get("metadata", {})}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


@pytest.mark.parametrize(("name", "resource"), CORE, ids=[n for n, _ in CORE])
def test_core_kind_validates_against_kubernetes_schema(name: str, resource: kube.Resource) -> None:
    validate_core(resource)


@needs_schemas
@pytest.mark.parametrize(("name", "resource"), CUSTOM, ids=[n for n, _ in CUSTOM])
def test_knative_and_kueue_kinds_validate_against_their_crds(name: str, resource: kube.Resource) -> None:
    validate_custom(resource)


@needs_schemas
@pytest.mark.skipif(not kube.has_kubectl(), reason="kubectl not installed: the source files are validated instead")
@pytest.mark.parametrize("overlay", kube.OVERLAYS, ids=lambda p: p.name)
def test_every_resource_of_a_built_overlay_validates(overlay: Path) -> None:
    for resource in kube.build(overlay):
        (validate_custom if _is_crd_kind(resource) else validate_core)(resource)


@needs_schemas
@pytest.mark.parametrize(
    ("path", "mutate", "match"),
    [
        ("eventing/trigger_run_progress.yaml", lambda r: r["spec"]["subscriber"]["ref"].update(nmae="x"), "nmae"),
        ("eventing/broker.yaml", lambda r: r["spec"]["delivery"].update(retry="5"), "'5' is not of type 'integer'"),
        ("knative/components/kueue/cluster_queue.yaml", lambda r: r["spec"].update(queueingStrategy="LIFO"), "LIFO"),
    ],
    ids=["misspelt-field", "wrong-type", "not-in-enum"],
)
def test_crd_validation_catches_broken_resources(path: str, mutate: Any, match: str) -> None:
    resource = kube.load_all(kube.REPO / path)[0]
    mutate(resource)
    with pytest.raises(jsonschema.ValidationError, match=match):
        validate_custom(resource)


def test_pod_template_validation_catches_a_misspelt_container_field() -> None:
    service = kube.load_all(kube.REPO / "knative" / "base" / "service_launch.yaml")[0]
    service["spec"]["template"]["spec"]["containers"][0]["enviroment"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_core(pod_of(service))
