"""Helpers for the manifest tests: load the repo's YAML, build kustomizations, validate schemas.

The manifests are tested without a cluster: parsed, built with ``kubectl kustomize`` where it
exists (else resolved by hand), core kinds validated against Kubernetes' OpenAPI schemas and
Knative/Kueue kinds against their CRDs' ``openAPIV3Schema`` from ``../shared/schemas``.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
SCHEMAS = SHARED / "schemas"
MANIFEST_DIRS = (REPO / "knative", REPO / "eventing")
OVERLAYS = (REPO / "knative" / "overlays" / "dev", REPO / "knative" / "overlays" / "prod")
KUSTOMIZATION = "kustomization.yaml"
KUBERNETES_VERSION = "1.31.0"
"""Oldest cluster the manifests target: podFailurePolicy is GA from 1.31."""
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
CLUSTER_SCOPED_CRDS = frozenset({"ClusterQueue", "ResourceFlavor", "WorkloadPriorityClass"})
CLUSTER_SCOPED = frozenset({"Namespace", "PriorityClass", "ClusterRole", "ClusterRoleBinding", *CLUSTER_SCOPED_CRDS})

Resource = dict[str, Any]


def yaml_files() -> list[Path]:
    return sorted(p for d in MANIFEST_DIRS for p in d.rglob("*.yaml"))


def load_all(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def is_resource(doc: Any) -> bool:
    """A whole Kubernetes object (not a kustomization, a patch or a transformer config)."""
    return (
        isinstance(doc, dict)
        and "kind" in doc
        and "apiVersion" in doc
        and not str(doc["apiVersion"]).startswith(("kustomize.config.k8s.io", "builtin"))
    )


def kustomizations() -> list[Path]:
    return sorted(p.parent for d in MANIFEST_DIRS for p in d.rglob(KUSTOMIZATION))


def listed_files(kdir: Path) -> set[Path]:
    """Every file a kustomization names (resources, patches, transformers), resolved."""
    k = load_all(kdir / KUSTOMIZATION)[0]
    names = [*k.get("resources", []), *k.get("components", []), *k.get("transformers", [])]
    names += [p["path"] for p in k.get("patches", []) if "path" in p]
    return {(kdir / n).resolve() for n in names}


def patch_files() -> set[Path]:
    """Files used as patches (partial resources, validated only once built into an overlay)."""
    out: set[Path] = set()
    for kdir in kustomizations():
        k = load_all(kdir / KUSTOMIZATION)[0]
        out |= {(kdir / p["path"]).resolve() for p in k.get("patches", []) if "path" in p}
    return out


def accumulate(kdir: Path, *, inherited: list[Resource] | None = None) -> list[Resource]:
    """The resources a kustomization yields, without transformers: a stand-in for kustomize
    where no kustomize binary exists, enough to check that paths and patch targets resolve.
    A Component patches what the including kustomization has (``inherited``)."""
    k = load_all(kdir / KUSTOMIZATION)[0]
    out: list[Resource] = list(inherited or [])
    for name in k.get("resources", []):
        path = kdir / name
        out += accumulate(path) if path.is_dir() else [d for d in load_all(path) if is_resource(d)]
    for name in k.get("components", []):
        out = accumulate(kdir / name, inherited=out)
    for patch in k.get("patches", []):
        if not _patch_matches(kdir, patch, out):
            raise AssertionError(f"{kdir / KUSTOMIZATION}: patch {patch} matches no resource")
    return out


def _patch_matches(kdir: Path, patch: Mapping[str, Any], resources: list[Resource]) -> bool:
    target = patch.get("target")
    if target is None:
        body = load_all(kdir / patch["path"])[0]
        target = {"kind": body["kind"], "name": body["metadata"]["name"]}
    return any(_selects(target, r) for r in resources)


def _selects(target: Mapping[str, Any], r: Resource) -> bool:
    group = str(r["apiVersion"]).rpartition("/")[0]
    checks = (
        ("kind", r["kind"]),
        ("name", r["metadata"]["name"]),
        ("group", group),
    )
    return all(key not in target or re.fullmatch(str(target[key]), value) for key, value in checks)


def has_kubectl() -> bool:
    return shutil.which("kubectl") is not None


@cache
def _build_text(kdir: Path) -> str:
    done = subprocess.run(
        ["kubectl", "kustomize", str(kdir)], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise AssertionError(f"kubectl kustomize {kdir} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def build(kdir: Path) -> list[Resource]:
    """``kubectl kustomize kdir`` (cached; callers get their own copy)."""
    return [d for d in yaml.safe_load_all(_build_text(kdir)) if d is not None]


def by_kind(resources: list[Resource], kind: str) -> dict[str, Resource]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def base_resources() -> list[Resource]:
    """The base as built (kubectl) or accumulated by hand."""
    base = REPO / "knative" / "base"
    return build(base) if has_kubectl() else accumulate(base)


# --- schemas -------------------------------------------------------------------------------

CRD_GROUPS = ("serving.knative.dev", "eventing.knative.dev", "sources.knative.dev", "kueue.x-k8s.io")
KNATIVE_REVISION_FIELDS = ("containerConcurrency", "timeoutSeconds", "responseStartTimeoutSeconds", "idleTimeoutSeconds")
"""Fields a Knative revision template adds beside the PodSpec ones."""


def is_crd_kind(r: Resource) -> bool:
    return str(r["apiVersion"]).split("/")[0] in CRD_GROUPS


def validate(resource: Resource) -> None:
    """Against Kubernetes' schema for core kinds, the CRD's for Knative and Kueue kinds."""
    (validate_custom if is_crd_kind(resource) else validate_core)(resource)


def validate_core(resource: Resource) -> None:
    kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def validate_custom(resource: Resource) -> None:
    key = (resource["apiVersion"], resource["kind"])
    assert key in crd_schemas(), f"no CRD schema for {key} in {SCHEMAS}"
    error = jsonschema.exceptions.best_match(crd_validator(*key).iter_errors(resource))
    if error is not None:
        raise error
    if resource["kind"] == "Service":
        validate_core(pod_of(resource))


def pod_of(service: Resource) -> dict[str, Any]:
    """The Knative Service's revision template as a core Pod (its spec is mostly unchecked by
    the CRD: x-kubernetes-preserve-unknown-fields)."""
    spec = {k: v for k, v in service["spec"]["template"]["spec"].items() if k not in KNATIVE_REVISION_FIELDS}
    meta = {"name": service["metadata"]["name"], **service["spec"]["template"].get("metadata", {})}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}



@cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) → openAPIV3Schema of every CRD in ../shared/schemas, made strict."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(SCHEMAS.rglob("*.yaml")):
        for crd in load_all(path):
            if not (isinstance(crd, dict) and crd.get("kind") == "CustomResourceDefinition"):
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schema = strict(version["schema"]["openAPIV3Schema"])
                out[(f"{group}/{version['name']}", kind)] = schema
    return out


@cache
def crd_validator(api_version: str, kind: str) -> Any:
    """A jsonschema validator for the CRD of (apiVersion, kind), built once."""
    schema = crd_schemas()[(api_version, kind)]
    return jsonschema.validators.validator_for(schema)(schema)


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """The API server prunes unknown fields silently; in tests a misspelt field should fail,
    so objects with declared properties reject others (unless they preserve unknown fields)."""
    schema = copy.deepcopy(schema)
    for node in _walk(schema):
        if (
            node.get("type") == "object"
            and "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
    top = schema.setdefault("properties", {})
    top.setdefault("apiVersion", {"type": "string"})
    top.setdefault("kind", {"type": "string"})
    top["metadata"] = {"type": "object"}
    return schema


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)
