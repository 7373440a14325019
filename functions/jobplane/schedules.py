"""PingSources rendered from job specs, so that a schedule lives in one place: the spec.

A spec with a ``schedule`` (and ``timezone``) runs on Kubernetes through a Knative PingSource
that sends ``dev.knative.sources.ping`` with data ``{"specId": ...}`` to the Broker; the ping
Trigger routes it to launch, which runs the stored spec. The embedded cron reads the specs
themselves. ``jobplane render-pingsource SPEC.json`` prints what this module builds, for
``kubectl apply -f -`` or for a file in ``eventing/``. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

import yaml

from . import conventions as c
from .errors import Problem, ValidationError
from .spec import validate_spec

API_VERSION: Final = "sources.knative.dev/v1"
NAME_PREFIX: Final = "jobplane-spec-"
MAX_NAME: Final = 63


def pingsource_name(spec_id: str) -> str:
    """``jobplane-spec-{specId}`` (as the embedded cron names it), cut to a DNS-1123 label with a hash suffix when too long."""
    name = NAME_PREFIX + spec_id
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(spec_id.encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - len(digest) - 1].rstrip('-')}-{digest}"


def pingsource_data(spec_id: str) -> str:
    """The ping's data: the JSON object launch reads the spec id from."""
    return json.dumps({"specId": spec_id})


def pingsource_for(
    spec: Mapping[str, Any], *, broker: str = c.BROKER_NAME, namespace: str | None = None
) -> dict[str, Any]:
    """The PingSource that runs ``spec`` on its schedule (``ValidationError`` listing every
    problem if the spec is invalid or has no schedule)."""
    valid = validate_spec(spec, require_data=False)
    if not valid.get("schedule"):
        raise ValidationError([Problem("spec.schedule", "required to render a PingSource, got none")], what="job spec")
    metadata: dict[str, Any] = {
        "name": pingsource_name(valid["id"]),
        "labels": {"app.kubernetes.io/part-of": c.MANAGED_BY, c.LABEL_SPEC_ID: valid["id"]},
    }
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": API_VERSION,
        "kind": "PingSource",
        "metadata": metadata,
        "spec": {
            "schedule": valid["schedule"],
            "timezone": valid["timezone"],
            "contentType": "application/json",
            "data": pingsource_data(valid["id"]),
            "sink": {"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": broker}},
        },
    }


def render_pingsource(
    spec: Mapping[str, Any], *, broker: str = c.BROKER_NAME, namespace: str | None = None
) -> str:
    """``pingsource_for`` as a YAML document with a header saying where it comes from."""
    resource = pingsource_for(spec, broker=broker, namespace=namespace)
    header = (
        f"# Rendered from job spec {resource['metadata']['labels'][c.LABEL_SPEC_ID]!r} by `jobplane render-pingsource`:\n"
        "# change the spec's schedule, then render again.\n"
    )
    return header + yaml.safe_dump(resource, sort_keys=False, default_flow_style=False)
