"""Who may reach and do what on a cluster: which Services are public, the api's own narrow
identity, Pod Security on the namespace and every pod, the ClusterRoles people are granted
(exactly what docs/deploy.md's "Security" table says), and the trainer's own cloud identity."""

from __future__ import annotations

import ast
import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from . import kube, pod_security
from .test_cross_references import PACKAGE, _call_grants, env_of, job_from_deployed_settings, services

NEEDS_KUBECTL = pytest.mark.skipif(not kube.has_kubectl(), reason="kubectl not installed: the base is resolved by hand")
PUBLIC = frozenset({"jobplane-api", "jobplane-predict"})
INTERNAL = frozenset({"jobplane-launch", "jobplane-status", "jobplane-reconciler", "jobplane-deadletter"})
VISIBILITY = "networking.knative.dev/visibility"
API_GROUP = "jobplane.dev"
DOCS = kube.REPO / "docs" / "deploy.md"
Grant = tuple[str, str]
"""(resource or resource/subresource, verb) in API group jobplane.dev."""


@pytest.fixture(scope="module")
def base() -> list[kube.Resource]:
    return kube.base_resources()


def built(overlay: Path) -> list[kube.Resource]:
    return kube.build(overlay)


def service_account_of(service: kube.Resource) -> str:
    return str(service["spec"]["template"]["spec"]["serviceAccountName"])


# --- exposure ------------------------------------------------------------------------------


def assert_only_api_and_predict_are_public(resources: list[kube.Resource]) -> None:
    found = services(resources)
    assert set(found) == PUBLIC | INTERNAL
    local = {n for n, s in found.items() if (s["metadata"].get("labels") or {}).get(VISIBILITY) == "cluster-local"}
    assert local == INTERNAL, f"cluster-local: {sorted(local)}; public must be exactly {sorted(PUBLIC)}"


def test_launch_status_reconciler_and_deadletter_are_cluster_local_and_only_api_and_predict_are_public(
    base: list[kube.Resource],
) -> None:
    assert_only_api_and_predict_are_public(base)


@NEEDS_KUBECTL
@pytest.mark.parametrize("overlay", kube.OVERLAYS, ids=lambda p: p.name)
def test_an_overlay_keeps_the_internal_services_cluster_local(overlay: Path) -> None:
    assert_only_api_and_predict_are_public(built(overlay))


@NEEDS_KUBECTL
@pytest.mark.parametrize("kdir", [kube.REPO / "knative" / "base", *kube.OVERLAYS], ids=lambda p: p.name)
def test_the_api_answers_only_to_its_own_names_in_its_namespace(kdir: Path) -> None:
    resources = built(kdir)
    [ns] = kube.by_kind(resources, "Namespace")
    hosts = kube.by_kind(resources, "ConfigMap")["jobplane-settings"]["data"]["JOBPLANE_ALLOWED_HOSTS"].split(",")
    assert f"jobplane-api.{ns}.svc.cluster.local" in hosts, "in-cluster callers reach the api by its Service name"
    assert all(h.startswith(f"jobplane-api.{ns}.") for h in hosts), f"no wildcard, no other namespace's api: {hosts}"


# --- the api's own identity ----------------------------------------------------------------


def role_grants(role: kube.Resource) -> set[tuple[str, str, str]]:
    return {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}


def launcher_method_grants() -> dict[str, set[tuple[str, str, str]]]:
    """KubernetesLauncher method → the (group, resource, verb) of every API call it makes,
    through the methods it calls on ``self``."""
    module = PACKAGE / "launcher" / "kubernetes.py"
    [cls] = [n for n in ast.parse(module.read_text(encoding="utf-8")).body
             if isinstance(n, ast.ClassDef) and n.name == "KubernetesLauncher"]
    direct: dict[str, set[tuple[str, str, str]]] = {}
    calls: dict[str, set[str]] = {}
    for method in (n for n in cls.body if isinstance(n, ast.FunctionDef)):
        found = [n for n in ast.walk(method) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)]
        direct[method.name] = set().union(*(_call_grants(n, module) for n in found))
        calls[method.name] = {n.func.attr for n in found if isinstance(n.func, ast.Attribute)
                              and isinstance(n.func.value, ast.Name) and n.func.value.id == "self"}
    return {name: _closure(name, direct, calls) for name in direct}


