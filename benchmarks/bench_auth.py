"""What authentication costs per API request: ``GET /v1/specs/{id}`` on the api function over
real HTTP, one client, printed beside a baseline measured in the same run with
``JOBPLANE_AUTH=none`` (the same server, store and request), for ``token`` mode and for
``kubernetes`` mode against the test suite's local Kubernetes API (TokenReview +
SubjectAccessReview over HTTP), with its decision cache (10 s TTL) and with the cache off.

    .venv/bin/python benchmarks/bench_auth.py [--requests 500]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import requests  # noqa: E402
from k8s_api import FakeKubeApi  # noqa: E402
from support.fakes import FakeLauncher  # noqa: E402
from support.servers import serve_wsgi  # noqa: E402
from support.specs import make_spec  # noqa: E402

from jobplane import runtime  # noqa: E402
from jobplane.app import create_function_app  # noqa: E402
from jobplane.auth.kubernetes import KubernetesAccess  # noqa: E402
from jobplane.runtime import Runtime  # noqa: E402
from jobplane.settings import Settings  # noqa: E402
from jobplane.store.files import FileStore  # noqa: E402

TOKEN = "bench-token"
ROUNDS = 5


def measure(store: FileStore, n: int, *, auth: str, token: str, access: Callable[[], Any] | None = None) -> list[float]:
    settings = Settings(store_url=store.url, callback_key=b"k" * 32, auth=auth, api_token=TOKEN, namespace="bots")
    runtime.install(Runtime(settings=settings, store=store, launcher_factory=FakeLauncher, send=lambda e: None,
                            access_factory=access))
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    took = []
    with serve_wsgi(create_function_app("api")) as url:
        assert session.get(f"{url}/v1/specs/train-test-bot", timeout=10).status_code == 200
        for _ in range(n):
            start = time.perf_counter()
            response = session.get(f"{url}/v1/specs/train-test-bot", timeout=10)
            took.append(time.perf_counter() - start)
            assert response.status_code == 200, response.text
    return took


def line(name: str, took: list[float], base: float | None) -> str:
    p50 = statistics.median(took) * 1000
    p95 = statistics.quantiles(took, n=20)[-1] * 1000
    extra = f"   {p50 - base:+5.2f} ms p50 against the baseline" if base is not None else ""
    return f"{name:<34} p50 {p50:6.2f} ms   p95 {p95:6.2f} ms{extra}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=500)
    n = ap.parse_args().requests
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp, FakeKubeApi() as kube:
        store = FileStore(Path(tmp) / "store", fsync=False)
        store.write("specs/train-test-bot.json", json.dumps(make_spec()).encode())
        kube.reviews.add_user("t-viewer", "vera")
        kube.reviews.grant("vera", "get", "specs", namespace="bots")
        modes: dict[str, dict[str, Any]] = {
            "baseline: JOBPLANE_AUTH=none": {"auth": "none", "token": ""},
            "token": {"auth": "token", "token": TOKEN},
            "kubernetes, cached (10 s TTL)": {"auth": "kubernetes", "token": "t-viewer", "access": lambda: KubernetesAccess(
                kube.api_client, namespace="bots")},
            "kubernetes, no cache": {"auth": "kubernetes", "token": "t-viewer", "access": lambda: KubernetesAccess(
                kube.api_client, namespace="bots", ttl=1e-9)},
        }
        took: dict[str, list[float]] = {name: [] for name in modes}
        reviews: dict[str, int] = dict.fromkeys(modes, 0)
        for _ in range(ROUNDS):  # interleaved, so warm-up and a busy machine hit every mode alike
            for name, mode in modes.items():
                before = kube.reviews.token_reviews + len(kube.reviews.access_reviews)
                took[name] += measure(store, n // ROUNDS, **mode)
                reviews[name] += kube.reviews.token_reviews + len(kube.reviews.access_reviews) - before
        print(f"{n} sequential GET /v1/specs/{{id}} per mode, one client, {ROUNDS} interleaved rounds")
        base = statistics.median(took["baseline: JOBPLANE_AUTH=none"]) * 1000
        for name in modes:
            suffix = f"   ({reviews[name]} reviews)" if name.startswith("kubernetes") else ""
            print(line(name, took[name], None if name.startswith("baseline") else base) + suffix)


if __name__ == "__main__":
    main()
