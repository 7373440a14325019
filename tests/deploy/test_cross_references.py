"""The manifests agree with the code and with each other: routes, names, verbs, settings."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from jobplane import conventions as c
from jobplane import events as ev
from jobplane import manifests
from jobplane import spec as specs

from . import kube

PACKAGE = kube.REPO / "functions" / "jobplane"
HANDLERS = PACKAGE / "handlers"
EVENT_TYPES = {name: value for name, value in vars(ev).items()
               if name.isupper() and isinstance(value, str) and re.fullmatch(r"dev\.[a-z]+(\.[a-z]+)+", value)}
"""Every CloudEvent type the code names (jobplane.events is the one place for them)."""
API_CALL = re.compile(r"^(create|read|list|delete|patch|replace)_namespaced_([a-z_]+)$")
VERB_OF = {"create": "create", "read": "get", "list": "list", "delete": "delete", "patch": "patch", "replace": "update"}
RESOURCE_OF = {
    "job": ("batch", "jobs"),
    "job_status": ("batch", "jobs/status"),
    "pod": ("", "pods"),
    "pod_log": ("", "pods/log"),
    "event": ("", "events"),
    "custom_object": ("kueue.x-k8s.io", "workloads"),
}
"""Kubernetes client method suffix → (API group, resource); extend when the code calls more."""


@pytest.fixture(scope="module")
def base() -> list[kube.Resource]:
    return kube.base_resources()


def triggers(base: list[kube.Resource]) -> list[kube.Resource]:
    return list(kube.by_kind(base, "Trigger").values())


def services(base: list[kube.Resource]) -> dict[str, kube.Resource]:
    return {n: r for n, r in kube.by_kind(base, "Service").items() if r["apiVersion"].startswith("serving.knative.dev/")}


def env_of(service: kube.Resource) -> dict[str, Any]:
    container = service["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


# --- routing -------------------------------------------------------------------------------


def test_there_is_one_knative_service_per_function_target(base: list[kube.Resource]) -> None:
    assert set(services(base)) == set(c.SERVICE_TARGETS)
    for name, service in services(base).items():
        assert env_of(service)["FUNCTION_TARGET"] == c.SERVICE_TARGETS[name], name


def test_every_function_target_is_defined_in_main() -> None:
    tree = ast.parse((kube.REPO / "functions" / "main.py").read_text(encoding="utf-8"))
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert set(c.SERVICE_TARGETS.values()) <= defined


def test_every_trigger_filters_on_one_type_and_names_an_existing_service(base: list[kube.Resource]) -> None:
    for trigger in triggers(base):
        assert trigger["spec"]["broker"] == c.BROKER_NAME
        assert set(trigger["spec"]["filter"]["attributes"]) == {"type"}, trigger["metadata"]["name"]
        ref = trigger["spec"]["subscriber"]["ref"]
        assert (ref["apiVersion"], ref["kind"]) == ("serving.knative.dev/v1", "Service")
        assert ref["name"] in services(base), f"{trigger['metadata']['name']} → missing Service {ref['name']}"


def test_every_event_type_has_exactly_one_trigger_and_every_trigger_type_is_known(base: list[kube.Resource]) -> None:
    routed = [t["spec"]["filter"]["attributes"]["type"] for t in triggers(base)]
    assert sorted(routed) == sorted(EVENT_TYPES.values())


@pytest.mark.parametrize("type_name", sorted(EVENT_TYPES), ids=str.lower)
def test_each_trigger_routes_to_a_handler_that_handles_its_type(base: list[kube.Resource], type_name: str) -> None:
    [trigger] = [t for t in triggers(base) if t["spec"]["filter"]["attributes"]["type"] == EVENT_TYPES[type_name]]
    target = c.SERVICE_TARGETS[trigger["spec"]["subscriber"]["ref"]["name"]]
    module = HANDLERS / f"{target}.py"
    if not module.exists():
        pytest.skip(f"{module.relative_to(kube.REPO)} not written yet")
    names = set().union(*(_names_used(m) for m in [module, *_package_imports(module)]))
    assert type_name in names, f"neither {module.name} nor what it imports mentions events.{type_name}"


def _names_used(module: Path) -> set[str]:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    attrs = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    return attrs | {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def _package_imports(module: Path) -> list[Path]:
    """The jobplane modules ``module`` imports directly (a handler may keep its type list in
    the domain module it calls), except events.py, which names every type."""
    out = []
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 2:
            base = PACKAGE.joinpath(*(node.module or "").split(".")) if node.module else PACKAGE
            out += [base / f"{a.name}.py" for a in node.names] + [base.with_suffix(".py")]
    return [p for p in out if p.exists() and p.name != "events.py"]


def test_broker_dead_letters_to_the_deadletter_function(base: list[kube.Resource]) -> None:
    broker = kube.by_kind(base, "Broker")[c.BROKER_NAME]
    delivery = broker["spec"]["delivery"]
    assert (delivery["retry"], delivery["backoffPolicy"], delivery["backoffDelay"]) == (5, "exponential", "PT0.5S")
    sink = delivery["deadLetterSink"]["ref"]
    assert sink["name"] in services(base)
    assert c.SERVICE_TARGETS[sink["name"]] == "deadletter"


def test_every_pingsource_sinks_to_the_broker_or_an_existing_service(base: list[kube.Resource]) -> None:
    for source in kube.by_kind(base, "PingSource").values():
        ref = source["spec"]["sink"]["ref"]
        if ref["kind"] == "Broker":
            assert ref["name"] == c.BROKER_NAME
        else:
            assert ref["kind"] == "Service" and ref["name"] in services(base)


def test_only_the_reconcilers_tick_bypasses_the_broker(base: list[kube.Resource]) -> None:
    """The ping Trigger filters on type alone, so a ping through the broker goes to launch:
    the reconciler's own tick must sink straight to it, and every other ping must name a spec."""
    for name, source in kube.by_kind(base, "PingSource").items():
        ref = source["spec"]["sink"]["ref"]
        data = json.loads(source["spec"]["data"])
        if ref["kind"] == "Service":
            assert c.SERVICE_TARGETS[ref["name"]] == "reconcile", name
            assert "specId" not in data
        else:
            assert set(data) == {"specId"}, name


