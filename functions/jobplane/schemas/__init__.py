"""The one source of jobplane's data shapes: ``jobplane.json`` (JSON Schema 2020-12).

Job specs and each job type's params, the run record and each CloudEvent's ``data`` are
defined there once; the validator (``jobplane.spec``, event data checks), ``/openapi.json``
(``jobplane.openapi``) and the CloudEvents catalogue (``jobplane.catalogue``) derive from it.
A job type's spec (``TrainingSpec``…) is the shared ``JobSpec`` with ``type`` fixed, its params
schema and its own defaults (``jobtypes``), and ``Spec`` is their ``oneOf`` by ``type``.

``problems`` validates with the ``jsonschema`` library and turns each error into a ``Problem``
at its field path (``spec.resources.gpus: must be between 0 and 8, got 12``). Keywords the
validator ignores carry the wording: ``x-expected`` (what a value must be: "a DNS-1123
label …") and ``x-problem`` (the whole problem of a ``not``/``const`` rule). Semantic checks a
schema cannot say (cron expressions that never fire, time zones, quantities' minimums, entity
offsets, data URIs' places) stay code, beside the schema checks.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterator, Mapping
from functools import cache
from importlib import resources
from typing import Any, Final

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaError

from .. import events as ev
from ..errors import Problem

DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
EVENT_DATA: Final[Mapping[str, str]] = {
    ev.BOT_CHANGED: "BotChangedData",
    ev.PING: "PingData",
    ev.RUN_REQUESTED: "RunRequestedData",
    ev.RUN_LAUNCHED: "RunLaunchedData",
    ev.RUN_PROGRESS: "RunProgressData",
    ev.RUN_SUCCEEDED: "RunSucceededData",
    ev.RUN_FAILED: "RunFailedData",
    ev.MODEL_READY: "ModelReadyData",
}
"""Each CloudEvent type jobplane takes or emits → its data's definition."""
_KINDS: Final = {dict: "object", list: "array", str: "string", bool: "boolean"}


def kind(value: object) -> str:
    return "null" if value is None else _KINDS.get(type(value), type(value).__name__)


@cache
def _source() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(resources.files(__package__).joinpath("jobplane.json").read_text("utf-8"))
    return loaded


def source_defs() -> Mapping[str, Any]:
    """The definitions as the file has them (no job type's spec yet; safe while ``jobtypes`` loads)."""
    defs: Mapping[str, Any] = _source()["$defs"]
    return defs


def spec_def(type_name: str) -> str:
    """The definition name of a job type's spec: ``training`` → ``TrainingSpec``."""
    return "".join(part.capitalize() for part in type_name.split("-")) + "Spec"


@cache
def document() -> dict[str, Any]:
    """The schema document with every job type's spec and ``Spec`` added (do not mutate)."""
    from .. import jobtypes

    doc = copy.deepcopy(_source())
    defs = doc["$defs"]
    for name, job_type in jobtypes.REGISTRY.items():
        defs[spec_def(name)] = _type_spec(defs["JobSpec"], name, job_type.params_schema,
                                          timeout=job_type.timeout_seconds, resources=job_type.resources)
    defs["Spec"] = {
        "description": defs["JobSpec"]["description"] + " One schema per job type, by `type`.",
        "oneOf": [{"$ref": f"#/$defs/{spec_def(name)}"} for name in jobtypes.REGISTRY],
        "discriminator": {"propertyName": "type",
                          "mapping": {name: f"#/$defs/{spec_def(name)}" for name in jobtypes.REGISTRY}},
    }
    return doc


