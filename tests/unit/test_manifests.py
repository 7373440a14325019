"""The Job builder: every Job it can produce is one a real API server accepts."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from datetime import UTC, datetime
from typing import Any

import kubernetes_validate
import pytest
from k8s_api.validation import check_job
from support.specs import make_spec

from jobplane import conventions as c
from jobplane.errors import PermanentError
from jobplane.manifests import build_job
from jobplane.runs import run_id_for
from jobplane.settings import Settings
from jobplane.tokens import verify_token

KUBERNETES_VERSIONS = ("1.30", "1.33")
KEY = b"test-callback-key"

PARAMS: dict[str, dict[str, Any]] = {
    "training": {"botId": "bank-bot", "trainingData": {"uri": "gs://b/bots/bank-bot/data/1.json"}, "epochs": 5},
    "kb-index": {"botId": "bank-bot", "articles": [{"id": "a1", "title": "Fees", "text": "No fees."}]},
    "bot-test": {"botId": "bank-bot"},
}


def make_settings(**overrides: Any) -> Settings:
    base = Settings(
        store_url="gs://jobplane-test/prod",
        launcher="kubernetes",
        namespace="jobs",
        sink="http://broker-ingress.knative-eventing.svc.cluster.local/jobs/default",
        callback_key=KEY,
        images={"training": "registry.example/trainer:1.2.3", "kb-index": "registry.example/indexer:1.2.3"},
    )
    return base.with_(**overrides)


def spec_for(job_type: str, *, gpus: int = 0, priority: str = "normal", **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"id": f"{job_type}-bank-bot", "type": job_type, "priority": priority,
                              "resources": {"gpus": gpus, "cpu": "4", "memory": "16Gi"}}
    spec = make_spec(**{**fields, **overrides})
    spec["params"] = dict(PARAMS[job_type])
    return spec


CREATED = "2031-05-01T12:00:00Z"


def test_the_callback_token_expires_a_day_after_the_runs_deadline() -> None:
    spec = {**spec_for("training"), "timeoutSeconds": 3600}
    token = env_of(build_job(spec, run_for(spec), settings=make_settings()))[c.ENV_TOKEN]
    run_id = run_for(spec)["id"]
    assert verify_token(KEY, run_id, token, now=datetime(2031, 5, 2, 12, 59, tzinfo=UTC))
    assert not verify_token(KEY, run_id, token, now=datetime(2031, 5, 2, 13, 0, tzinfo=UTC))


def test_a_token_with_its_expiry_changed_or_in_the_old_format_is_refused() -> None:
    spec = spec_for("training")
    run_id = run_for(spec)["id"]
    token = env_of(build_job(spec, run_for(spec), settings=make_settings()))[c.ENV_TOKEN]
    version, expires, mac = token.split(".")
    later = f"{version}.{int(expires) + 86400}.{mac}"
    old_format = hmac.new(KEY, f"jobplane-run:{run_id}".encode(), hashlib.sha256).hexdigest()
    now = datetime(2031, 5, 1, 13, tzinfo=UTC)
    assert verify_token(KEY, run_id, token, now=now)
    assert not verify_token(KEY, run_id, later, now=now) and not verify_token(KEY, run_id, old_format, now=now)


def test_env_names_the_allowed_data_prefixes_and_the_size_cap_for_the_trainers_own_check() -> None:
    spec = spec_for("training")
    settings = make_settings().with_(data_prefixes=("gs://shared/nlu/",), max_data_bytes=1234)
    env = env_of(build_job(spec, run_for(spec), settings=settings))
    assert env[c.ENV_DATA_PREFIXES] == "gs://shared/nlu/" and env[c.ENV_MAX_DATA_BYTES] == "1234"


def run_for(spec: dict[str, Any]) -> dict[str, Any]:
    run_id = run_id_for(spec["id"], source="/apis/v1/namespaces/jobs/pingsources/nightly", event_id="e-1")
    return {"id": run_id, "specId": spec["id"], "botId": spec["params"].get("botId"), "createdAt": CREATED}


TABLE = list(itertools.product(("training", "kb-index", "bot-test"), (0, 1, 8), ("high", "normal", "low"), (False, True)))


def env_of(job: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_job_validates_in_strict_mode_against_the_kubernetes_schema(version: str) -> None:
    for job_type, gpus, priority, kueue in TABLE:
        spec = spec_for(job_type, gpus=gpus, priority=priority)
        job = build_job(spec, run_for(spec), settings=make_settings(kueue=kueue))
        kubernetes_validate.validate(job, version, strict=True)


@pytest.mark.parametrize(("job_type", "gpus", "priority", "kueue"), TABLE)
def test_every_job_passes_the_server_side_rules(job_type: str, gpus: int, priority: str, kueue: bool) -> None:
    spec = spec_for(job_type, gpus=gpus, priority=priority)
    job = build_job(spec, run_for(spec), settings=make_settings(kueue=kueue))
    assert check_job(job) == []


def test_longest_spec_id_still_names_a_dns_label_job() -> None:
    spec = spec_for("training", id="t" + "-x" * 31)  # 63 characters, the longest a spec id may be
    job = build_job(spec, run_for(spec), settings=make_settings())
    assert len(job["metadata"]["name"]) <= 63
    assert check_job(job) == []


def test_name_is_the_run_id_and_labels_identify_run_spec_bot_and_type() -> None:
    spec = spec_for("training")
    run = run_for(spec)
    job = build_job(spec, run, settings=make_settings())
    assert job["metadata"]["name"] == run["id"]
    assert job["metadata"]["namespace"] == "jobs"
    expected = {c.LABEL_MANAGED_BY: c.MANAGED_BY, c.LABEL_RUN_ID: run["id"], c.LABEL_SPEC_ID: spec["id"],
                c.LABEL_BOT_ID: "bank-bot", c.LABEL_TYPE: "training"}
    assert job["metadata"]["labels"] == expected
    assert job["spec"]["template"]["metadata"]["labels"] == expected


def test_builder_is_deterministic() -> None:
    spec = spec_for("training", gpus=1)
    assert build_job(spec, run_for(spec), settings=make_settings()) == build_job(spec, run_for(spec), settings=make_settings())


def test_retries_timeout_and_ttl_become_backoff_deadline_and_ttl() -> None:
    spec = spec_for("training", retries=5, timeoutSeconds=7200)
    job = build_job(spec, run_for(spec), settings=make_settings(ttl_seconds_after_finished=600))
    assert (job["spec"]["backoffLimit"], job["spec"]["activeDeadlineSeconds"], job["spec"]["ttlSecondsAfterFinished"]) == (5, 7200, 600)
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_bad_data_exit_code_fails_the_job_and_disruptions_are_ignored() -> None:
    spec = spec_for("training")
    rules = build_job(spec, run_for(spec), settings=make_settings())["spec"]["podFailurePolicy"]["rules"]
    assert rules[0] == {"action": "FailJob", "onExitCodes": {"containerName": "trainer", "operator": "In",
                                                             "values": [c.EXIT_BAD_DATA]}}
    assert rules[1]["action"] == "Ignore"
    assert rules[1]["onPodConditions"][0]["type"] == "DisruptionTarget"


@pytest.mark.parametrize("gpus", [1, 8])
def test_gpus_are_whole_string_limits_equal_to_requests_with_the_gpu_toleration(gpus: int) -> None:
    spec = spec_for("training", gpus=gpus)
    settings = make_settings(node_selector={"cloud.google.com/gke-accelerator": "nvidia-l4"})
    pod = build_job(spec, run_for(spec), settings=settings)["spec"]["template"]["spec"]
    resources = pod["containers"][0]["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == str(gpus)
    assert resources["requests"] == resources["limits"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}


def test_cpu_job_asks_for_no_gpu_and_tolerates_no_gpu_taint() -> None:
    spec = spec_for("kb-index", gpus=0)
    pod = build_job(spec, run_for(spec), settings=make_settings(node_selector={"a": "b"}))["spec"]["template"]["spec"]
    assert "nvidia.com/gpu" not in pod["containers"][0]["resources"]["limits"]
    assert pod["containers"][0]["resources"]["limits"] == {"cpu": "4", "memory": "16Gi"}
    assert "tolerations" not in pod and "nodeSelector" not in pod


@pytest.mark.parametrize("priority", ["high", "normal", "low"])
def test_priority_class_follows_the_spec_priority(priority: str) -> None:
    spec = spec_for("training", priority=priority)
    job = build_job(spec, run_for(spec), settings=make_settings())
    assert job["spec"]["template"]["spec"]["priorityClassName"] == f"jobplane-{priority}"


@pytest.mark.parametrize(("job_type", "queue"), [("training", "training"), ("kb-index", "kb-index"), ("bot-test", "bot-test")])
def test_with_kueue_the_job_names_its_type_queue_and_starts_suspended(job_type: str, queue: str) -> None:
    spec = spec_for(job_type, priority="high")
    job = build_job(spec, run_for(spec), settings=make_settings(kueue=True))
    assert job["metadata"]["labels"][c.LABEL_KUEUE_QUEUE] == queue
    assert job["metadata"]["labels"]["kueue.x-k8s.io/priority-class"] == "high"
    assert job["spec"]["suspend"] is True


def test_without_kueue_the_job_is_neither_queued_nor_suspended() -> None:
    spec = spec_for("training")
    job = build_job(spec, run_for(spec), settings=make_settings(kueue=False))
    assert c.LABEL_KUEUE_QUEUE not in job["metadata"]["labels"]
    assert "suspend" not in job["spec"]


def test_pod_is_restricted_with_a_writable_scratch_dir_only() -> None:
    spec = spec_for("training", gpus=1)
    pod = build_job(spec, run_for(spec), settings=make_settings())["spec"]["template"]["spec"]
    ctr = pod["containers"][0]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert ctr["securityContext"]["allowPrivilegeEscalation"] is False
    assert ctr["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert ctr["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"]: m["name"] for m in ctr["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts[c.SCRATCH_PATH]]


def test_env_carries_the_run_its_callback_token_the_sink_and_the_store() -> None:
    spec = spec_for("training")
    run = run_for(spec)
    settings = make_settings()
    env = env_of(build_job(spec, run, settings=settings))
    assert env[c.ENV_SINK] == settings.sink
    assert env[c.ENV_RUN_ID] == run["id"]
    assert env[c.ENV_SPEC_ID] == spec["id"] and env[c.ENV_BOT_ID] == "bank-bot" and env[c.ENV_JOB_TYPE] == "training"
    assert verify_token(KEY, run["id"], env[c.ENV_TOKEN], now=datetime(2031, 5, 1, 13, tzinfo=UTC))
    assert not verify_token(KEY, "another-run", env[c.ENV_TOKEN], now=datetime(2031, 5, 1, 13, tzinfo=UTC))
    assert env[c.ENV_STORE] == "gs://jobplane-test/prod"
    assert env[c.ENV_SCRATCH] == c.SCRATCH_PATH
    assert json.loads(env[c.ENV_PARAMS]) == PARAMS["training"]


def test_run_params_override_spec_params() -> None:
    spec = spec_for("training")
    run = {**run_for(spec), "params": {"epochs": 9}}
    assert json.loads(env_of(build_job(spec, run, settings=make_settings()))[c.ENV_PARAMS])["epochs"] == 9


def test_inline_training_data_never_reaches_the_job() -> None:
    spec = spec_for("training")
    spec["params"]["trainingData"] = {"examples": [{"text": "hi", "intent": "greet"}]}
    with pytest.raises(PermanentError, match="trainingData"):
        build_job(spec, run_for(spec), settings=make_settings())


def test_image_and_command_come_from_settings_per_job_type_never_from_the_spec() -> None:
    spec = spec_for("kb-index", image="evil/image:latest", command=["sh", "-c", "curl evil"])
    settings = make_settings(command=("python", "-m", "jobplane_trainer", "run"))
    ctr = build_job(spec, run_for(spec), settings=settings)["spec"]["template"]["spec"]["containers"][0]
    assert ctr["image"] == "registry.example/indexer:1.2.3"
    assert ctr["command"] == ["python", "-m", "jobplane_trainer", "run"]


def test_oversized_params_are_refused_with_a_hint() -> None:
    spec = spec_for("kb-index")
    spec["params"]["articles"] = [{"id": f"a{i}", "title": "t", "text": "x" * 1000} for i in range(40)]
    with pytest.raises(PermanentError, match="by uri"):
        build_job(spec, run_for(spec), settings=make_settings())


def test_the_job_carries_the_runs_trace_as_its_own_hop_in_env_and_annotation() -> None:
    spec = make_spec()
    run = {**run_for(spec), "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    job = build_job(spec, run, settings=make_settings())
    hop = env_of(job)[c.ENV_TRACEPARENT]
    assert hop.startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-") and hop != run["traceparent"]
    assert job["metadata"]["annotations"] == {c.ANNOTATION_TRACEPARENT: hop}
    assert build_job(spec, run, settings=make_settings()) == job, "deterministic: a redelivery rebuilds the same Job"
    kubernetes_validate.validate(job, KUBERNETES_VERSIONS[-1], strict=True)


def test_a_run_without_a_trace_gets_a_job_without_one() -> None:
    job = build_job(make_spec(), run_for(make_spec()), settings=make_settings())
    assert c.ENV_TRACEPARENT not in env_of(job) and "annotations" not in job["metadata"]