# --- schedules name specs the code accepts ---------------------------------------------------


def scheduled_sources(base: list[kube.Resource]) -> dict[str, kube.Resource]:
    return {n: s for n, s in kube.by_kind(base, "PingSource").items() if s["spec"]["sink"]["ref"]["kind"] == "Broker"}


def test_every_pingsource_names_a_valid_spec_id_in_json_object_data(base: list[kube.Resource]) -> None:
    for name, source in scheduled_sources(base).items():
        assert source["spec"]["contentType"] == "application/json"
        spec_id = json.loads(source["spec"]["data"])["specId"]
        assert len(spec_id) <= specs.MAX_ID and kube.DNS_LABEL.match(spec_id), name
        assert source["metadata"]["labels"][c.LABEL_SPEC_ID] == spec_id
        assert source["spec"]["timezone"], f"{name}: a schedule without a timezone follows the node's clock"


def builtin_spec(spec_id: str) -> dict[str, Any] | None:
    """The built-in spec shipped with the package (``jobplane/data/specs/{id}.json``)."""
    path = PACKAGE / "data" / "specs" / f"{spec_id}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def test_every_pingsource_is_the_rendering_of_a_built_in_spec_the_validator_accepts(base: list[kube.Resource]) -> None:
    from jobplane import schedules

    missing = []
    for name, source in scheduled_sources(base).items():
        spec_id = json.loads(source["spec"]["data"])["specId"]
        spec = builtin_spec(spec_id)
        if spec is None:
            missing.append(spec_id)
            continue
        rendered = schedules.pingsource_for(spec, namespace=source["metadata"].get("namespace"))
        assert name == rendered["metadata"]["name"]
        assert source["metadata"]["labels"].items() >= rendered["metadata"]["labels"].items(), name
        assert source["spec"] == rendered["spec"], f"{name}: edit the spec {spec_id}, then render it again"
    if missing:
        pytest.skip(f"built-in specs not shipped yet under jobplane/data/specs/: {missing}")


# --- RBAC: exactly what the code calls ---------------------------------------------------------


def api_calls() -> set[tuple[str, str, str]]:
    """(group, resource, verb) of every Kubernetes client call in the package."""
    calls: set[tuple[str, str, str]] = set()
    for module in PACKAGE.rglob("*.py"):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                calls |= _call_grants(node, module)
    return calls


def _call_grants(node: ast.Call, module: Path) -> set[tuple[str, str, str]]:
    assert isinstance(node.func, ast.Attribute)
    match = API_CALL.match(node.func.attr)
    if not match:
        return set()
    verb, suffix = match.groups()
    assert suffix in RESOURCE_OF, f"{module.name}: {node.func.attr}: add {suffix!r} to RESOURCE_OF"
    group, resource = RESOURCE_OF[suffix]
    grants = {(group, resource, VERB_OF[verb])}
    if verb == "list" and any(k.arg == "watch" for k in node.keywords):
        grants.add((group, resource, "watch"))
    return grants


