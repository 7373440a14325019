"""Names shared by the plane, the Job manifests, the trainer and the manifests in the repo.

One place for label keys, env variable names, exit codes and the Service ↔ target mapping,
so a rename cannot leave one side behind.
"""

from __future__ import annotations

from typing import Final

# --- labels on Jobs (and their pods) ---------------------------------------------------------
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "jobplane"
LABEL_RUN_ID: Final = "jobplane.dev/run-id"
LABEL_SPEC_ID: Final = "jobplane.dev/spec-id"
LABEL_BOT_ID: Final = "jobplane.dev/bot-id"
LABEL_TYPE: Final = "jobplane.dev/type"
LABEL_KUEUE_QUEUE: Final = "kueue.x-k8s.io/queue-name"

# --- env of the Job's container (the trainer reads these) -------------------------------------
ENV_SINK: Final = "K_SINK"
ENV_RUN_ID: Final = "JOBPLANE_RUN_ID"
ENV_SPEC_ID: Final = "JOBPLANE_SPEC_ID"
ENV_BOT_ID: Final = "JOBPLANE_BOT_ID"
ENV_JOB_TYPE: Final = "JOBPLANE_JOB_TYPE"
ENV_TOKEN: Final = "JOBPLANE_CALLBACK_TOKEN"
ENV_STORE: Final = "JOBPLANE_STORE"
ENV_PARAMS: Final = "JOBPLANE_PARAMS"
"""JSON of the spec's params; training data only by URI, never inline."""
ENV_SCRATCH: Final = "JOBPLANE_SCRATCH"
"""A writable directory (an emptyDir in the pod; the root filesystem is read-only)."""
SCRATCH_PATH: Final = "/scratch"
ENV_FINAL_RETRY: Final = "JOBPLANE_FINAL_RETRY_SECONDS"
"""How long the trainer retries its final event (default 180 s: longer than a plane restart)."""
ENV_DATA_PREFIXES: Final = "JOBPLANE_DATA_PREFIXES"
"""Store URI prefixes the run may read data from besides its bot's ``bots/{botId}/``."""
ENV_MAX_DATA_BYTES: Final = "JOBPLANE_MAX_DATA_BYTES"
"""Largest data object the trainer reads."""
ENV_TRACEPARENT: Final = "TRACEPARENT"
"""The run's W3C trace context (``tracing``); the trainer's callbacks carry it back."""
ANNOTATION_TRACEPARENT: Final = "jobplane.dev/traceparent"
"""The same trace context on the Job's metadata, for whoever reads Jobs (not a label: too long)."""

# --- trainer exit codes -------------------------------------------------------------------
EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
"""A crash a retry may cure: the trainer reports it as progress in ``PHASE_ERROR`` (never
``run.failed``, which is sticky); the Job's end decides the run's."""
EXIT_BAD_DATA: Final = 3
"""The data can never train: the Job's podFailurePolicy fails the Job without retries."""
EXIT_INTERRUPTED: Final = 143
"""SIGTERM: a checkpoint was written; a retry resumes from it."""

PHASE_ERROR: Final = "error"
"""Phase of the progress event a crashing trainer sends; its message is the error, which the
reconciler quotes when the Job fails."""

# --- CloudEvent extension carrying the per-run callback token ------------------------------
TOKEN_EXTENSION: Final = "jobplanetoken"
TRACE_EXTENSION: Final = "traceparent"
"""CloudEvents' distributed-tracing extension attribute (W3C ``traceparent``)."""

# --- Knative Services (one per function target) -------------------------------------------
SERVICE_TARGETS: Final[dict[str, str]] = {
    "jobplane-launch": "launch",
    "jobplane-status": "status",
    "jobplane-api": "api",
    "jobplane-predict": "predict",
    "jobplane-reconciler": "reconcile",
    "jobplane-deadletter": "deadletter",
}
BROKER_NAME: Final = "default"

# --- object-store layout (DESIGN.md) ------------------------------------------------------


def spec_key(spec_id: str) -> str:
    return f"specs/{spec_id}.json"


def run_key(run_id: str) -> str:
    return f"runs/{run_id}/run.json"


def run_events_prefix(run_id: str) -> str:
    return f"runs/{run_id}/events/"


def run_artifacts_prefix(run_id: str) -> str:
    return f"runs/{run_id}/artifacts/"


def bot_data_prefix(bot_id: str) -> str:
    return f"bots/{bot_id}/data/"


def bot_model_key(bot_id: str) -> str:
    return f"bots/{bot_id}/model.json"


def bot_kb_prefix(bot_id: str) -> str:
    """Where a bot's knowledge-base articles live (one object per article)."""
    return f"bots/{bot_id}/kb/"


def bot_index_key(bot_id: str) -> str:
    """The pointer to the bot's promoted search index (only ever a succeeded kb-index run's)."""
    return f"bots/{bot_id}/index.json"
