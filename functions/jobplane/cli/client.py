"""The plane's HTTP API as the command line sees it: where it is, the bearer token, calls that
raise ``CliError`` with the exit code their answer deserves, and listings that follow
``nextPageToken``.

The connection options (``--url``, ``--token``, ``--data-dir``, ``--json``) may be given on any
command or group; the nearest wins, then the environment (``JOBPLANE_URL``, ``JOBPLANE_TOKEN``),
then the embedded plane's defaults. The environment is read here, at the command line's edge.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import requests
import typer

from .. import events as ev
from ..errors import short
from ..settings import API_TOKEN_FILE
from .exits import CliError, Exit, for_status

DEFAULT_PORT: Final = 8080
DEFAULT_URL: Final = f"http://127.0.0.1:{DEFAULT_PORT}"
DEFAULT_DATA_DIR: Final = Path(".jobplane")
BROKER_PATH: Final = "/default/default"
PAGE_MAX: Final = 100
"""The API's largest ``limit``: longer listings take several pages."""
TIMEOUT: Final = 60.0


@dataclass(frozen=True)
class Target:
    """Where the plane is and how to prove who we are."""

    url: str
    """The API's base URL, without a trailing slash."""
    token: str
    """The bearer token; empty for a plane without auth."""
    broker_url: str
    """Where CloudEvents go: the embedded plane's ingress, or a cluster's broker URL."""

    @classmethod
    def from_context(cls, ctx: typer.Context) -> Target:
        url = (_option(ctx, "url") or os.environ.get("JOBPLANE_URL") or DEFAULT_URL).rstrip("/")
        broker = _option(ctx, "broker") or os.environ.get("JOBPLANE_BROKER_URL") or url + BROKER_PATH
        return cls(url=url, token=_token(ctx), broker_url=str(broker))


def wants_json(ctx: typer.Context) -> bool:
    """``--json`` on this command or any group above it."""
    return bool(_option(ctx, "as_json"))


def _option(ctx: typer.Context, name: str) -> Any:
    """The value of option ``name`` given on the nearest command (or group) that was given it."""
    here: Any = ctx
    while here is not None:
        value = here.params.get(name)
        if value not in (None, False, ""):
            return value
        here = here.parent
    return None


def _token(ctx: typer.Context) -> str:
    """``--token``, else ``$JOBPLANE_TOKEN``, else ``{--data-dir}/api.token``, else none."""
    token = str(_option(ctx, "token") or os.environ.get("JOBPLANE_TOKEN", "")).strip()
    path = Path(_option(ctx, "data_dir") or DEFAULT_DATA_DIR) / API_TOKEN_FILE
    if not token and path.is_file():
        token = path.read_text(encoding="utf-8").strip()
    return token


class Api:
    """Calls to one plane; every failure is a ``CliError`` with its exit code."""

    def __init__(self, target: Target, *, timeout: float = TIMEOUT, page_size: int = PAGE_MAX) -> None:
        self.target = target
        self.timeout = timeout
        self.page_size = page_size
        self.http = requests.Session()
        if target.token:
            self.http.headers["Authorization"] = f"Bearer {target.token}"

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any = None) -> Any:
        return self.call("POST", path, body={} if body is None else body)

    def delete(self, path: str) -> Any:
        return self.call("DELETE", path)

    def call(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None) -> Any:
        """The JSON answer of ``method path`` (None for an empty one)."""
        url = self.target.url + path
        try:
            response = self.http.request(method, url, params=params, json=body, timeout=self.timeout)
        except requests.RequestException as e:
            raise unreachable(method, url, e) from e
        return self._answer(method, url, response)

    def _answer(self, method: str, url: str, response: requests.Response) -> Any:
        if response.status_code >= 400:
            raise api_error(method, url, response, has_token=bool(self.target.token))
        if not response.content.strip():
            return None
        try:
            return response.json()
        except ValueError as e:
            raise CliError(f"{method} {url}: the answer is not JSON: {short(response.content)}",
                           code=Exit.UNAVAILABLE) from e

    def pages(self, path: str, key: str, *, want: int | None = None, **params: Any) -> Iterator[dict[str, Any]]:
        """Each page of a listing, following ``nextPageToken`` until ``want`` items (all when
        None) were asked for; a page's size is what is still wanted, at most ``page_size``."""
        token: str | None = None
        got = 0
        while True:
            limit = self.page_size if want is None else max(1, min(self.page_size, want - got))
            page = self.get(path, limit=limit, pageToken=token, **params) or {}
            got += len(page.get(key) or [])
            yield page
            token, previous = page.get("nextPageToken"), token
            if not token or token == previous or (want is not None and got >= want):
                return

    def listing(self, path: str, key: str, *, want: int | None = None, **params: Any) -> dict[str, Any]:
        """The items of every page under ``key`` (cut to ``want``), and the last page's
        ``nextPageToken`` when there is more."""
        items: list[Any] = []
        more: str | None = None
        for page in self.pages(path, key, want=want, **params):
            items.extend(page.get(key) or [])
            more = page.get("nextPageToken")
        body: dict[str, Any] = {key: items if want is None else items[:want]}
        if more:
            body["nextPageToken"] = more
        return body

    def send_event(self, event: ev.Event) -> tuple[Any, Mapping[str, str]]:
        """POST ``event`` (binary mode) to the broker; its JSON answer (None when it has none: a
        broker may answer 202 with an empty or plain body) and its headers."""
        headers, body = ev.to_http(event)
        url = self.target.broker_url
        try:
            response = self.http.post(url, data=body, headers=headers, timeout=self.timeout)
        except requests.RequestException as e:
            raise unreachable("POST", url, e) from e
        if response.status_code >= 400:
            raise api_error("POST", url, response, has_token=bool(self.target.token))
        try:
            return response.json(), response.headers
        except ValueError:
            return None, response.headers


def unreachable(method: str, url: str, e: requests.RequestException) -> CliError:
    why = "no answer in time" if isinstance(e, requests.Timeout) else (
        "connection refused or no such host" if isinstance(e, requests.ConnectionError) else short(str(e), 200))
    return CliError(f"{method} {url}: cannot reach the plane: {why} "
                    "(is `jobplane up` running, and --url or JOBPLANE_URL right?)", code=Exit.UNAVAILABLE)


def api_error(method: str, url: str, response: requests.Response, *, has_token: bool) -> CliError:
    """The API's ``{"error": {"code", "message", "details"}}`` as a ``CliError``."""
    status = response.status_code
    try:
        error = response.json()["error"]
        message = f"{error.get('message') or error.get('code')} (HTTP {status} {error.get('code')})"
        details = [f"{d.get('field')}: {d.get('problem')}" for d in error.get("details") or []]
    except (ValueError, KeyError, TypeError):
        message, details = f"HTTP {status}: {short(response.content)}", []
    if status == 401 and not has_token:
        message += " (no token: pass --token, set JOBPLANE_TOKEN, or --data-dir where api.token is)"
    return CliError(f"{method} {url}: {message}", code=for_status(status), details=details)


def read_json_file(path: Path) -> Any:
    """A JSON (or YAML) document from ``path``, ``-`` for stdin; a usage error when unreadable."""
    import yaml

    try:
        text = typer.get_text_stream("stdin").read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except OSError as e:
        raise CliError(f"{path}: cannot read it: {e.strerror or e}", code=Exit.USAGE) from e
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise CliError(f"{path}: neither JSON nor YAML: {short(str(e), 200)}", code=Exit.USAGE) from e