def role_grants(base: list[kube.Resource], name: str = "jobplane-launcher") -> set[tuple[str, str, str]]:
    role = kube.by_kind(base, "Role")[name]
    return {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}


KUEUE_GROUPS = ("kueue.x-k8s.io", "visibility.kueue.x-k8s.io")
VISIBILITY_GRANT = ("visibility.kueue.x-k8s.io", "localqueues/pendingworkloads", "get")
"""The visibility API is called by path (no client method): its grant is checked by that path."""


def test_role_grants_exactly_the_verbs_the_launcher_calls(base: list[kube.Resource]) -> None:
    if not (PACKAGE / "launcher" / "kubernetes.py").exists():
        pytest.skip("the Kubernetes launcher is not written yet")
    calls = api_calls()
    assert calls, "found no Kubernetes API call in the package"
    assert role_grants(base) == {c for c in calls if c[0] not in KUEUE_GROUPS}


def test_the_kueue_component_grants_exactly_what_the_launcher_reads_from_kueue() -> None:
    resources = kueue()
    kueue_calls = {c for c in api_calls() if c[0] in KUEUE_GROUPS}
    source = (PACKAGE / "launcher" / "kubernetes.py").read_text(encoding="utf-8")
    assert "/apis/visibility.kueue.x-k8s.io/v1beta1/namespaces/{ns}/localqueues/{queue}/pendingworkloads" in source
    assert role_grants(resources, "jobplane-launcher-kueue") == kueue_calls | {VISIBILITY_GRANT}
    binding = kube.by_kind(resources, "RoleBinding")["jobplane-launcher-kueue"]
    assert [s["name"] for s in binding["subjects"]] == ["jobplane-launcher"]


def test_api_call_scanner_sees_the_verbs_of_a_call() -> None:
    call = ast.parse("api.list_namespaced_pod(ns, watch=True)").body[0].value  # type: ignore[attr-defined]
    assert _call_grants(call, Path("x.py")) == {("", "pods", "list"), ("", "pods", "watch")}


def test_role_is_bound_to_the_services_that_call_the_kubernetes_api(base: list[kube.Resource]) -> None:
    binding = kube.by_kind(base, "RoleBinding")["jobplane-launcher"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "jobplane-launcher"}
    [subject] = binding["subjects"]
    callers = {n for n, s in services(base).items() if s["spec"]["template"]["spec"]["serviceAccountName"] == subject["name"]}
    assert {"jobplane-launch", "jobplane-reconciler"} <= callers
    assert not callers & {"jobplane-api", "jobplane-status", "jobplane-predict", "jobplane-deadletter"}


def test_every_service_account_named_exists(base: list[kube.Resource]) -> None:
    accounts = set(kube.by_kind(base, "ServiceAccount"))
    named = {s["spec"]["template"]["spec"]["serviceAccountName"] for s in services(base).values()}
    named.add(kube.by_kind(base, "ConfigMap")["jobplane-settings"]["data"]["JOBPLANE_SERVICE_ACCOUNT"])
    assert named <= accounts


# --- settings and secrets --------------------------------------------------------------------


def test_settings_configmap_is_read_by_settings_from_env(base: list[kube.Resource]) -> None:
    from jobplane.settings import Settings

    data = kube.by_kind(base, "ConfigMap")["jobplane-settings"]["data"]
    source = (PACKAGE / "settings.py").read_text(encoding="utf-8")
    unread = [k for k in data if f'"{k}"' not in source and not k.startswith("JOBPLANE_IMAGE_")]
    assert not unread, f"settings no code reads: {unread}"
    settings = Settings.from_env({**data, "JOBPLANE_CALLBACK_KEY": "k" * 64})
    assert settings.launcher == "kubernetes" and settings.store_url.startswith("gs://")
    assert set(settings.images) == {"training", "kb-index", "bot-test"}


def test_functions_that_mint_or_check_callback_tokens_get_the_key_from_the_secret(base: list[kube.Resource]) -> None:
    for name in ("jobplane-launch", "jobplane-status"):
        ref = env_of(services(base)[name])["JOBPLANE_CALLBACK_KEY"]
        assert ref == {"secretKeyRef": {"name": "jobplane-callback-key", "key": "key"}}, name
    for name in ("jobplane-api", "jobplane-predict", "jobplane-reconciler", "jobplane-deadletter"):
        assert "JOBPLANE_CALLBACK_KEY" not in env_of(services(base)[name]), f"{name} needs no callback key"