def _type_spec(base: Mapping[str, Any], name: str, params: str, *, timeout: int,
               resources: Mapping[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(dict(base))
    spec["title"] = f"{name} spec"
    spec["description"] = f"A {name} job spec."
    props = spec["properties"]
    props["type"] = {"const": name}
    props["params"] = {"$ref": f"#/$defs/{params}"}
    props["timeoutSeconds"] = {**props["timeoutSeconds"], "default": timeout}
    props["resources"] = {"allOf": [props["resources"]], "default": dict(resources)}
    return spec


def definitions() -> Mapping[str, Any]:
    defs: Mapping[str, Any] = document()["$defs"]
    return defs


def standalone(name: str) -> dict[str, Any]:
    """Definition ``name`` as a JSON Schema document of its own (with every definition it may use)."""
    doc = document()
    return {"$schema": DIALECT, "$ref": f"#/$defs/{name}", "$defs": copy.deepcopy(doc["$defs"])}


def as_components(value: Any) -> Any:
    """A definition as an OpenAPI or AsyncAPI document's ``components.schemas`` holds it:
    ``#/$defs/`` references rewritten, the validator's wording keywords (``x-expected``,
    ``x-problem``) dropped."""
    if isinstance(value, Mapping):
        return {key: as_components(item) for key, item in value.items() if key not in ("x-expected", "x-problem")}
    if isinstance(value, list):
        return [as_components(item) for item in value]
    if isinstance(value, str) and value.startswith("#/$defs/"):
        return "#/components/schemas/" + value.removeprefix("#/$defs/")
    return value


def components() -> dict[str, Any]:
    """Every definition, as ``components.schemas`` (a fresh copy)."""
    return {name: as_components(schema) for name, schema in definitions().items()}


@cache
def _validator(name: str) -> Draft202012Validator:
    doc = document()
    return Draft202012Validator({"$schema": DIALECT, "$defs": doc["$defs"], "$ref": f"#/$defs/{name}"})


def is_valid(instance: object, name: str) -> bool:
    return bool(_validator(name).is_valid(instance))


def problems(instance: object, name: str, path: str, *, limit: int | None = None) -> list[Problem]:
    """Every problem of ``instance`` against definition ``name``, at paths under ``path``
    (at most ``limit``, each once, in document order)."""
    found: list[Problem] = []
    seen: set[Problem] = set()
    mistyped: set[str] = set()
    for error in _validator(name).iter_errors(instance):
        if error.validator == "type":
            mistyped.add(field_path(path, error.absolute_path))
        for problem in _translate(error, path):
            if problem not in seen:
                seen.add(problem)
                found.append(problem)
        if limit is not None and len(found) >= limit:
            break
    found.extend(p for p in _non_finite(instance, path) if p not in seen)
    # a value of the wrong type gets that one problem (its object rules say nothing more)
    found = [p for p in found if p.field not in mistyped or p.problem.startswith("must be ")]
    return found[:limit] if limit is not None else found


def field_path(prefix: str, parts: Iterator[Any] | Any) -> str:
    out = prefix
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


# --- errors → problems ---------------------------------------------------------------------


def _translate(error: SchemaError, prefix: str) -> list[Problem]:
    path = field_path(prefix, error.absolute_path)
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    value, validator = error.instance, str(error.validator)
    if "x-problem" in schema and validator in ("not", "const", "false"):
        return [Problem(path, str(schema["x-problem"]))]
    if validator == "required":
        return [Problem(f"{path}.{key}", _required(schema, key)) for key in error.validator_value
                if isinstance(value, Mapping) and key not in value]
    if validator == "anyOf" and _only_required(error.validator_value):
        first, *others = (b["required"][0] for b in error.validator_value)
        return [Problem(f"{path}.{first}", f"required (or {' or '.join(others)})")]
    if validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        return [Problem(f"{path}.{key}", f"unknown field (expected one of {', '.join(allowed)})")
                for key in sorted(set(value) - set(allowed), key=str)]
    return [Problem(path, _message(validator, error.validator_value, value, schema))]


def _required(schema: Mapping[str, Any], key: str) -> str:
    prop = schema.get("properties", {}).get(key, {})
    if prop.get("type") == "string" and prop.get("minLength", 0) >= 1:
        return "required: must be a non-empty string"
    return "required"


def _message(validator: str, expected: Any, value: Any, schema: Mapping[str, Any]) -> str:
    wanted = schema.get("x-expected")
    if wanted and validator == "type":
        return f"must be {wanted}, got {kind(value)}"
    if wanted and validator in ("pattern", "const", "minItems", "minLength", "format"):
        return f"must be {wanted}, got {value!r}"
    if validator == "type":
        return _type_message(expected, value, schema)
    if validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return _range_message(schema, value)
    if validator == "enum":
        return f"must be one of {', '.join(str(v) for v in expected)}, got {value!r}"
    if validator == "const":
        return f"must be {expected!r}, got {value!r}"
    if validator == "minLength":
        return f"must be a non-empty string, got {'empty' if value == '' else repr(value)}"
    if validator == "maxLength":
        return f"must be at most {expected} characters, got {len(value)}"
    if validator == "minItems":
        return f"must be a non-empty array, got {value!r}"
    if validator == "oneOf" and _only_required(expected):
        return f"must have exactly one of {' or '.join(b['required'][0] for b in expected)}"
    if validator == "not" and isinstance(expected, Mapping) and list(expected) == ["required"]:
        return f"must have at most one of {' or '.join(expected['required'])}"
    if validator == "false":
        return "not allowed"
    return f"does not match the schema ({validator})"


def _only_required(branches: Any) -> bool:
    return isinstance(branches, list) and all(
        isinstance(b, Mapping) and list(b) == ["required"] and len(b["required"]) == 1 for b in branches)


_TYPE_WORDS: Final = {"object": "an object", "array": "an array", "integer": "an integer", "number": "a number",
                      "boolean": "true or false", "null": "null"}


def _type_message(expected: Any, value: Any, schema: Mapping[str, Any]) -> str:
    types = [expected] if isinstance(expected, str) else list(expected)
    words = []
    for name in types:
        if name == "string":
            words.append("a non-empty string" if schema.get("minLength", 0) >= 1 else "a string")
        else:
            words.append(_TYPE_WORDS.get(name, name))
    return f"must be {' or '.join(words)}, got {kind(value)}"


def _range_message(schema: Mapping[str, Any], value: Any) -> str:
    low = schema.get("exclusiveMinimum", schema.get("minimum"))
    high = schema.get("exclusiveMaximum", schema.get("maximum"))
    if schema.get("type") == "integer" and low is not None and high is not None:
        return f"must be between {low} and {high}, got {value}"
    if low is not None and high is not None:
        left = "(" if "exclusiveMinimum" in schema else "["
        right = ")" if "exclusiveMaximum" in schema else "]"
        return f"must be in {left}{low}, {high}{right}, got {value}"
    if low is not None:
        return f"must be {'above' if 'exclusiveMinimum' in schema else 'at least'} {low}, got {value}"
    return f"must be {'below' if 'exclusiveMaximum' in schema else 'at most'} {high}, got {value}"


def _non_finite(value: object, path: str) -> Iterator[Problem]:
    """NaN and infinities (Python's JSON reads them; JSON Schema's bounds let NaN through)."""
    if isinstance(value, float) and not math.isfinite(value):
        yield Problem(path, f"must be a finite number, got {value}")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _non_finite(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _non_finite(item, f"{path}[{i}]")