def _closure(name: str, direct: dict[str, set[Any]], calls: dict[str, set[str]]) -> set[Any]:
    seen, todo, out = {name}, [name], set()
    while todo:
        current = todo.pop()
        out |= direct.get(current, set())
        todo += [c for c in calls.get(current, set()) - seen if c in direct]
        seen |= calls.get(current, set())
    return out


def launcher_methods_called_by(module: Path) -> set[str]:
    """Names ``m`` of every ``<anything>.launcher.m(...)`` call in ``module``."""
    tree = ast.parse(module.read_text(encoding="utf-8"))
    return {n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
            and isinstance(n.func.value, ast.Attribute) and n.func.value.attr == "launcher"}


def test_the_api_runs_in_its_own_service_account_not_the_launchers(base: list[kube.Resource]) -> None:
    found = services(base)
    assert service_account_of(found["jobplane-api"]) == "jobplane-api"
    assert service_account_of(found["jobplane-launch"]) == "jobplane-launcher"
    binding = kube.by_kind(base, "RoleBinding")["jobplane-launcher"]
    assert {s["name"] for s in binding["subjects"]} == {"jobplane-launcher"}, "the api must not hold the launcher's Role"


def test_the_api_role_grants_exactly_what_the_api_handler_calls_and_never_create(base: list[kube.Resource]) -> None:
    used = launcher_methods_called_by(PACKAGE / "handlers" / "api.py")
    assert "cancel" in used, "the scanner should see :cancel's call"
    by_method = launcher_method_grants()
    needed = set().union(*(by_method[m] for m in used))
    grants = role_grants(kube.by_kind(base, "Role")["jobplane-api"])
    assert grants == needed
    assert not [g for g in grants if g[2] in ("create", "*")], "the public api must never create Jobs (or anything)"
    binding = kube.by_kind(base, "RoleBinding")["jobplane-api"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "jobplane-api"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "jobplane-api", "namespace": "jobplane"}]


def test_launcher_method_scanner_follows_calls_on_self() -> None:
    by_method = launcher_method_grants()
    assert by_method["cancel"] == {("batch", "jobs", "delete")}
    assert ("batch", "jobs", "get") in by_method["describe"], "describe reads through self._read"
    assert ("batch", "jobs", "create") in by_method["launch"]


def test_the_api_authorizes_people_with_kubernetes_rbac(base: list[kube.Resource]) -> None:
    assert env_of(services(base)["jobplane-api"])["JOBPLANE_AUTH"] == "kubernetes"


def auth_delegator_bindings(resources: list[kube.Resource]) -> list[kube.Resource]:
    return [b for b in kube.by_kind(resources, "ClusterRoleBinding").values()
            if b["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:auth-delegator"}]


def test_only_the_api_service_account_is_bound_to_system_auth_delegator(base: list[kube.Resource]) -> None:
    [binding] = auth_delegator_bindings(base)
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "jobplane-api", "namespace": "jobplane"}]
    assert set(kube.by_kind(base, "ClusterRoleBinding")) == {binding["metadata"]["name"]}, "no other cluster-wide grant"


@NEEDS_KUBECTL
@pytest.mark.parametrize("overlay", kube.OVERLAYS, ids=lambda p: p.name)
def test_an_overlay_binds_its_own_api_to_system_auth_delegator(overlay: Path) -> None:
    resources = built(overlay)
    [ns] = kube.by_kind(resources, "Namespace")
    [binding] = auth_delegator_bindings(resources)
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "jobplane-api", "namespace": ns}]


# --- Pod Security --------------------------------------------------------------------------

PSA_LABELS = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "audit", "warn")}


def test_the_namespace_enforces_audits_and_warns_the_restricted_pod_security_profile(base: list[kube.Resource]) -> None:
    [namespace] = kube.by_kind(base, "Namespace").values()
    assert namespace["metadata"]["labels"].items() >= PSA_LABELS.items()


@NEEDS_KUBECTL
@pytest.mark.parametrize("overlay", kube.OVERLAYS, ids=lambda p: p.name)
def test_an_overlays_namespace_keeps_the_restricted_labels(overlay: Path) -> None:
    [namespace] = kube.by_kind(built(overlay), "Namespace").values()
    assert namespace["metadata"]["labels"].items() >= PSA_LABELS.items()


RESTRICTED_CONTAINER = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


