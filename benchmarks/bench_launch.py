"""Launches per second, and latency from CloudEvent POST to Job created, through the launch
function against the local Kubernetes API server (tests/k8s_api), beside the bare cost of one
create call measured in the same run against the same server.

Three processes, as in a cluster: this driver (the broker's role), the launch function
(the functions-framework app served as the image serves it: gunicorn, one worker, gthread;
``--server werkzeug`` for the development server) with the Kubernetes launcher and the file
store, and the API server. "Job created" is the moment the API server stored the Job (its
clock and the driver's are the machine's monotonic clock); "answered" is the POST's round trip,
which also waits for the run record and its index entries, written after the create. Each
trigger runs its own spec (as each bot has its own training spec), so no spec piles up active
runs over the run. Two concurrency policies: ``Allow`` (nothing to decide) and ``Replace`` (a
bot's training spec's default: the (spec, bot) slot is taken by a compare-and-swap before the
create). Target: p50 POST -> Job created within 2x the bare create (the official client's
round trip), for a spec that has run before (the steady state: a bot retrains many times over
its life); the first run of a spec is printed too.

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

from support.specs import TEST_DATA_PREFIXES, make_spec  # noqa: E402

NAMESPACE = "default"
SOURCE = "/bench"
SPEC: dict[str, Any] = make_spec(
    id="bench-train", description="benchmark spec", params={"botId": "bench-bot"},
    resources={"gpus": 1, "cpu": "2", "memory": "4Gi"}, retries=1,
)


# --- child processes -----------------------------------------------------------------------


def serve_kube(conn: Connection) -> None:
    from k8s_api import FakeKubeApi

    with FakeKubeApi(auto_pods=False) as api:
        conn.send(api.url)
        while conn.recv() == "created":  # when each Job was stored (monotonic ns), by name
            with api.state.cond:
                conn.send({name: ns for (plural, _, name), ns in api.state.created_ns.items() if plural == "jobs"})
        conn.send(len(api.state.list("jobs", NAMESPACE)[0]))  # "stop"


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
    settings = Settings(data_prefixes=TEST_DATA_PREFIXES, store_url=store.url, launcher="kubernetes", namespace=NAMESPACE,
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
        api_config.host = self.kube_url = kube_url
        api = client.ApiClient(api_config)
        self.batch, self.launcher = client.BatchV1Api(api), KubernetesLauncher(api, namespace=NAMESPACE)
        self.settings = Settings(store_url="file:///tmp/x", namespace=NAMESPACE, callback_key=b"k")

    def bare_create(self, name: str) -> tuple[int, float]:
        from jobplane.manifests import build_job

        job = build_job(SPEC, {"id": name, "botId": "bench-bot", "createdAt": "2026-01-01T00:00:00.000Z"}, settings=self.settings)
        sent, t0 = time.monotonic_ns(), time.perf_counter()
        self.batch.create_namespaced_job(NAMESPACE, job)
        return sent, time.perf_counter() - t0

    def adapter_launch(self, name: str) -> tuple[int, float]:
        from jobplane.manifests import build_job

        sent, t0 = time.monotonic_ns(), time.perf_counter()
        self.launcher.launch(build_job(SPEC, {"id": name, "botId": "bench-bot", "createdAt": "2026-01-01T00:00:00.000Z"}, settings=self.settings))
        return sent, time.perf_counter() - t0


def spec_id(i: int) -> str:
    return f"bench-{i}"


def post_event(conn: http.client.HTTPConnection, event_id: str, spec: str) -> tuple[int, float]:
    headers = {"ce-specversion": "1.0", "ce-type": "dev.jobplane.run.requested", "ce-source": SOURCE,
               "ce-id": event_id, "ce-subject": spec, "content-type": "application/json"}
    body = json.dumps({"specId": spec}).encode()
    sent, t0 = time.monotonic_ns(), time.perf_counter()
    conn.request("POST", "/", body=body, headers=headers)
    resp = conn.getresponse()
    resp.read()
    elapsed = time.perf_counter() - t0
    if resp.status != 200:
        raise RuntimeError(f"launch answered {resp.status}")
    return sent, elapsed


class Timed:
    """Round trips, and when each call was sent (monotonic ns) under the name of the Job it makes."""

    def __init__(self) -> None:
        self.round_trips: list[float] = []
        self.sent_ns: dict[str, int] = {}

    def call(self, job_name: str, fn: Callable[[], tuple[int, float]], *, keep: bool) -> None:
        sent, elapsed = fn()
        if keep:
            self.round_trips.append(elapsed)
            self.sent_ns[job_name] = sent

    def to_created(self, created_ns: dict[str, int]) -> list[float]:
        """Seconds from sending each call to its Job being stored on the API server."""
        return [(created_ns[name] - sent) / 1e9 for name, sent in self.sent_ns.items()]


def sequential_launches(port: int, direct: Direct, count: int, *, tag: str) -> dict[str, Timed]:
    """Interleaved, one of each per step, so load from elsewhere on the machine hits all
    three alike: bare create, adapter launch, CloudEvent POST → Job."""
    from jobplane.runs import run_id_for

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    rows = {"bare": Timed(), "adapter": Timed(), "post": Timed()}
    for i in range(count + 10):  # the first 10 warm connections, caches and the client's models
        keep = i >= 10
        bare, adapter, event_id = f"bare-{tag}-{i}", f"adapter-{tag}-{i}", f"seq-{tag}-{i}"
        rows["bare"].call(bare, lambda: direct.bare_create(bare), keep=keep)
        rows["adapter"].call(adapter, lambda: direct.adapter_launch(adapter), keep=keep)
        rows["post"].call(run_id_for(spec_id(i), source=SOURCE, event_id=event_id),
                          lambda: post_event(conn, event_id, spec_id(i)), keep=keep)
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
                measure(direct, kube_conn, fsync=fsync, policy=policy, args=args)
    finally:
        jobs = stop(kube, kube_conn)
    print(f"  jobs on the API server: {jobs} (every launch made its own)")


def measure(direct: Direct, kube: Connection, *, fsync: bool, policy: str, args: argparse.Namespace) -> None:
    """Round 1 launches each spec's first run; those runs then end (as their Jobs would report);
    round 2 launches each spec again. "Job created" is when the API server stored the Job (its
    clock and this one are the machine's monotonic clock); "answered" is the POST's round trip
    (the function answers once the run record and its index entries are written too)."""
    tag = f"{policy.lower()}-{str(fsync).lower()}"
    with tempfile.TemporaryDirectory(prefix="bench-launch-") as tmp:
        proc, conn, port = start(serve_launch, direct.kube_url, tmp, fsync, 2 * args.launches + 20, policy, args.server)
        try:
            first = sequential_launches(port, direct, args.launches, tag=f"{tag}-1")
            first_rate = concurrent_launches(port, args.launches, args.clients, first_spec=args.launches + 10, tag=f"{tag}-1")
            finish_runs(Path(tmp))
            again = sequential_launches(port, direct, args.launches, tag=f"{tag}-2")
            rate = concurrent_launches(port, args.launches, args.clients, first_spec=args.launches + 10, tag=f"{tag}-2")
        finally:
            stop(proc, conn)
    kube.send("created")
    created_ns = kube.recv()
    bare, post, first_post = (again["bare"].round_trips, again["post"].to_created(created_ns),
                              first["post"].to_created(created_ns))
    bare_stored = again["bare"].to_created(created_ns)
    print(f" file store, fsync {'on' if fsync else 'off'}, concurrency {policy}:")
    print(line("baseline: bare create (official client)", bare))
    print(line("  the same, sent -> stored on the API server", bare_stored))
    print(line("build_job + KubernetesLauncher.launch", again["adapter"].round_trips))
    print(line("CloudEvent POST -> Job created", post))
    print(line("CloudEvent POST -> answered", again["post"].round_trips, f"   {rate:6.0f}/s with {args.clients} clients"))
    print(line("  each spec's first run: POST -> Job created", first_post))
    print(line("  each spec's first run: POST -> answered", first["post"].round_trips,
               f"   {first_rate:6.0f}/s with {args.clients} clients"))
    ratio, answered = pct(post, 0.5) / pct(bare, 0.5), pct(again["post"].round_trips, 0.5) / pct(bare, 0.5)
    first_ratio = pct(first_post, 0.5) / pct(first["bare"].round_trips, 0.5)
    print(f"  {'':<44} p50 POST -> Job created = {ratio:.1f}x bare create (target <= 2x); "
          f"answered {answered:.1f}x; first run of a spec {first_ratio:.1f}x; "
          f"{pct(post, 0.5) / pct(bare_stored, 0.5):.1f}x the bare create's own send -> stored")


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
