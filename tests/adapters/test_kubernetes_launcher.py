"""The Kubernetes launcher through the official client, over real HTTP, against a stateful
local API server (tests/k8s_api) that answers like the real one."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from k8s_api import FakeKubeApi
from support.specs import make_spec

from jobplane import conventions as c
from jobplane import runs
from jobplane.concurrency import decide
from jobplane.errors import ForbiddenError, PermanentError, UnavailableError
from jobplane.launcher import open_launcher
from jobplane.launcher.kubernetes import KubernetesLauncher
from jobplane.manifests import build_job
from jobplane.reconcile import reconcile
from jobplane.settings import Settings
from jobplane.store.files import FileStore

NS = "jobs"
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
SETTINGS = Settings(store_url="gs://bucket/prefix", launcher="kubernetes", namespace=NS,
                    sink="http://broker/jobs/default", callback_key=b"key")


@pytest.fixture
def kube() -> Iterator[FakeKubeApi]:
    with FakeKubeApi() as api:
        api.state.create("namespaces", "", {"metadata": {"name": NS}})
        yield api


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def launcher(kube: FakeKubeApi, sleeps: Sleeps) -> KubernetesLauncher:
    return KubernetesLauncher(kube.api_client(), namespace=NS, attempts=3, sleep=sleeps)


def job_for(event_id: str, *, settings: Settings = SETTINGS, **spec_overrides: Any) -> dict[str, Any]:
    spec = make_spec(**spec_overrides)
    run_id = runs.run_id_for(spec["id"], source="/apis/v1/namespaces/jobs/pingsources/nightly", event_id=event_id)
    return build_job(spec, {"id": run_id, "botId": "test-bot", "createdAt": "2026-01-01T00:00:00.000Z"}, settings=settings)


def names(kube: FakeKubeApi, plural: str = "jobs") -> list[str]:
    items, _ = kube.state.list(plural, NS)
    return [i["metadata"]["name"] for i in items]


def test_open_launcher_picks_kubernetes_and_takes_an_api_client(kube: FakeKubeApi) -> None:
    launcher = open_launcher(SETTINGS, api_client=kube.api_client())
    assert isinstance(launcher, KubernetesLauncher)
    assert launcher.launch(job_for("e1")).created


def test_one_trigger_delivered_ten_times_makes_one_job(kube: FakeKubeApi, launcher: KubernetesLauncher) -> None:
    results = []
    threads = [threading.Thread(target=lambda: results.append(launcher.launch(job_for("same-event"))))
               for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(names(kube)) == 1
    assert sorted(r.created for r in results) == [False] * 9 + [True]
    assert {r.name for r in results} == set(names(kube))
    assert kube.state.count("POST", "jobs") == 10


def test_replace_deletes_the_older_job_and_its_pods(kube: FakeKubeApi, launcher: KubernetesLauncher) -> None:
    older = launcher.launch(job_for("first", concurrency="Replace"))
    assert names(kube, "pods")  # the controller started it
    decision = decide("Replace", active=[{"id": older.name, "state": "running"}], exclude="second-run")
    for run_id in decision.supersede:
        launcher.cancel(run_id)
    newer = launcher.launch(job_for("second", concurrency="Replace"))
    assert names(kube) == [newer.name]
    assert all(p.startswith(newer.name) for p in names(kube, "pods"))


def test_cancel_of_a_missing_job_is_not_an_error(launcher: KubernetesLauncher) -> None:
    launcher.cancel("no-such-job")


def test_a_429_then_success_is_retried_after_retry_after(
    kube: FakeKubeApi, launcher: KubernetesLauncher, sleeps: Sleeps
) -> None:
    kube.state.fail_next(1, status=429, method="POST", resource="jobs", retry_after=2)
    assert launcher.launch(job_for("e1")).created
    assert sleeps == [2.0]
    assert kube.state.count("POST", "jobs") == 2


def test_5xx_past_the_retry_budget_is_unavailable(kube: FakeKubeApi, launcher: KubernetesLauncher, sleeps: Sleeps) -> None:
    kube.state.fail_next(3, status=503, method="POST")
    with pytest.raises(UnavailableError, match="3 times"):
        launcher.launch(job_for("e1"))
    assert len(sleeps) == 2 and names(kube) == []


def test_a_slow_answer_times_out_and_is_retried(kube: FakeKubeApi, sleeps: Sleeps) -> None:
    launcher = KubernetesLauncher(kube.api_client(), namespace=NS, attempts=2, timeout=(1.0, 0.2), sleep=sleeps)
    kube.state.fail_next(2, status=500, method="POST", delay=0.5)
    with pytest.raises(UnavailableError, match="ReadTimeout"):
        launcher.launch(job_for("e1"))
    kube.state.fail_next(1, status=500, method="POST", delay=0.5)
    assert launcher.launch(job_for("e1")).created
    assert len(sleeps) == 2


def test_422_is_permanent_with_the_servers_message(kube: FakeKubeApi, launcher: KubernetesLauncher) -> None:
    job = job_for("e1")
    job["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "2"}}
    with pytest.raises(PermanentError, match="must be equal to nvidia.com/gpu limit") as info:
        launcher.launch(job)
    assert "(422)" in info.value.message and len(info.value.message) < 400
    assert kube.state.count("POST", "jobs") == 1


def test_403_is_forbidden_and_not_retried(kube: FakeKubeApi, launcher: KubernetesLauncher) -> None:
    kube.state.fail_next(1, status=403, method="POST")
    with pytest.raises(ForbiddenError):
        launcher.launch(job_for("e1"))
    assert kube.state.count("POST", "jobs") == 1


def test_a_missing_namespace_is_permanent(kube: FakeKubeApi) -> None:
    launcher = KubernetesLauncher(kube.api_client(), namespace="nowhere")
    with pytest.raises(PermanentError, match='namespaces \\\\?"nowhere\\\\?" not found'):
        launcher.launch(job_for("e1"))


@pytest.mark.parametrize(
    ("finish", "state", "reason"),
    [
        (lambda s, n: s.complete_job(NS, n), "succeeded", None),
        (lambda s, n: s.fail_job(NS, n, reason="BackoffLimitExceeded"), "failed", "BackoffLimitExceeded"),
        (lambda s, n: s.fail_job(NS, n, reason="DeadlineExceeded"), "failed", "DeadlineExceeded"),
        (lambda s, n: s.fail_job(NS, n, reason="PodFailurePolicy"), "failed", "PodFailurePolicy"),
        (lambda s, n: None, "running", None),
    ],
)
def test_describe_maps_job_conditions(kube: FakeKubeApi, launcher: KubernetesLauncher,
                                      finish: Any, state: str, reason: str | None) -> None:
    name = launcher.launch(job_for("e1")).name
    finish(kube.state, name)
    status = launcher.describe(name)
    assert (status.state, status.reason) == (state, reason)
    assert status.failed_pods == (1 if state == "failed" else 0)  # the Job's status.failed
    assert status.labels[c.LABEL_RUN_ID] == name


def test_a_kueue_job_is_queued_until_admitted(kube: FakeKubeApi, launcher: KubernetesLauncher) -> None:
    name = launcher.launch(job_for("e1", settings=SETTINGS.with_(kueue=True))).name
    assert launcher.describe(name).state == "queued"
    assert names(kube, "pods") == []
    kube.state.patch("jobs", NS, name, {"spec": {"suspend": False}})  # what Kueue does on admission
    assert launcher.describe(name).state == "running"
    assert len(names(kube, "pods")) == 1


def test_describe_of_a_missing_job(launcher: KubernetesLauncher) -> None:
    assert launcher.describe("gone").state == "missing"


def test_list_selects_by_labels(launcher: KubernetesLauncher) -> None:
    a = launcher.launch(job_for("a"))
    launcher.launch(job_for("b", id="train-other-bot"))
    found = launcher.list({c.LABEL_SPEC_ID: "train-test-bot"})
    assert [s.name for s in found] == [a.name]
    assert len(launcher.list({c.LABEL_MANAGED_BY: c.MANAGED_BY})) == 2


def stored_run(store: FileStore, event_id: str) -> dict[str, Any]:
    run = runs.new_run(spec=make_spec(), trigger={"type": "t", "source": "/apis/v1/namespaces/jobs/pingsources/nightly",
                                                  "id": event_id, "subject": None}, requested_by="test", now=T0)
    runs.create_run(store, run)
    return runs.update_run(store, run["id"], lambda r: runs.transition(r, "running", now=T0))


def test_reconciler_marks_runs_whose_jobs_were_deleted_by_hand_or_died_as_failed(
    kube: FakeKubeApi, launcher: KubernetesLauncher, tmp_path: Path
) -> None:
    store = FileStore(tmp_path)
    deleted, timed_out, alive = (stored_run(store, e) for e in ("a", "b", "c"))
    for run in (deleted, timed_out, alive):
        assert launcher.launch(job_for(run["trigger"]["id"])).name == run["id"]
    kube.state.delete("jobs", NS, deleted["id"], propagation="Background")  # kubectl delete job
    kube.state.fail_job(NS, timed_out["id"], reason="DeadlineExceeded", message="Job was active longer than specified deadline")

    report = reconcile(store, launcher, now=T0 + timedelta(seconds=30))

    assert report.failed == {deleted["id"]: "JobMissing", timed_out["id"]: "DeadlineExceeded"}
    assert runs.get_run(store, deleted["id"])["state"] == "failed"
    assert runs.get_run(store, timed_out["id"])["message"] == "1 attempt failed; Job was active longer than specified deadline"
    assert runs.get_run(store, alive["id"])["state"] == "running"


def test_outside_a_cluster_the_client_is_configured_from_kubeconfig(
    kube: FakeKubeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: fake\n"
        f"clusters: [{{name: fake, cluster: {{server: '{kube.url}'}}}}]\n"
        "users: [{name: me, user: {token: t}}]\n"
        "contexts: [{name: fake, context: {cluster: fake, user: me}}]\n"
    )
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    assert open_launcher(SETTINGS).launch(job_for("e1")).created


def test_no_cluster_and_no_kubeconfig_is_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    with pytest.raises(UnavailableError, match="no Kubernetes config"):
        open_launcher(SETTINGS)


def test_list_reads_every_page(kube: FakeKubeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("jobplane.launcher.kubernetes.LIST_PAGE", 2)
    launcher = KubernetesLauncher(kube.api_client(), namespace=NS)
    created = {launcher.launch(job_for(f"e{i}")).name for i in range(5)}
    assert {s.name for s in launcher.list({c.LABEL_MANAGED_BY: c.MANAGED_BY})} == created
    assert kube.state.count("GET", "jobs") == 3


@pytest.mark.parametrize("kueue", [False, True])
def test_the_api_server_receives_the_manifest_exactly_as_built(kube: FakeKubeApi, launcher: KubernetesLauncher,
                                                               kueue: bool) -> None:
    job = job_for("e1", settings=SETTINGS.with_(kueue=kueue), resources={"gpus": 8, "cpu": "8", "memory": "64Gi"})
    launcher.launch(job)
    stored = kube.state.get("jobs", NS, job["metadata"]["name"])
    assert stored["metadata"]["labels"] == job["metadata"]["labels"]
    assert {k: stored["spec"][k] for k in job["spec"] if k != "template"} == \
        {k: v for k, v in job["spec"].items() if k != "template"}
    assert stored["spec"]["template"]["spec"] == job["spec"]["template"]["spec"]
