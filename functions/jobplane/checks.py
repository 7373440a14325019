"""Field checks that append a ``Problem`` to a list instead of raising.

Validators built from these (job specs, training data, event data) report every problem in
one pass with its field path, as ``ValidationError`` wants, rather than stopping at the first.
Also the Kubernetes quantity grammar (``500m``, ``4Gi``), which specs' resources use.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from .errors import Problem

Problems = list[Problem]

DNS_LABEL: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
MAX_LABEL: Final = 63
_QUANTITY = re.compile(
    r"^[+-]?(?P<number>\d+(\.\d*)?|\.\d+)(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?\d+)?$"
)
_SUFFIX: Final = {
    "": Decimal(1), "m": Decimal("0.001"), "k": Decimal(10) ** 3, "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9, "T": Decimal(10) ** 12, "P": Decimal(10) ** 15, "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60,
}


def kind(value: object) -> str:
    return "null" if value is None else {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


def mapping(value: object, path: str, problems: Problems) -> Mapping[str, Any] | None:
    if isinstance(value, Mapping):
        return value
    problems.append(Problem(path, f"must be an object, got {kind(value)}"))
    return None


def unknown(obj: Mapping[str, Any], allowed: frozenset[str] | set[str], path: str, problems: Problems) -> None:
    for key in sorted(set(obj) - set(allowed), key=str):
        problems.append(Problem(f"{path}.{key}", f"unknown field (expected one of {', '.join(sorted(allowed))})"))


def integer(value: object, path: str, problems: Problems, *, low: int, high: int) -> int | None:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        problems.append(Problem(path, f"must be an integer, got {kind(value)}"))
        return None
    if not low <= value <= high:
        problems.append(Problem(path, f"must be between {low} and {high}, got {value}"))
        return None
    return value


def number(value: object, path: str, problems: Problems, *, low: float, high: float, open_low: bool) -> float | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        problems.append(Problem(path, f"must be a number, got {kind(value)}"))
        return None
    too_low = value <= low if open_low else value < low
    if too_low or value > high or not math.isfinite(value):
        bound = "(" if open_low else "["
        problems.append(Problem(path, f"must be in {bound}{low}, {high}], got {value}"))
        return None
    return value


def string(value: object, path: str, problems: Problems, *, max_len: int = 1000) -> str | None:
    if not isinstance(value, str) or not value.strip():
        problems.append(Problem(path, f"must be a non-empty string, got {kind(value) if value != '' else 'empty'}"))
        return None
    if len(value) > max_len:
        problems.append(Problem(path, f"must be at most {max_len} characters, got {len(value)}"))
        return None
    return value


def choice(value: object, path: str, problems: Problems, choices: tuple[str, ...]) -> str | None:
    if value not in choices:
        problems.append(Problem(path, f"must be one of {', '.join(choices)}, got {value!r}"))
        return None
    return str(value)


def label(value: object, path: str, problems: Problems, *, max_len: int = MAX_LABEL) -> str | None:
    if not isinstance(value, str) or not value:
        problems.append(Problem(path, f"must be a non-empty string, got {kind(value)}"))
        return None
    if len(value) > max_len or not DNS_LABEL.match(value):
        problems.append(Problem(
            path, f"must be a DNS-1123 label (lowercase letters, digits and '-', starting and ending "
                  f"with a letter or digit, at most {max_len} characters), got {value!r}"))
        return None
    return value


def uri(value: object, path: str, problems: Problems) -> str | None:
    if not isinstance(value, str):
        problems.append(Problem(path, f"must be a gs:// or file:/// URI, got {kind(value)}"))
        return None
    if re.match(r"^gs://[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]/.+", value) or re.match(r"^file:///.+", value):
        return value
    problems.append(Problem(path, f"must be gs://bucket/object or file:///absolute/path, got {value!r}"))
    return None


def required(obj: Mapping[str, Any], key: str, path: str, problems: Problems) -> bool:
    if key in obj:
        return True
    problems.append(Problem(f"{path}.{key}", "required"))
    return False


# --- Kubernetes quantities -----------------------------------------------------------------


def parse_quantity(text: str) -> Decimal:
    """The value of a Kubernetes quantity (``500m``, ``4Gi``, ``1e3``); ``ValueError`` if invalid."""
    match = _QUANTITY.match(text)
    if not match:
        raise ValueError(f"not a Kubernetes quantity: {text!r}")
    suffix = match["suffix"] or ""
    number = Decimal(text[: len(text) - len(suffix)] if suffix else text)
    if suffix[:1] in ("e", "E"):
        return number * Decimal(10) ** int(suffix[1:])
    return number * _SUFFIX[suffix]


def quantity(value: object, path: str, problems: Problems, *, minimum: Decimal, unit: str) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        problems.append(Problem(path, f"must be a Kubernetes quantity string such as \"2\" or \"4Gi\", got {kind(value)}"))
        return None
    try:
        amount = parse_quantity(value)
    except (ValueError, InvalidOperation):
        problems.append(Problem(path, f"must be a Kubernetes quantity such as \"500m\", \"2\" or \"4Gi\", got {value!r}"))
        return None
    if amount < minimum:
        problems.append(Problem(path, f"must be at least {minimum} {unit}, got {value!r}"))
        return None
    return value




def boolean(value: object, path: str, problems: Problems) -> bool | None:
    if isinstance(value, bool):
        return value
    problems.append(Problem(path, f"must be true or false, got {kind(value)}"))
    return None