@pytest.mark.parametrize("name", sorted(PUBLIC | INTERNAL))
def test_every_function_runs_restricted_with_a_read_only_root_filesystem(base: list[kube.Resource], name: str) -> None:
    pod = kube.pod_of(services(base)[name])["spec"]
    assert pod_security.violations(pod) == []
    [container] = pod["containers"]
    assert container["securityContext"] == RESTRICTED_CONTAINER
    assert "securityContext" not in pod, "a pod-level securityContext needs Knative's podspec-securitycontext flag"
    volumes = {v["name"]: v for v in pod["volumes"]}
    [tmp] = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
    assert "emptyDir" in volumes[tmp["name"]], "the writable /tmp is an emptyDir"


def test_the_functions_image_puts_gunicorns_control_socket_on_the_writable_tmp() -> None:
    from .test_images import FUNCTIONS, final_stage

    env = " ".join(args for keyword, args in final_stage(FUNCTIONS) if keyword == "ENV")
    assert re.search(r"\bXDG_RUNTIME_DIR=/tmp(\s|$)", env), "else gunicorn writes under HOME, on the read-only root"


@pytest.mark.parametrize(("gpus", "kueue_on"), [(0, False), (1, False), (1, True)], ids=["cpu", "gpu", "gpu-kueue"])
def test_the_trainer_job_passes_the_restricted_profile(base: list[kube.Resource], gpus: int, kueue_on: bool) -> None:
    job = job_from_deployed_settings(base, kueue_on=kueue_on, resources={"gpus": gpus})
    pod = job["spec"]["template"]["spec"]
    assert pod_security.violations(pod) == []
    [container] = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    writable = {m["mountPath"] for m in container["volumeMounts"]}
    assert "/scratch" in writable, "the trainer's scratch, HOME and TMPDIR are an emptyDir"
    assert pod["automountServiceAccountToken"] is False


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(pod: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = pod
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        node[last] = value
    return mutate


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (_set("hostNetwork", True), "hostNetwork"),
        (_set("containers.0.securityContext.privileged", True), "privileged"),
        (_set("containers.0.securityContext.allowPrivilegeEscalation", True), "allowPrivilegeEscalation"),
        (_set("containers.0.securityContext.runAsNonRoot", False), "runAsNonRoot"),
        (_set("containers.0.securityContext.runAsUser", 0), "runAsUser"),
        (_set("containers.0.securityContext.seccompProfile", {"type": "Unconfined"}), "seccompProfile"),
        (_set("containers.0.securityContext.capabilities", {"drop": ["NET_RAW"]}), "drop: must include ALL"),
        (_set("containers.0.securityContext.capabilities", {"drop": ["ALL"], "add": ["SYS_ADMIN"]}), "SYS_ADMIN"),
        (_set("volumes", [{"name": "host", "hostPath": {"path": "/"}}]), "hostPath"),
        (_set("containers.0.ports", [{"containerPort": 80, "hostPort": 80}]), "hostPort"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_the_restricted_check_refuses_each_kind_of_violation(mutate: Callable[[dict[str, Any]], None], problem: str) -> None:
    service = kube.load_all(kube.REPO / "knative" / "base" / "service_status.yaml")[0]
    pod = copy.deepcopy(kube.pod_of(service)["spec"])
    assert pod_security.violations(pod) == []
    mutate(pod)
    assert any(problem in v for v in pod_security.violations(pod)), pod_security.violations(pod)


# --- the ClusterRoles people are granted -----------------------------------------------------


def documented_grants() -> dict[str, set[Grant]]:
    """docs/deploy.md's "Who can do what" table: ClusterRole → (resource, verb) it grants."""
    rows = _security_table(DOCS.read_text(encoding="utf-8"))
    header = [cell.strip("` ") for cell in rows[0]]
    roles = [h for h in header if h.startswith("jobplane-")]
    out: dict[str, set[Grant]] = {role: set() for role in roles}
    for cells in rows[2:]:
        resource = cells[0].strip("` ")
        verbs = re.findall(r"`([a-z]+)`", cells[1])
        for role in roles:
            if cells[header.index(role)].strip() == "yes":
                out[role] |= {(resource, verb) for verb in verbs}
    return out


def _security_table(text: str) -> list[list[str]]:
    """The rows (cells stripped) of the first table in "## Security" whose header names a role."""
    lines = text.split("\n## Security", 1)[1].split("\n## ", 1)[0].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|") and "jobplane-viewer" in line)
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return table


def cluster_role_grants(role: kube.Resource) -> set[Grant]:
    assert {g for rule in role["rules"] for g in rule["apiGroups"]} == {API_GROUP}, "jobplane.dev only"
    return {(r, v) for rule in role["rules"] for r in rule["resources"] for v in rule["verbs"]}


def test_the_security_table_is_read_from_the_docs() -> None:
    grants = documented_grants()
    assert set(grants) == {"jobplane-viewer", "jobplane-editor"}
    assert ("specs/runs", "create") in grants["jobplane-editor"]
    assert ("specs", "get") in grants["jobplane-viewer"]


@pytest.mark.parametrize("name", ["jobplane-viewer", "jobplane-editor"])
def test_each_cluster_role_grants_exactly_what_the_docs_say(base: list[kube.Resource], name: str) -> None:
    assert cluster_role_grants(kube.by_kind(base, "ClusterRole")[name]) == documented_grants()[name]


def test_the_viewer_only_reads_and_the_editor_can_do_everything_the_viewer_can(base: list[kube.Resource]) -> None:
    roles = kube.by_kind(base, "ClusterRole")
    viewer, editor = (cluster_role_grants(roles[n]) for n in ("jobplane-viewer", "jobplane-editor"))
    assert {verb for _, verb in viewer} == {"get", "list"}
    assert viewer < editor


def test_the_viewer_joins_view_and_the_editor_joins_edit_but_not_view(base: list[kube.Resource]) -> None:
    roles = kube.by_kind(base, "ClusterRole")
    aggregate = "rbac.authorization.k8s.io/aggregate-to-"

    def joins(name: str) -> set[str]:
        labels = roles[name]["metadata"].get("labels") or {}
        return {k.removeprefix(aggregate) for k, v in labels.items() if k.startswith(aggregate) and v == "true"}

    assert joins("jobplane-viewer") == {"view", "edit", "admin"}
    assert joins("jobplane-editor") == {"edit", "admin"}, "view stays read-only: no create verbs in it"


def test_the_cluster_roles_grant_every_permission_the_api_asks_rbac_for(base: list[kube.Resource]) -> None:
    permissions = pytest.importorskip("jobplane.auth.permissions", reason="JOBPLANE_AUTH=kubernetes not written yet")
    asked = {(r.resource + (f"/{r.subresource}" if r.subresource else ""), r.verb) for r in permissions.RULES}
    roles = kube.by_kind(base, "ClusterRole")
    editor, viewer = (cluster_role_grants(roles[n]) for n in ("jobplane-editor", "jobplane-viewer"))
    assert asked <= editor, "the editor may do every action the API has"
    assert {(res, verb) for res, verb in asked if verb in ("get", "list")} <= viewer
    assert editor - asked <= RESERVED, f"grants no route asks for: {sorted(editor - asked - RESERVED)}"


RESERVED: frozenset[Grant] = frozenset({("bots", "list")})
"""Granted because DESIGN.md's resource model has it, though no route asks for it yet."""


# --- cloud identities ----------------------------------------------------------------------

WORKLOAD_IDENTITY = "iam.gke.io/gcp-service-account"


@NEEDS_KUBECTL
def test_prod_gives_the_trainer_a_google_service_account_of_its_own() -> None:
    resources = built(kube.REPO / "knative" / "overlays" / "prod")
    accounts = kube.by_kind(resources, "ServiceAccount")
    used = {service_account_of(s) for s in services(resources).values()}
    google = {name: (accounts[name]["metadata"].get("annotations") or {}).get(WORKLOAD_IDENTITY) for name in accounts}
    assert all(google[name] for name in used | {"jobplane-trainer"}), f"every store user needs Workload Identity: {google}"
    functions_gsa = {google[name] for name in used}
    assert len(functions_gsa) == 1, "the functions share the control plane's Google service account"
    assert google["jobplane-trainer"] not in functions_gsa, "the trainer must not act as the functions"
    assert google["jobplane-trainer"].startswith("jobplane-trainer@")


def test_the_trainer_job_runs_as_the_trainer_service_account(base: list[kube.Resource]) -> None:
    job = job_from_deployed_settings(base, kueue_on=False)
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == "jobplane-trainer"
