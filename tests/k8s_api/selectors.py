"""Label and field selectors as the API server parses them (``=``/``==``, ``!=``, ``in``,
``notin``, exists, ``!``not-exists), so the client under test gets real filtering."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Matcher = Callable[[Mapping[str, str]], bool]

_SET_RE = re.compile(r"^\s*([^\s!=(),]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


class SelectorError(ValueError):
    """The selector does not parse; the server answers 400."""


def split_terms(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    terms, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        terms.append(cur)
    return [t.strip() for t in terms if t.strip()]


def parse_term(term: str) -> Matcher:
    m = _SET_RE.match(term)
    if m:
        key, op, raw = m.group(1), m.group(2), m.group(3)
        values = {v.strip() for v in raw.split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    for op in ("!=", "==", "="):
        if op in term:
            key, value = (p.strip() for p in term.split(op, 1))
            if not key:
                raise SelectorError(f"unable to parse requirement: {term!r}")
            if op == "!=":
                return lambda labels: labels.get(key) != value
            return lambda labels: labels.get(key) == value
    if term.startswith("!"):
        key = term[1:].strip()
        return lambda labels: key not in labels
    if re.fullmatch(r"[A-Za-z0-9./_-]+", term):
        return lambda labels: term in labels
    raise SelectorError(f"unable to parse requirement: {term!r}")


def label_matcher(selector: str | None) -> Matcher:
    if not selector:
        return lambda labels: True
    matchers = [parse_term(t) for t in split_terms(selector)]
    return lambda labels: all(m(labels) for m in matchers)


def field_matcher(selector: str | None) -> Callable[[Mapping[str, Any]], bool]:
    """Only ``metadata.name`` and ``metadata.namespace`` (what clients use to watch one object)."""
    if not selector:
        return lambda obj: True
    label_like = label_matcher(selector)

    def fields(obj: Mapping[str, Any]) -> dict[str, str]:
        meta = obj.get("metadata", {})
        return {"metadata.name": meta.get("name", ""), "metadata.namespace": meta.get("namespace", "")}

    return lambda obj: label_like(fields(obj))
