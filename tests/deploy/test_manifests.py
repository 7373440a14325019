"""The manifests parse, hold one resource per file, and every kustomization builds."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import kube

NEEDS_KUBECTL = pytest.mark.skipif(not kube.has_kubectl(), reason="kubectl not installed: resolved by hand instead")


@pytest.mark.parametrize("path", kube.yaml_files(), ids=lambda p: str(p.relative_to(kube.REPO)))
def test_every_yaml_file_parses_to_one_document(path: Path) -> None:
    docs = kube.load_all(path)
    assert len(docs) == 1, f"{path}: one resource (or patch) per file, found {len(docs)} documents"


@pytest.mark.parametrize("kdir", kube.kustomizations(), ids=lambda p: str(p.relative_to(kube.REPO)))
def test_every_file_beside_a_kustomization_is_listed_in_it(kdir: Path) -> None:
    listed = kube.listed_files(kdir)
    stray = [p.name for p in kdir.glob("*.yaml") if p.name != kube.KUSTOMIZATION and p.resolve() not in listed]
    assert not stray, f"{kdir}: files not named in {kube.KUSTOMIZATION}: {stray}"
    missing = [str(p) for p in listed if not p.exists()]
    assert not missing, f"{kdir}: names files that do not exist: {missing}"


@pytest.mark.parametrize("kdir", kube.kustomizations(), ids=lambda p: str(p.relative_to(kube.REPO)))
def test_every_resource_path_and_patch_target_resolves(kdir: Path) -> None:
    component = kube.load_all(kdir / kube.KUSTOMIZATION)[0].get("kind") == "Component"
    kube.accumulate(kdir, inherited=kube.accumulate(kube.REPO / "knative" / "base") if component else None)


@NEEDS_KUBECTL
@pytest.mark.parametrize("kdir", [kube.REPO / "knative" / "base", kube.REPO / "eventing", *kube.OVERLAYS],
                         ids=lambda p: str(p.relative_to(kube.REPO)))
def test_kustomization_builds(kdir: Path) -> None:
    assert kube.build(kdir)


@NEEDS_KUBECTL
@pytest.mark.parametrize("overlay", kube.OVERLAYS, ids=lambda p: p.name)
def test_overlay_puts_every_namespaced_resource_in_one_namespace(overlay: Path) -> None:
    resources = kube.build(overlay)
    namespace = kube.by_kind(resources, "Namespace")
    assert len(namespace) == 1
    ns = next(iter(namespace))
    assert {r["metadata"].get("namespace") for r in resources if r["kind"] not in kube.CLUSTER_SCOPED} == {ns}
    bindings = [*kube.by_kind(resources, "RoleBinding").values(), *kube.by_kind(resources, "ClusterRoleBinding").values()]
    assert {"jobplane-launcher", "jobplane-api"} <= {b["metadata"]["name"] for b in bindings}
    assert {s["namespace"] for b in bindings for s in b["subjects"] if s["kind"] == "ServiceAccount"} == {ns}
    for name in kube.by_kind(resources, "ClusterRoleBinding"):
        assert name.startswith(f"{ns}-"), f"{name}: cluster-wide, so named after {ns} or another overlay rebinds it"
    settings = kube.by_kind(resources, "ConfigMap")["jobplane-settings"]["data"]
    assert settings["JOBPLANE_NAMESPACE"] == ns
    assert settings["JOBPLANE_SINK"].endswith(f"/{ns}/default"), "the Jobs' sink is this namespace's Broker"


@NEEDS_KUBECTL
@pytest.mark.parametrize("overlay", kube.OVERLAYS, ids=lambda p: p.name)
def test_overlay_only_patches_the_base(overlay: Path) -> None:
    def names(resources: list[kube.Resource]) -> set[tuple[str, str]]:
        """A ClusterRoleBinding's name without its namespace prefix (overlays rename it)."""
        [ns] = kube.by_kind(resources, "Namespace")
        return {(r["kind"], r["metadata"]["name"].removeprefix(f"{ns}-") if r["kind"] == "ClusterRoleBinding"
                 else r["metadata"]["name"]) for r in resources if r["kind"] != "Namespace"}

    assert names(kube.build(overlay)) == names(kube.build(kube.REPO / "knative" / "base"))


@NEEDS_KUBECTL
def test_optional_components_compose_with_an_overlay(tmp_path: Path) -> None:
    """What docs/deploy.md tells users to do: add the components to an overlay's kustomization."""
    overlay = tmp_path / "prod"
    overlay.mkdir()
    for src in (kube.REPO / "knative" / "overlays" / "prod").glob("*.yaml"):
        (overlay / src.name).write_text(src.read_text(encoding="utf-8"), encoding="utf-8")
    kfile = overlay / kube.KUSTOMIZATION
    base = kube.REPO / "knative" / "base"
    text = kfile.read_text(encoding="utf-8").replace("../../base", _rel(base, overlay))
    components = [kube.REPO / "knative" / "components" / "kueue", kube.REPO / "eventing" / "components" / "sinkbinding"]
    text += "components:\n" + "".join(f"  - {_rel(c, overlay)}\n" for c in components)
    kfile.write_text(text, encoding="utf-8")
    resources = kube.build(overlay)
    ns = "jobplane"
    assert {r["metadata"].get("namespace") for r in resources if r["kind"] in ("LocalQueue", "SinkBinding")} == {ns}
    assert kube.by_kind(resources, "ConfigMap")["jobplane-settings"]["data"]["JOBPLANE_KUEUE"] == "true"
    if kube.SCHEMAS.is_dir():
        for resource in resources:
            kube.validate(resource)


def _rel(path: Path, start: Path) -> str:
    import os

    return os.path.relpath(path, start)


def test_no_secret_is_committed() -> None:
    kinds = {doc.get("kind") for p in kube.yaml_files() for doc in kube.load_all(p) if isinstance(doc, dict)}
    assert "Secret" not in kinds, "the callback key is created by hand (docs/deploy.md), never committed"
