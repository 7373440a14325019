"""Pick the launcher adapter the settings name; adapters import lazily so the embedded plane
never loads the Kubernetes client and the cloud functions never load the process runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from ..settings import Settings
from .base import JobState, JobStatus, Launcher

__all__ = ["JobState", "JobStatus", "Launcher", "open_launcher"]


def open_launcher(settings: Settings, **kw: Any) -> Launcher:
    """``kubernetes`` → ``KubernetesLauncher`` (in-cluster config, else ``KUBECONFIG``;
    ``api_client=`` overrides); ``local`` → ``LocalLauncher`` (``workdir=`` defaults to
    ``jobs/`` beside a ``file://`` store)."""
    if settings.launcher == "kubernetes":
        from .kubernetes import KubernetesLauncher

        return KubernetesLauncher.from_settings(settings, **kw)
    if settings.launcher == "local":
        from .local import LocalLauncher

        kw.setdefault("workdir", default_workdir(settings))
        launcher: Launcher = LocalLauncher(**kw)
        return launcher
    raise ValueError(f"launcher must be local or kubernetes, got {settings.launcher!r}")


def default_workdir(settings: Settings) -> Path:
    """``{data_dir}/jobs`` when the store is ``file://{data_dir}/store``; else a temp dir."""
    url = urlparse(settings.store_url)
    if url.scheme == "file":
        return Path(unquote(url.path)).parent / "jobs"
    import tempfile

    return Path(tempfile.gettempdir()) / "jobplane-jobs"
