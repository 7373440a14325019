"""The ``jobplane`` command: run the embedded plane, the demo, and small helpers.

    jobplane up --port 8080 --data-dir ./.jobplane     # the plane in the foreground
    jobplane demo                                      # train the sample bot end to end, exit
    jobplane render-pingsource spec.json               # the PingSource for a scheduled spec
    jobplane runs --url http://127.0.0.1:8080 --spec train-acme-bank-assistant
    jobplane deadletter list|replay [ID ...]           # events the broker gave up on; send them again
    jobplane search acme-bank-assistant "lost my card" # the bot's knowledge base, best passages first

The API commands send ``Authorization: Bearer`` with ``$JOBPLANE_TOKEN``, else the token the
plane keeps in ``{--data-dir}/api.token``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from .settings import API_TOKEN_FILE

DEFAULT_DATA_DIR: Final = Path(".jobplane")
DEFAULT_PORT: Final = 8080


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jobplane", description="Event-driven jobs plane for per-bot NLP models.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO, including one line per HTTP request")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="serve the embedded plane on 127.0.0.1 in the foreground")
    up.add_argument("--port", type=int, default=DEFAULT_PORT)
    _plane_args(up)
    demo = sub.add_parser("demo", help="train the sample bot from a bot.changed CloudEvent, then exit")
    demo.add_argument("--port", type=int, default=0, help="0 picks a free port")
    demo.add_argument("--bot", type=Path, default=None, help="a bot JSON (default: the bundled sample bot)")
    demo.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the run")
    _plane_args(demo)
    ping = sub.add_parser("render-pingsource", help="print the PingSource YAML for a spec with a schedule")
    ping.add_argument("spec", type=Path, help="a job spec JSON file")
    ping.add_argument("--namespace", default=None, help="metadata.namespace (default: none, set by kustomize)")
    for name, help_text in (("runs", "list a spec's runs, newest first"), ("specs", "list the job specs")):
        listing = sub.add_parser(name, help=help_text)
        listing.add_argument("--url", default=f"http://127.0.0.1:{DEFAULT_PORT}", help="the plane's URL")
        listing.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                             help="where the plane keeps api.token (JOBPLANE_TOKEN overrides)")
        if name == "runs":
            listing.add_argument("--spec", required=True, help="spec id")
            listing.add_argument("--limit", type=int, default=10)
    _deadletter_args(sub.add_parser("deadletter", help="list dead letters, or replay them through the broker"))
    find = sub.add_parser("search", help="search a bot's knowledge base (its promoted kb-index)")
    find.add_argument("bot", help="bot id")
    find.add_argument("query", help="what to look for")
    find.add_argument("-k", type=int, default=5, help="passages to show")
    find.add_argument("--url", default=f"http://127.0.0.1:{DEFAULT_PORT}", help="the plane's URL")
    find.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="where api.token is (JOBPLANE_TOKEN wins when set)")
    return parser


def _deadletter_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("list", "replay"))
    parser.add_argument("ids", nargs="*", help="replay: these ids (default: every one not replayed yet)")
    parser.add_argument("--url", default=f"http://127.0.0.1:{DEFAULT_PORT}", help="the plane's URL")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help="where api.token is (JOBPLANE_TOKEN wins when set)")


def _plane_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="where the store and Job logs live")
    parser.add_argument("--eventing-dir", type=Path, default=None, help="Knative eventing manifests (default: repo's eventing/)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.INFO if args.verbose else logging.WARNING
    if args.command == "up":  # the plane's lines as JSON (JOBPLANE_LOG_FORMAT=text: plain), as on a cluster
        from . import logs

        logs.configure(logs.format_from(os.environ), level=level)
    else:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(level)  # one line per request only with -v
    from .errors import JobplaneError

    try:
        return int(COMMANDS[args.command](args))
    except JobplaneError as e:
        print(f"jobplane: {e.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def cmd_up(args: argparse.Namespace) -> int:
    from .local.plane import Plane

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with Plane(args.data_dir, port=args.port, eventing_dir=args.eventing_dir) as plane:
        print(f"jobplane up on {plane.url}")
        print(f"  broker ingress  {plane.url}/default/default   (POST CloudEvents here)")
        print(f"  HTTP API        {plane.url}/v1/               {_auth_line(plane)}")
        print(f"  dashboard       {_login_url(plane)}")
        print(f"  data            {plane.data_dir}")
        if plane.settings.auth == "none":
            print(NO_AUTH_BANNER, file=sys.stderr, flush=True)
        for name, when in sorted((plane.cron.next_fires() if plane.cron else {}).items()):
            print(f"  schedule        {name:<40} next {when:%Y-%m-%d %H:%M %Z}")
        print("Ctrl-C stops.", flush=True)
        while not stop.wait(timeout=0.5):  # a bare wait() may never see a signal another thread took
            pass
        print("stopping…", flush=True)
    return 0


NO_AUTH_BANNER: Final = """
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
!! WARNING: JOBPLANE_AUTH=none: the API takes requests WITHOUT ANY AUTHENTICATION.       !!
!! Every local process and user can create specs, launch Jobs and read every bot's data.  !!
!! Unset JOBPLANE_AUTH to use the token in the data dir.                                  !!
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"""


def _auth_line(plane: Any) -> str:
    mode = plane.settings.auth
    if mode == "token":
        return f"Authorization: Bearer $(cat {plane.data_dir / API_TOKEN_FILE})"
    if mode == "kubernetes":
        return "Authorization: Bearer <a Kubernetes token> (RBAC decides)"
    return "NO AUTHENTICATION (JOBPLANE_AUTH=none)"


def _login_url(plane: Any) -> str:
    """The token rides in the fragment: never sent to the server, so never in a log."""
    if plane.settings.auth == "token":
        return f"{plane.url}/login#token={plane.settings.api_token}   (open to log this browser in)"
    return f"{plane.url}/"


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(data_dir=args.data_dir, port=args.port, bot_path=args.bot, timeout=args.timeout,
                    eventing_dir=args.eventing_dir)


def cmd_render_pingsource(args: argparse.Namespace) -> int:
    from . import schedules
    from .errors import PermanentError

    try:
        spec = json.loads(args.spec.read_text())
    except (OSError, ValueError) as e:
        raise PermanentError(f"{args.spec}: cannot read a JSON job spec: {e}") from e
    print(schedules.render_pingsource(spec, namespace=args.namespace), end="")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    for run in _get_list(f"{args.url}/v1/specs/{args.spec}/runs?limit={args.limit}", "runs", token=_token(args)):
        line = f"{run['id']:<60} {run['state']:<11} {run.get('progress', 0):>3}%  {run.get('createdAt', '')}"
        print(line + (f"  {waiting(run, now=now)}" if run.get("state") == "queued" else ""))
    return 0


def waiting(run: Mapping[str, Any], *, now: datetime) -> str:
    """Where a queued run waits: "WaitingForQuota in training, #3, waited 4m10s"."""
    queue = run.get("queue") or {}
    parts = [str(run.get("reason") or "queued") + (f" in {queue['name']}" if queue.get("name") else "")]
    if queue.get("position") is not None:
        parts.append(f"#{int(queue['position']) + 1}")
    if queue.get("since"):
        seconds = max(0, int((now - datetime.fromisoformat(str(queue["since"]).replace("Z", "+00:00"))).total_seconds()))
        parts.append(f"waited {seconds // 60}m{seconds % 60:02d}s")
    return ", ".join(parts)


def cmd_specs(args: argparse.Namespace) -> int:
    for spec in _get_list(f"{args.url}/v1/specs", "specs", token=_token(args)):
        print(f"{spec['id']:<50} {spec.get('type', ''):<10} {spec.get('schedule') or '-'}")
    return 0


def cmd_deadletter(args: argparse.Namespace) -> int:
    token = _token(args)
    if args.action == "list":
        url = f"{args.url}/v1/deadletters?limit=100"
        while url:
            body = _call("GET", url, token=token)
            for d in body["deadLetters"]:
                state = f"replayed {d['replayedAt']}" if d.get("replayedAt") else "dead"
                code = (d.get("error") or {}).get("code") or "-"
                print(f"{d['id']:<50} {d.get('type') or '':<28} {code!s:<4} {state:<10} {d.get('receivedAt') or ''}")
            token_next = body.get("nextPageToken")
            url = f"{args.url}/v1/deadletters?limit=100&pageToken={token_next}" if token_next else ""
        return 0
    replayed = 0
    for dead_id in args.ids:
        replayed += len(_call("POST", f"{args.url}/v1/deadletters/{dead_id}:replay", token=token)["replayed"])
    more = not args.ids
    while more:
        body = _call("POST", f"{args.url}/v1/deadletters:replay", token=token)
        replayed, more = replayed + len(body["replayed"]), bool(body.get("more")) and bool(body["replayed"])
    print(f"replayed {replayed} dead letter(s)")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    body = {"query": args.query, "k": args.k}
    answer = _call("POST", f"{args.url}/v1/bots/{args.bot}:search", token=_token(args), body=body)
    for i, hit in enumerate(answer["results"], 1):
        where = " / ".join(p for p in (hit.get("title"), hit.get("heading")) if p)
        print(f"{i}. {hit['articleId']}  {hit['score']:.3f}  [{', '.join(hit['matchedBy'])}]  {where}")
        print(f"   {hit['text'][:300]}")
    if not answer["results"]:
        print("no passages")
    return 0


def _call(method: str, url: str, *, token: str, body: Any = None) -> Any:
    """An API call with the bearer token; its JSON answer."""
    from .errors import PermanentError, UnavailableError

    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    data = json.dumps(body if body is not None else {}).encode() if method == "POST" else None
    request = urllib.request.Request(url, method=method, headers=headers, data=data)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as e:
        hint = " (no token: set JOBPLANE_TOKEN or --data-dir)" if e.code == 401 and not token else ""
        raise PermanentError(f"{method} {url}: HTTP {e.code}: {_error_message(e.read())}{hint}") from e
    except urllib.error.URLError as e:
        raise UnavailableError(f"{method} {url}: {e.reason} (is `jobplane up` running?)") from e


def _token(args: argparse.Namespace) -> str:
    """``$JOBPLANE_TOKEN``, else ``{--data-dir}/api.token``, else none (a plane without auth)."""
    token = os.environ.get("JOBPLANE_TOKEN", "").strip()
    path = Path(args.data_dir) / API_TOKEN_FILE
    if not token and path.is_file():
        token = path.read_text(encoding="utf-8").strip()
    return token


def _get_list(url: str, key: str, *, token: str = "") -> Any:
    """The list under ``key`` in the JSON at ``url`` (or the body itself if it is not an object)."""
    body = _call("GET", url, token=token)
    return body.get(key, body) if isinstance(body, dict) else body


def _error_message(body: bytes) -> str:
    """The API's ``error.message``, else the body cut short."""
    from .errors import short

    try:
        return str(json.loads(body)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return short(body)


COMMANDS = {
    "up": cmd_up,
    "demo": cmd_demo,
    "render-pingsource": cmd_render_pingsource,
    "runs": cmd_runs,
    "specs": cmd_specs,
    "deadletter": cmd_deadletter,
    "search": cmd_search,
}


if __name__ == "__main__":
    sys.exit(main())
