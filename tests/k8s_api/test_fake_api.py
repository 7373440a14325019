"""The Kubernetes API test double answers like the real server where the launcher's tests
rely on it: Status bodies, resourceVersions, selectors, propagation, watch, faults, rules."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from kubernetes import client, watch

from k8s_api import FakeKubeApi

JOBS = "/apis/batch/v1/namespaces/default/jobs"


def job(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "labels": labels},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                                           "containers": [{"name": "c", "image": "busybox"}]}}}}


@pytest.fixture
def api() -> Iterator[FakeKubeApi]:
    with FakeKubeApi() as server:
        yield server


def post(api: FakeKubeApi, body: dict[str, Any], path: str = JOBS) -> requests.Response:
    return requests.post(api.url + path, json=body, timeout=5)


def test_create_answers_201_then_409_already_exists_with_a_status_body(api: FakeKubeApi) -> None:
    first = post(api, job("a"))
    assert first.status_code == 201
    assert int(first.json()["metadata"]["resourceVersion"]) > 0
    again = post(api, job("a"))
    assert again.status_code == 409
    assert again.json() | {"details": None} == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'jobs.batch "a" already exists', "reason": "AlreadyExists", "code": 409, "details": None}


def test_get_of_a_missing_object_is_404_not_found(api: FakeKubeApi) -> None:
    r = requests.get(api.url + JOBS + "/nope", timeout=5)
    assert (r.status_code, r.json()["reason"]) == (404, "NotFound")


def test_a_missing_namespace_is_404(api: FakeKubeApi) -> None:
    r = post(api, job("a"), path="/apis/batch/v1/namespaces/ghost/jobs")
    assert r.status_code == 404 and r.json()["message"] == 'namespaces "ghost" not found'


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda j: j["metadata"].update(name="x" * 64), "metadata.name"),
        (lambda j: j["metadata"].update(name="Upper_Case"), "metadata.name"),
        (lambda j: j["spec"]["template"]["spec"]["containers"][0].update(
            resources={"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "2"}}),
         "spec.template.spec.containers[0].resources.requests[nvidia.com/gpu]"),
        (lambda j: j["spec"]["template"]["spec"]["containers"][0].update(
            resources={"limits": {"nvidia.com/gpu": "0.5"}}),
         "spec.template.spec.containers[0].resources.limits[nvidia.com/gpu]"),
        (lambda j: j["spec"]["template"]["spec"].update(restartPolicy="Always"), "spec.template.spec.restartPolicy"),
        (lambda j: (j["spec"].update(podFailurePolicy={"rules": []}),
                    j["spec"]["template"]["spec"].update(restartPolicy="OnFailure")), "spec.template.spec.restartPolicy"),
        (lambda j: j["metadata"]["labels"].update(bad="x" * 64), "metadata.labels"),
    ],
)
def test_server_side_rules_answer_422_invalid_with_the_field(api: FakeKubeApi, mutate: Any, field: str) -> None:
    body = job("a")
    mutate(body)
    r = post(api, body)
    assert r.status_code == 422
    assert r.json()["reason"] == "Invalid"
    assert field in [cause["field"] for cause in r.json()["details"]["causes"]]


def test_label_selectors(api: FakeKubeApi) -> None:
    for name, tier in (("a", "gold"), ("b", "silver"), ("c", "")):
        post(api, job(name, **({"tier": tier} if tier else {})))
    cases = {"tier=gold": ["a"], "tier!=gold": ["b", "c"], "tier in (gold,silver)": ["a", "b"],
             "tier notin (gold)": ["b", "c"], "tier": ["a", "b"], "!tier": ["c"]}
    for selector, expected in cases.items():
        r = requests.get(api.url + JOBS, params={"labelSelector": selector}, timeout=5)
        assert [i["metadata"]["name"] for i in r.json()["items"]] == expected, selector


def test_replace_with_a_stale_resource_version_is_409_conflict(api: FakeKubeApi) -> None:
    created = post(api, job("a")).json()
    api.state.set_job_status("default", "a", active=1)
    r = requests.put(api.url + JOBS + "/a", json=created, timeout=5)
    assert (r.status_code, r.json()["reason"]) == (409, "Conflict")


@pytest.mark.parametrize(("policy", "pods_left"), [(None, 1), ("Orphan", 1), ("Background", 0), ("Foreground", 0)])
def test_delete_propagation_decides_the_fate_of_the_pods(api: FakeKubeApi, policy: str | None, pods_left: int) -> None:
    post(api, job("a"))
    assert len(api.state.list("pods", "default")[0]) == 1
    r = requests.delete(api.url + JOBS + "/a", json={"propagationPolicy": policy} if policy else None, timeout=5)
    assert r.status_code == 200
    assert len(api.state.list("pods", "default")[0]) == pods_left


def test_injected_faults_answer_once_with_retry_after(api: FakeKubeApi) -> None:
    api.state.fail_next(1, status=429, method="POST", retry_after=3)
    r = post(api, job("a"))
    assert (r.status_code, r.headers["Retry-After"], r.json()["reason"]) == (429, "3", "TooManyRequests")
    assert post(api, job("a")).status_code == 201


def test_watch_streams_events_after_a_resource_version_through_the_official_client(api: FakeKubeApi) -> None:
    batch = client.BatchV1Api(api.api_client())
    rv = batch.list_namespaced_job("default").metadata.resource_version

    def act() -> None:
        post(api, job("a"))
        api.state.complete_job("default", "a")
        requests.delete(api.url + JOBS + "/a", json={"propagationPolicy": "Background"}, timeout=5)

    seen: list[tuple[str, str]] = []
    w = watch.Watch()
    threading.Timer(0.1, act).start()
    for event in w.stream(batch.list_namespaced_job, "default", resource_version=rv, timeout_seconds=5):
        conditions = event["object"].status.conditions or []
        seen.append((event["type"], conditions[-1].type if conditions else ""))
        if event["type"] == "DELETED":
            w.stop()
    assert seen[0] == ("ADDED", "") and seen[-1] == ("DELETED", "Complete")
    assert ("MODIFIED", "Complete") in seen


def test_token_and_access_reviews_answer_from_the_table_of_users_and_grants(api: FakeKubeApi) -> None:
    api.reviews.add_user("t-alice", "alice", groups=("devs",))
    api.reviews.grant("group:devs", "create", "specs/runs", namespace="bots")
    authn = client.AuthenticationV1Api(api.api_client())
    authz = client.AuthorizationV1Api(api.api_client())

    known = authn.create_token_review(client.V1TokenReview(spec=client.V1TokenReviewSpec(token="t-alice")))
    unknown = authn.create_token_review(client.V1TokenReview(spec=client.V1TokenReviewSpec(token="nope")))
    assert known.status.authenticated and known.status.user.username == "alice"
    assert "devs" in known.status.user.groups and not unknown.status.authenticated

    def may(verb: str, subresource: str | None, namespace: str) -> bool:
        attrs = client.V1ResourceAttributes(namespace=namespace, group="jobplane.dev", verb=verb, resource="specs",
                                            subresource=subresource)
        spec = client.V1SubjectAccessReviewSpec(user="alice", groups=["devs"], resource_attributes=attrs)
        return bool(authz.create_subject_access_review(client.V1SubjectAccessReview(spec=spec)).status.allowed)

    assert may("create", "runs", "bots")
    assert not may("create", None, "bots") and not may("create", "runs", "other") and not may("delete", "runs", "bots")
    assert api.reviews.token_reviews == 2 and len(api.reviews.access_reviews) == 4
