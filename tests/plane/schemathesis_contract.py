"""schemathesis against the live embedded plane's ``/openapi.json``, with the plane's Bearer token.

Every operation gets generated requests (schema-valid and not); the plane must answer none
with a server error, only with statuses and content types the document lists for the
operation, in the bodies it describes, and must accept every schema-valid request except
where a rule no schema can say refused it (``SEMANTIC``: a cron expression that never fires,
a data URI outside the bot's folder, a page token no listing gave…) or the object the request
names does not exist. ``make test`` runs a short pass (``CONTRACT_EXAMPLES``, default 8 per
operation); ``make contract`` a longer one.

Not collected by itself (no ``test_`` prefix): ``test_api_schemathesis.py`` runs it in a fresh
interpreter, since hypothesis cannot draw floats in a process where a library built with
fast-math flushed subnormals (what the whole suite's search tests load).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed (the dev extra has it)")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from support.specs import TEST_DATA_PREFIXES  # noqa: E402

from jobplane import openapi  # noqa: E402
from jobplane.local.plane import Plane  # noqa: E402

STANDIN = Path(__file__).with_name("standin_trainer.py")

EXAMPLES = int(os.environ.get("CONTRACT_EXAMPLES", "8"))
ACCEPTED = frozenset({200, 201, 202, 204})
NOT_THERE = frozenset({401, 404, 409, 412})
"""A valid request about an object that does not exist (a drawn id), one that exists already
(409), a drawn If-Match (412), a drawn login token (401)."""
SEMANTIC = re.compile(
    r"(\.schedule|\.timezone|\.resources\.(cpu|memory)|uri|\.entities\[\d+\](\.value)?|\.articles\[\d+\]\.id"
    r"|\.overlap|^pageToken)$"
)
"""Fields whose 400 a schema cannot foresee: cron that never fires, time zones, quantities'
minimums, data URIs' places, entity offsets, duplicate article ids, passage overlap, page
tokens no listing gave."""
SEMANTIC_FOR: dict[str, re.Pattern[str]] = {
    "PUT /v1/specs/{specId}": re.compile(r"^spec\.id$"),  # the body's id is not the path's
    "POST /v1/specs/{specId}/runs": re.compile(r"^spec\."),  # overrides merged into the stored spec
}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    env = {"JOBPLANE_COMMAND": json.dumps([sys.executable, str(STANDIN), "succeed"]),
           "JOBPLANE_DATA_PREFIXES": ",".join(TEST_DATA_PREFIXES)}
    plane = Plane(tmp_path_factory.mktemp("contract") / "data", port=0, env=env,
                  launcher_env={"OMP_NUM_THREADS": "1"}).start()
    try:
        yield plane
    finally:
        plane.stop()


def auth(plane: Plane) -> dict[str, str]:
    return {"Authorization": "Bearer " + (plane.data_dir / "api.token").read_text(encoding="utf-8").strip()}


def semantic_refusals_only(ctx: Any, response: Any, case: Any) -> bool | None:
    """A schema-valid request is accepted, or refused for a reason no schema can say."""
    meta = case.meta
    if meta is None or not all(c.mode.is_positive for c in [meta.generation, *meta.components.values()]):
        return None
    status = response.status_code
    if status in ACCEPTED or status in NOT_THERE:
        return None
    if status == 400:
        fields = [d.get("field", "") for d in (response.json().get("error") or {}).get("details", [])]
        extra = SEMANTIC_FOR.get(case.operation.label)
        if fields and all(SEMANTIC.search(f) or (extra and extra.search(f)) for f in fields):
            return None
        raise AssertionError(f"schema-valid request refused: {response.text[:500]}")
    raise AssertionError(f"schema-valid request answered {status}: {response.text[:500]}")


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, semantic_refusals_only]

schema = schemathesis.openapi.from_dict(openapi.document())
"""The document the plane serves (``test_the_plane_serves_the_document_under_test`` checks)."""


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_the_live_plane_keeps_its_openapi_contract(case: Any, live: Plane) -> None:
    response = case.call(base_url=live.url, headers=auth(live), timeout=30)
    case.validate_response(response, checks=CHECKS)


@pytest.mark.slow
def test_the_plane_serves_the_document_under_test(live: Plane) -> None:
    import requests

    assert requests.get(f"{live.url}/openapi.json", timeout=10).json() == openapi.document()
