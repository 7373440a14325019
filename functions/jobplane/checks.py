"""Checks a schema cannot say, appending a ``Problem`` to a list instead of raising.

The structure of specs, params and event data is ``schemas/jobplane.json``'s; what is left here
is the Kubernetes quantity grammar (``500m``, ``4Gi``) with its minimums, which specs'
resources use, and the DNS-1123 label pattern ids share.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Final

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