def test_every_service_reads_the_settings_configmap(base: list[kube.Resource]) -> None:
    for name, service in services(base).items():
        container = service["spec"]["template"]["spec"]["containers"][0]
        assert {"configMapRef": {"name": "jobplane-settings"}} in container["envFrom"], name


def test_every_service_explains_its_scaling_and_sets_concurrency_and_timeout() -> None:
    for path in sorted((kube.REPO / "knative" / "base").glob("service_*.yaml")):
        if path.name.startswith("service_account"):
            continue
        text = path.read_text(encoding="utf-8")
        assert text.startswith("# "), f"{path.name}: say why its scale, concurrency and timeout"
        [service] = kube.load_all(path)
        template = service["spec"]["template"]
        assert "autoscaling.knative.dev/max-scale" in template["metadata"]["annotations"]
        assert "autoscaling.knative.dev/min-scale" in template["metadata"]["annotations"]
        assert template["spec"]["containerConcurrency"] >= 1 and template["spec"]["timeoutSeconds"] >= 1


# --- priorities and queues -----------------------------------------------------------------


def test_a_priority_class_exists_for_every_spec_priority(base: list[kube.Resource]) -> None:
    classes = kube.by_kind(base, "PriorityClass")
    assert set(classes) == {manifests.PRIORITY_CLASSES[p] for p in specs.PRIORITIES}
    values = [classes[manifests.PRIORITY_CLASSES[p]]["value"] for p in specs.PRIORITIES]
    assert values == sorted(values, reverse=True), "high > normal > low"
    assert not any(pc.get("globalDefault") for pc in classes.values())


def kueue() -> list[kube.Resource]:
    return kube.accumulate(kube.REPO / "knative" / "components" / "kueue", inherited=kube.accumulate(kube.REPO / "knative" / "base"))


def test_kueue_workload_priorities_mirror_the_priority_classes(base: list[kube.Resource]) -> None:
    workload = kube.by_kind(kueue(), "WorkloadPriorityClass")
    classes = kube.by_kind(base, "PriorityClass")
    assert set(workload) == set(specs.PRIORITIES)
    for priority in specs.PRIORITIES:
        assert workload[priority]["value"] == classes[manifests.PRIORITY_CLASSES[priority]]["value"]


# --- the Jobs the launcher creates fit what the manifests provide ------------------------------


def job_from_deployed_settings(base: list[kube.Resource], *, kueue_on: bool, **spec: Any) -> dict[str, Any]:
    from support.specs import make_spec

    from jobplane.settings import Settings

    data = dict(kube.by_kind(base, "ConfigMap")["jobplane-settings"]["data"])
    data["JOBPLANE_KUEUE"] = "true" if kueue_on else "false"
    settings = Settings.from_env({**data, "JOBPLANE_CALLBACK_KEY": "k" * 64})
    run = {"id": "train-test-bot-0123abcd", "createdAt": "2026-01-01T00:00:00Z"}
    return manifests.build_job(make_spec(**spec), run, settings=settings)


@pytest.mark.parametrize("priority", specs.PRIORITIES)
def test_a_job_built_with_the_deployed_settings_names_only_what_the_manifests_create(
    base: list[kube.Resource], priority: str
) -> None:
    job = job_from_deployed_settings(base, kueue_on=False, priority=priority, resources={"gpus": 1})
    pod = job["spec"]["template"]["spec"]
    assert pod["priorityClassName"] in kube.by_kind(base, "PriorityClass")
    assert pod["serviceAccountName"] in kube.by_kind(base, "ServiceAccount")
    assert job["metadata"]["namespace"] == kube.by_kind(base, "Namespace").popitem()[0]
    kubernetes_validate.validate(job, kube.KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("job_type", sorted(manifests.KUEUE_QUEUES))
def test_a_kueue_job_names_an_existing_local_queue_and_workload_priority(base: list[kube.Resource], job_type: str) -> None:
    params = {"training": {}, "kb-index": {"articles": [{"id": "a", "title": "A", "text": "t"}]},
              "bot-test": {"tests": [{"text": "hi", "expectedIntent": "greet"}]}}[job_type]
    job = job_from_deployed_settings(base, kueue_on=True, type=job_type, params={"botId": "test-bot", **params})
    labels = job["metadata"]["labels"]
    assert labels[c.LABEL_KUEUE_QUEUE] in kube.by_kind(kueue(), "LocalQueue")
    assert labels["kueue.x-k8s.io/priority-class"] in kube.by_kind(kueue(), "WorkloadPriorityClass")
    assert job["spec"]["suspend"] is True
