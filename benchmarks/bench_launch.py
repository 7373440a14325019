"""Launches per second, and latency from CloudEvent POST to Job created, through the launch
function against the local Kubernetes API server (tests/k8s_api), beside the bare cost of one
create call measured in the same run against the same server.

Three processes, as in a cluster: this driver (the broker's role), the launch function
(the functions-framework app served as the image serves it: gunicorn, one worker, gthread;
``--server werkzeug`` for the development server) with the Kubernetes launcher and the file
store, and the API server. The launch function answers only after the Job is created, so a
POST's round trip is the trigger-to-Job latency. Each trigger runs its own spec (as each bot
has its own training spec), so no spec piles up active runs over the run. Two concurrency
policies: ``Allow`` (nothing to decide) and ``Replace`` (a bot's training spec's default: the
spec's active runs are listed before the create). Target: p50 within 2x the bare create, for a spec that has run before (the steady state: a bot retrains many times over
its life); the first run of a spec, which also makes the spec's index folders, is printed too.

    .venv/bin/python benchmarks/bench_launch.py [--launches 200] [--clients 4] [--server gunicorn]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # k8s_api: the local API server; support.specs

from support.specs import make_spec  # noqa: E402

NAMESPACE = "default"
SPEC: dict[str, Any] = make_spec(
    id="bench-train", description="benchmark spec", params={"botId": "bench-bot"},
    resources={"gpus": 1, "cpu": "2", "memory": "4Gi"}, retries=1,
)


# --- child processes -----------------------------------------------------------------------


def serve_kube(conn: Connection) -> None:
    from k8s_api import FakeKubeApi

    with FakeKubeApi(auto_pods=False) as api:
        conn.send(api.url)
        conn.recv()  # "stop"
        conn.send(len(api.state.list("jobs", NAMESPACE)[0]))


def serve_launch(kube_url: str, store_dir: str, fsync: bool, specs: int, policy: str, server: str,
                 conn: Connection) -> None:
    import logging

    from kubernetes import client

    from jobplane import conventions as c
    from jobplane import runtime
    from jobplane.app import create_function_app
    from jobplane.launcher.kubernetes import KubernetesLauncher
    from jobplane.settings import Settings
    from jobplane.store.files import FileStore

    logging.disable(logging.WARNING)
    store = FileStore(Path(store_dir), fsync=fsync)
    for i in range(specs):
        store.write(c.spec_key(spec_id(i)), json.dumps({**SPEC, "id": spec_id(i), "concurrency": policy}).encode())
    settings = Settings(store_url=store.url, launcher="kubernetes", namespace=NAMESPACE,
                        sink="http://127.0.0.1:9/default/default", callback_key=b"bench-key" * 4)
    api_config = client.Configuration()
    api_config.host = kube_url
    launcher = KubernetesLauncher(client.ApiClient(api_config), namespace=NAMESPACE)
    runtime.install(runtime.Runtime(settings=settings, store=store, launcher_factory=lambda: launcher,
                                    send=lambda event: None))
    app = create_function_app("launch")
    if server == "werkzeug":
        serve_werkzeug(app, conn)
    else:
        serve_gunicorn(app, conn)


def serve_werkzeug(app: Any, conn: Connection) -> None:
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    conn.send(server.server_port)
    conn.recv()
    server.shutdown()
    conn.send("stopped")


def serve_gunicorn(app: Any, conn: Connection) -> None:
    """As ``functions-framework`` runs it in the image (its GunicornApplication: one worker,
    gthread, THREADS=20 as knative/base/service_launch.yaml sets); the arbiter forks the
    worker, which inherits the runtime installed above."""
    from functions_framework._http.gunicorn import GunicornApplication

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    os.environ["THREADS"] = "20"
    gunicorn = GunicornApplication(app, "127.0.0.1", port, False)

    def stop_on_request() -> None:
        conn.recv()
        os.kill(os.getpid(), signal.SIGTERM)  # the arbiter stops its worker and exits

    threading.Thread(target=stop_on_request, daemon=True).start()
    threading.Thread(target=lambda: (wait_listening(port), conn.send(port)), daemon=True).start()
    try:
        gunicorn.run()
    finally:
        conn.send("stopped")


def wait_listening(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def start(target: Callable[..., None], *args: Any) -> tuple[multiprocessing.Process, Connection, Any]:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=target, args=(*args, child), daemon=True)
    proc.start()
    return proc, parent, parent.recv()


def stop(proc: multiprocessing.Process, conn: Connection) -> Any:
    conn.send("stop")
    answer = conn.recv()
    proc.join(timeout=10)
    return answer


# --- measurements --------------------------------------------------------------------------


class Direct:
    """The baselines, from this process against the same API server: a bare
    ``create_namespaced_job`` of the official client with a manifest built beforehand, and
    ``build_job`` + ``KubernetesLauncher.launch`` (the adapter's share of a launch)."""

    def __init__(self, kube_url: str) -> None:
        from kubernetes import client

        from jobplane.launcher.kubernetes import KubernetesLauncher
        from jobplane.settings import Settings

        api_config = client.Configuration()
        api_config.host = kube_url
        api = client.ApiClient(api_config)
        self.batch, self.launcher = client.BatchV1Api(api), KubernetesLauncher(api, namespace=NAMESPACE)
        self.settings = Settings(store_url="file:///tmp/x", namespace=NAMESPACE, callback_key=b"k")

    def bare_create(self, name: str) -> float:
        from jobplane.manifests import build_job

        job = build_job(SPEC, {"id": name, "botId": "bench-bot"}, settings=self.settings)
        t0 = time.perf_counter()
        self.batch.create_namespaced_job(NAMESPACE, job)
        return time.perf_counter() - t0

    def adapter_launch(self, name: str) -> float:
        from jobplane.manifests import build_job

        t0 = time.perf_counter()
        self.launcher.launch(build_job(SPEC, {"id": name, "botId": "bench-bot"}, settings=self.settings))
        return time.perf_counter() - t0


def spec_id(i: int) -> str:
    return f"bench-{i}"


def post_event(conn: http.client.HTTPConnection, event_id: str, spec: str) -> float:
    headers = {"ce-specversion": "1.0", "ce-type": "dev.jobplane.run.requested", "ce-source": "/bench",
               "ce-id": event_id, "ce-subject": spec, "content-type": "application/json"}
    body = json.dumps({"specId": spec}).encode()
    t0 = time.perf_counter()
    conn.request("POST", "/", body=body, headers=headers)
    resp = conn.getresponse()
    resp.read()
    elapsed = time.perf_counter() - t0
    if resp.status != 200:
        raise RuntimeError(f"launch answered {resp.status}")
    return elapsed


def sequential_launches(port: int, direct: Direct, count: int, *, tag: str) -> dict[str, list[float]]:
    """Interleaved, one of each per step, so load from elsewhere on the machine hits all
    three alike: bare create, adapter launch, CloudEvent POST → Job."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    rows: dict[str, list[float]] = {"bare": [], "adapter": [], "post": []}
    for i in range(count + 10):  # the first 10 warm connections, caches and the client's models
        step = {"bare": direct.bare_create(f"bare-{tag}-{i}"),
                "adapter": direct.adapter_launch(f"adapter-{tag}-{i}"),
                "post": post_event(conn, f"seq-{tag}-{i}", spec_id(i))}
        if i >= 10:
            for key, value in step.items():
                rows[key].append(value)
    return rows


def concurrent_launches(port: int, count: int, clients: int, *, first_spec: int, tag: str) -> float:
    """Launches per second with ``clients`` keep-alive connections."""
    per_client = count // clients

    def work(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for i in range(per_client):
            post_event(conn, f"par-{tag}-{k}-{i}", spec_id(first_spec + k * per_client + i))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return per_client * clients / (time.perf_counter() - t0)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def line(label: str, timings: list[float], extra: str = "") -> str:
    return (f"  {label:<44} p50 {pct(timings, 0.5):7.2f} ms   p99 {pct(timings, 0.99):7.2f} ms   "
            f"{len(timings) / sum(timings):7.0f}/s sequential{extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--launches", type=int, default=200)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--server", choices=("gunicorn", "werkzeug"), default="gunicorn")
    parser.add_argument("--policies", default="Allow,Replace")
    args = parser.parse_args()
    kube, kube_conn, kube_url = start(serve_kube)
    try:
        direct = Direct(kube_url)
        print(f"launch benchmark: {args.launches} launches per row, launch function under {args.server}, "
              f"local API server {kube_url}")
        for fsync in (False, True):
            for policy in args.policies.split(","):
                measure(direct, kube_url, fsync=fsync, policy=policy, args=args)
    finally:
        jobs = stop(kube, kube_conn)
    print(f"  jobs on the API server: {jobs} (every launch made its own)")


def measure(direct: Direct, kube_url: str, *, fsync: bool, policy: str, args: argparse.Namespace) -> None:
    """Round 1 launches each spec's first run; those runs then end (as their Jobs would report);
    round 2 launches each spec again."""
    tag = f"{policy.lower()}-{str(fsync).lower()}"
    with tempfile.TemporaryDirectory(prefix="bench-launch-") as tmp:
        proc, conn, port = start(serve_launch, kube_url, tmp, fsync, 2 * args.launches + 20, policy, args.server)
        try:
            first = sequential_launches(port, direct, args.launches, tag=f"{tag}-1")
            first_rate = concurrent_launches(port, args.launches, args.clients, first_spec=args.launches + 10, tag=f"{tag}-1")
            finish_runs(Path(tmp))
            again = sequential_launches(port, direct, args.launches, tag=f"{tag}-2")
            rate = concurrent_launches(port, args.launches, args.clients, first_spec=args.launches + 10, tag=f"{tag}-2")
        finally:
            stop(proc, conn)
    print(f" file store, fsync {'on' if fsync else 'off'}, concurrency {policy}:")
    print(line("baseline: bare create (official client)", again["bare"]))
    print(line("build_job + KubernetesLauncher.launch", again["adapter"]))
    print(line("CloudEvent POST -> Job created", again["post"], f"   {rate:6.0f}/s with {args.clients} clients"))
    print(line("  the same, each spec's first run", first["post"], f"   {first_rate:6.0f}/s with {args.clients} clients"))
    ratio = pct(again["post"], 0.5) / pct(again["bare"], 0.5)
    first_ratio = pct(first["post"], 0.5) / pct(first["bare"], 0.5)
    print(f"  {'':<44} p50 = {ratio:.1f}x bare create (target <= 2x); first run of a spec {first_ratio:.1f}x")


def finish_runs(store_dir: Path) -> None:
    """Every run in the store ends ``succeeded``, as the trainer's final callback would make it."""
    from datetime import UTC, datetime

    from jobplane import runs
    from jobplane.store.files import FileStore

    store, now = FileStore(store_dir, fsync=False), datetime.now(UTC)
    for key in store.list("runs/"):
        if key.endswith("/run.json"):
            runs.update_run(store, key.split("/")[1], lambda r: None if runs.is_terminal(r) else runs.transition(r, "succeeded", now=now))


if __name__ == "__main__":
    main()
