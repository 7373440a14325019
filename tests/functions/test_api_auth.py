"""Who may call the api function, over real HTTP: the token, the session cookie, the Host and
Origin rules, ``none``, and ``kubernetes`` mode against the suite's local Kubernetes API
(TokenReview + SubjectAccessReview from a table of users and grants)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from k8s_api import FakeKubeApi
from support.fakes import FakeLauncher
from support.servers import serve_wsgi
from support.specs import TEST_DATA_PREFIXES, make_spec

from jobplane import runtime
from jobplane.app import create_function_app
from jobplane.auth.base import Access
from jobplane.auth.kubernetes import KubernetesAccess
from jobplane.runtime import Runtime
from jobplane.settings import Settings
from jobplane.store.files import FileStore

TOKEN = "s3cret-api-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
NAMESPACE = "bots"

Serve = Callable[..., str]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """``serve(auth=..., access=..., **settings)``: the api function on 127.0.0.1; its URL."""
    stack: list[Any] = []

    def start(*, auth: str = "token", access: Callable[[], Access] | None = None, **changes: Any) -> str:
        store = FileStore(tmp_path / "store", fsync=False)
        changes = {"api_token": TOKEN, "namespace": NAMESPACE, **changes}
        settings = Settings(store_url=store.url, callback_key=b"k" * 32, auth=auth, data_prefixes=TEST_DATA_PREFIXES, **changes)
        launcher = FakeLauncher()
        runtime.install(Runtime(settings=settings, store=store, launcher_factory=lambda: launcher,
                                send=lambda e: None, access_factory=access))
        server = serve_wsgi(create_function_app("api"))
        stack.append(server)
        return server.__enter__()

    yield start
    for server in stack:
        server.__exit__(None, None, None)


def error_of(response: requests.Response) -> dict[str, Any]:
    assert response.headers["Content-Type"].startswith("application/json"), response.text
    return response.json()["error"]  # type: ignore[no-any-return]


# --- token mode ------------------------------------------------------------------------------


def test_v1_without_a_token_or_with_a_wrong_one_is_401_with_a_bearer_challenge(serve: Serve) -> None:
    url = serve()
    missing = requests.get(f"{url}/v1/specs", timeout=10)
    wrong = requests.get(f"{url}/v1/specs", headers={"Authorization": "Bearer not-it"}, timeout=10)
    post = requests.post(f"{url}/v1/specs", json=make_spec(), timeout=10)
    for response in (missing, wrong, post):
        assert response.status_code == 401 and error_of(response)["code"] == "unauthenticated"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]
    assert requests.get(f"{url}/v1/specs", headers=BEARER, timeout=10).json() == {"specs": []}, "nothing was created"


def test_the_token_opens_the_api(serve: Serve) -> None:
    url = serve()
    assert requests.post(f"{url}/v1/specs", json=make_spec(), headers=BEARER, timeout=10).status_code == 201
    assert requests.get(f"{url}/v1/specs/train-test-bot", headers=BEARER, timeout=10).status_code == 200
    lower = {"Authorization": f"bearer {TOKEN}"}
    assert requests.get(f"{url}/v1/specs", headers=lower, timeout=10).status_code == 200, "the scheme is case-blind"


@pytest.mark.parametrize("path", ["/healthz", "/openapi.json", "/login"])
def test_health_the_api_description_and_login_need_no_token(serve: Serve, path: str) -> None:
    assert requests.get(serve() + path, timeout=10).status_code == 200


def test_the_dashboard_sends_a_browser_without_a_session_to_login_and_opens_with_the_cookie(serve: Serve) -> None:
    url = serve()
    browser = requests.Session()
    first = browser.get(f"{url}/", allow_redirects=False, timeout=10)
    assert first.status_code == 303 and first.headers["Location"] == "./login"
    assert browser.post(f"{url}/login", json={"token": TOKEN}, headers={"Origin": url}, timeout=10).status_code == 204
    page = browser.get(f"{url}/", allow_redirects=False, timeout=10)
    assert page.status_code == 200 and "Job specs" in page.text


@pytest.mark.parametrize("path", ["/", "/login"])
def test_the_pages_refuse_to_be_framed_by_another_site(serve: Serve, path: str) -> None:
    headers = requests.get(serve() + path, timeout=10).headers
    assert headers["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in headers["Content-Security-Policy"]


def test_login_sets_an_httponly_samesite_strict_session_cookie_that_the_data_calls_use(serve: Serve) -> None:
    url = serve()
    browser = requests.Session()
    response = browser.post(f"{url}/login", json={"token": TOKEN}, headers={"Origin": url}, timeout=10)
    assert response.status_code == 204
    cookie = response.headers["Set-Cookie"]
    port = url.rsplit(":", 1)[1]
    assert cookie.startswith(f"jobplane_session_{port}={TOKEN};")
    assert {"HttpOnly", "SameSite=Strict", "Path=/"} <= {part.strip() for part in cookie.split(";")}
    assert "Secure" not in cookie, "plain http on loopback: a Secure cookie would never come back"
    assert browser.get(f"{url}/v1/specs", timeout=10).status_code == 200
    assert browser.post(f"{url}/logout", headers={"Origin": url}, timeout=10).status_code == 204
    assert browser.get(f"{url}/v1/specs", timeout=10).status_code == 401


def test_login_with_a_wrong_token_is_401_and_sets_no_cookie(serve: Serve) -> None:
    response = requests.post(f"{serve()}/login", json={"token": "guess"}, timeout=10)
    assert response.status_code == 401 and "Set-Cookie" not in response.headers


def test_a_change_made_with_the_cookie_needs_an_origin_matching_the_host(serve: Serve) -> None:
    url = serve()
    browser = requests.Session()
    assert browser.post(f"{url}/login", json={"token": TOKEN}, timeout=10).status_code == 204
    no_origin = browser.post(f"{url}/v1/specs", json=make_spec(), timeout=10)
    foreign = browser.post(f"{url}/v1/specs", json=make_spec(), headers={"Origin": "http://evil.example"}, timeout=10)
    assert (no_origin.status_code, foreign.status_code) == (403, 403)
    assert "Origin" in error_of(no_origin)["message"] and "evil.example" in error_of(foreign)["message"]
    same = browser.post(f"{url}/v1/specs", json=make_spec(), headers={"Origin": url}, timeout=10)
    assert same.status_code == 201


def test_a_cross_site_text_plain_post_is_refused_with_or_without_the_token(serve: Serve) -> None:
    url = serve()
    evil = {"Content-Type": "text/plain", "Origin": "http://evil.example"}
    for headers in (evil, {**evil, **BEARER}):
        response = requests.post(f"{url}/v1/specs", data=b'{"id": "x"}', headers=headers, timeout=10)
        assert response.status_code == 403 and error_of(response)["code"] == "forbidden"
    null_origin = requests.post(f"{url}/v1/specs", json=make_spec(), headers={"Origin": "null", **BEARER}, timeout=10)
    assert null_origin.status_code == 403
    assert requests.get(f"{url}/v1/specs", headers=BEARER, timeout=10).json() == {"specs": []}


def test_a_foreign_host_is_refused_even_with_the_token(serve: Serve) -> None:
    url = serve()
    port = url.rsplit(":", 1)[1]
    rebound = requests.get(f"{url}/v1/specs", headers={"Host": f"evil.example:{port}", **BEARER}, timeout=10)
    assert rebound.status_code == 403 and "evil.example" in error_of(rebound)["message"]
    assert requests.get(f"{url}/", headers={"Host": "evil.example"}, timeout=10).status_code == 403
    for host in (f"localhost:{port}", "localhost", f"[::1]:{port}", f"127.0.0.1:{port}"):
        assert requests.get(f"{url}/v1/specs", headers={"Host": host, **BEARER}, timeout=10).status_code == 200, host
    probe = requests.get(f"{url}/healthz", headers={"Host": "10.0.0.7:8080"}, timeout=10)
    assert probe.status_code == 200, "kubelet probes name the pod's IP"


def test_the_allowed_hosts_setting_replaces_the_loopback_names(serve: Serve) -> None:
    url = serve(allowed_hosts=("jobplane.example.com", "*.jobplane.internal"))
    for host, status in (("jobplane.example.com", 200), ("api.jobplane.internal:443", 200), ("127.0.0.1", 403),
                         ("jobplane.example.com.evil.example", 403)):
        response = requests.get(f"{url}/v1/specs", headers={"Host": host, **BEARER}, timeout=10)
        assert response.status_code == status, host


def test_none_mode_needs_no_credential_but_keeps_the_host_and_origin_rules(serve: Serve) -> None:
    url = serve(auth="none", api_token="")
    assert requests.post(f"{url}/v1/specs", json=make_spec(), timeout=10).status_code == 201
    assert requests.get(f"{url}/v1/specs", headers={"Host": "evil.example"}, timeout=10).status_code == 403
    evil = requests.post(f"{url}/v1/specs/train-test-bot/runs", headers={"Origin": "http://evil.example"}, timeout=10)
    assert evil.status_code == 403


# --- kubernetes mode -------------------------------------------------------------------------


@pytest.fixture
def kube() -> Iterator[FakeKubeApi]:
    with FakeKubeApi() as api:
        api.reviews.add_user("t-viewer", "vera", groups=("viewers",))
        api.reviews.add_user("t-editor", "eddie")
        for verb in ("get", "list"):
            for resource in ("specs", "runs", "bots"):
                api.reviews.grant("group:viewers", verb, resource, namespace=NAMESPACE)
        api.reviews.grant("eddie", "*", "*", namespace=NAMESPACE)
        yield api


def kubernetes_url(serve: Serve, kube: FakeKubeApi, *, ttl: float = 10.0) -> str:
    return serve(auth="kubernetes", api_token="",
                 access=lambda: KubernetesAccess(kube.api_client, namespace=NAMESPACE, ttl=ttl))


def as_(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_kubernetes_mode_allows_what_rbac_grants(serve: Serve, kube: FakeKubeApi) -> None:
    url = kubernetes_url(serve, kube)
    assert requests.post(f"{url}/v1/specs", json=make_spec(), headers=as_("t-editor"), timeout=10).status_code == 201
    assert requests.get(f"{url}/v1/specs/train-test-bot", headers=as_("t-viewer"), timeout=10).status_code == 200
    assert requests.post(f"{url}/v1/specs/train-test-bot/runs", headers=as_("t-editor"), timeout=10).status_code == 202
    trigger = kube.reviews.access_reviews[-1]
    assert trigger["user"] == "eddie" and trigger["resourceAttributes"] == {
        "namespace": NAMESPACE, "group": "jobplane.dev", "verb": "create", "resource": "specs",
        "subresource": "runs", "name": "train-test-bot"}


def test_kubernetes_mode_denies_with_403_naming_the_verb_and_resource(serve: Serve, kube: FakeKubeApi) -> None:
    url = kubernetes_url(serve, kube)
    create = requests.post(f"{url}/v1/specs", json=make_spec(), headers=as_("t-viewer"), timeout=10)
    cancel = requests.post(f"{url}/v1/runs/r-1:cancel", headers=as_("t-viewer"), timeout=10)
    assert (create.status_code, cancel.status_code) == (403, 403)
    assert "'vera' may not create specs.jobplane.dev" in error_of(create)["message"]
    assert "create runs/cancel.jobplane.dev 'r-1'" in error_of(cancel)["message"]
    assert NAMESPACE in error_of(create)["message"]


def test_kubernetes_mode_answers_401_for_a_token_the_api_server_does_not_know(serve: Serve, kube: FakeKubeApi) -> None:
    url = kubernetes_url(serve, kube)
    for headers in ({}, as_("t-stolen")):
        response = requests.get(f"{url}/v1/specs", headers=headers, timeout=10)
        assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
    assert not kube.reviews.access_reviews, "nobody unauthenticated gets as far as an access review"


def test_kubernetes_decisions_are_cached_for_a_while(serve: Serve, kube: FakeKubeApi) -> None:
    url = kubernetes_url(serve, kube, ttl=0.5)
    for _ in range(5):
        assert requests.get(f"{url}/v1/specs", headers=as_("t-viewer"), timeout=10).status_code == 200
        assert requests.post(f"{url}/v1/specs", json=make_spec(), headers=as_("t-viewer"), timeout=10).status_code == 403
    assert (kube.reviews.token_reviews, len(kube.reviews.access_reviews)) == (1, 2)
    time.sleep(0.6)
    assert requests.get(f"{url}/v1/specs", headers=as_("t-viewer"), timeout=10).status_code == 200
    assert (kube.reviews.token_reviews, len(kube.reviews.access_reviews)) == (2, 3), "expired answers are asked again"


def test_kubernetes_mode_finds_the_api_server_through_kubeconfig(
    serve: Serve, kube: FakeKubeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: fake, cluster: {{server: "{kube.url}"}}}}]
users: [{{name: plane, user: {{token: plane-sa-token}}}}]
contexts: [{{name: fake, context: {{cluster: fake, user: plane}}}}]
current-context: fake
""")
    monkeypatch.setenv("KUBECONFIG", str(config))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    url = serve(auth="kubernetes", api_token="")
    assert requests.get(f"{url}/v1/specs", headers=as_("t-viewer"), timeout=10).status_code == 200
    assert requests.delete(f"{url}/v1/specs/x", headers=as_("t-viewer"), timeout=10).status_code == 403


def test_kubernetes_mode_answers_503_when_the_api_server_is_unreachable(serve: Serve) -> None:
    from kubernetes import client

    def nowhere() -> client.ApiClient:
        config = client.Configuration()
        config.host = "http://127.0.0.1:1"
        return client.ApiClient(config)

    url = serve(auth="kubernetes", api_token="", access=lambda: KubernetesAccess(nowhere, namespace=NAMESPACE))
    response = requests.get(f"{url}/v1/specs", headers=as_("t-viewer"), timeout=30)
    assert response.status_code == 503 and error_of(response)["code"] == "unavailable"
