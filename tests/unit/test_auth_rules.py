"""The auth package's pure rules: which permission each route needs, which Host and Origin pass."""

from __future__ import annotations

import re

import pytest

from jobplane.auth import permissions
from jobplane.auth.base import Permission, RefusedError
from jobplane.auth.origin import check_origin, host_allowed
from jobplane.handlers import api
from jobplane.settings import LOOPBACK_HOSTS


def _example(route: api.Route) -> str:
    return re.sub(r"\(\?P<\w+>\[\^/:\]\+\)", "x-1", route.pattern.pattern).replace("\\", "")


def test_every_api_route_is_open_or_has_exactly_one_permission() -> None:
    for route in api.ROUTES:
        path = _example(route)
        for method in route.methods:
            found = permissions.required(method, path)
            assert permissions.is_open(path) != (found is not None), (method, path)


@pytest.mark.parametrize(("method", "path", "expected"), [
    ("GET", "/v1/specs", Permission("list", "specs")),
    ("POST", "/v1/specs", Permission("create", "specs")),
    ("HEAD", "/v1/specs/s-1", Permission("get", "specs", name="s-1")),
    ("PUT", "/v1/specs/s-1", Permission("update", "specs", name="s-1")),
    ("DELETE", "/v1/specs/s-1/", Permission("delete", "specs", name="s-1")),
    ("POST", "/v1/specs/s-1/runs", Permission("create", "specs", "runs", "s-1")),
    ("GET", "/v1/specs/s-1/runs", Permission("list", "runs")),
    ("GET", "/v1/runs/r-1", Permission("get", "runs", name="r-1")),
    ("POST", "/v1/runs/r-1:cancel", Permission("create", "runs", "cancel", "r-1")),
    ("GET", "/v1/runs/r-1/artifacts/metrics.json", Permission("get", "runs", "artifacts", "r-1")),
    ("GET", "/", Permission("list", "specs")),
    ("GET", "/runs/r-1", Permission("get", "runs", name="r-1")),
    ("GET", "/bots/b-1", Permission("get", "bots", name="b-1")),
    ("GET", "/v1/bots/b-1/model", Permission("get", "bots", name="b-1")),
    ("GET", "/v1/bots/b-1/runs", Permission("list", "runs")),
    ("POST", "/v1/bots/b-1:predict", Permission("create", "bots", "predict", "b-1")),
    ("POST", "/v1/bots/b-1:search", Permission("create", "bots", "search", "b-1")),
    ("PATCH", "/v1/specs/s-1", None),
    ("GET", "/v1/unknown", None),
])
def test_each_route_maps_to_its_verb_resource_subresource_and_name(method: str, path: str,
                                                                    expected: Permission | None) -> None:
    assert permissions.required(method, path) == expected


def test_a_permission_reads_like_rbac() -> None:
    assert str(Permission("create", "runs", "cancel", "r-1")) == "create runs/cancel.jobplane.dev 'r-1'"


@pytest.mark.parametrize(("host", "allowed", "ok"), [
    ("127.0.0.1:8080", LOOPBACK_HOSTS, True),
    ("localhost", LOOPBACK_HOSTS, True),
    ("LOCALHOST.:8080", LOOPBACK_HOSTS, True),
    ("[::1]:8080", LOOPBACK_HOSTS, True),
    ("evil.example", LOOPBACK_HOSTS, False),
    ("127.0.0.1.evil.example", LOOPBACK_HOSTS, False),
    ("", LOOPBACK_HOSTS, False),
    ("api.example.com:8443", ("api.example.com:8443",), True),
    ("api.example.com:9000", ("api.example.com:8443",), False),
    ("a.b.example.com", ("*.example.com",), True),
    ("example.com", ("*.example.com",), False),
    ("anything", ("*",), True),
])
def test_the_host_allow_list(host: str, allowed: tuple[str, ...], ok: bool) -> None:
    assert host_allowed(host, allowed) is ok


@pytest.mark.parametrize(("origin", "host", "ok"), [
    (None, "127.0.0.1:8080", True),
    ("http://127.0.0.1:8080", "127.0.0.1:8080", True),
    ("https://api.example.com", "api.example.com", True),
    ("https://api.example.com:443", "api.example.com", True),
    ("http://127.0.0.1:8081", "127.0.0.1:8080", False),
    ("http://localhost:8080", "127.0.0.1:8080", False),
    ("http://evil.example", "127.0.0.1:8080", False),
    ("null", "127.0.0.1:8080", False),
    ("file://", "127.0.0.1:8080", False),
])
def test_the_origin_of_a_change_must_be_the_hosts_own(origin: str | None, host: str, ok: bool) -> None:
    if ok:
        check_origin(origin, host)
    else:
        with pytest.raises(RefusedError):
            check_origin(origin, host)


def test_a_change_by_cookie_without_an_origin_is_refused() -> None:
    with pytest.raises(RefusedError, match="Origin"):
        check_origin(None, "127.0.0.1:8080", required=True)
