"""The Knative Eventing manifests in ``eventing/`` as the embedded plane reads them: Brokers'
delivery settings, Triggers and their filters, and where a Destination lives on one machine.

Pure (apart from reading the YAML files): the local broker (``broker.py``) acts on what this
module reads. Semantics follow Knative Eventing:

- ``spec.filter.attributes``: every listed attribute (context attribute or extension) must
  equal the given value exactly; the value ``""`` means present and non-empty.
  ``spec.filters`` (the newer dialects ``exact``/``prefix``/``suffix``/``all``/``any``/``not``)
  wins over ``filter`` when given.
- ``spec.delivery`` of a Trigger overrides its Broker's field by field. Retry n (1-based)
  waits ``backoffDelay * n`` (linear) or ``backoffDelay * 2^n`` (exponential), as Knative's
  ``RetryConfigFromDeliverySpec``; ``backoffDelay`` and ``timeout`` are ISO 8601 durations.
- Retried responses are those of Knative's ``SelectiveRetry``: no response at all, 5xx, 404,
  408, 409 and 429; any other status is final.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final
from urllib.parse import urljoin, urlparse

import yaml

from ..errors import PermanentError

RETRIED_4XX: Final = frozenset({404, 408, 409, 429})
_DURATION = re.compile(
    r"^P(?!$)(?:(?P<Y>\d+(?:[.,]\d+)?)Y)?(?:(?P<MO>\d+(?:[.,]\d+)?)M)?(?:(?P<W>\d+(?:[.,]\d+)?)W)?"
    r"(?:(?P<D>\d+(?:[.,]\d+)?)D)?(?:T(?=\d)(?:(?P<H>\d+(?:[.,]\d+)?)H)?(?:(?P<MI>\d+(?:[.,]\d+)?)M)?"
    r"(?:(?P<S>\d+(?:[.,]\d+)?)S)?)?$"
)
_UNIT_SECONDS: Final = {"Y": 365 * 86400.0, "MO": 30 * 86400.0, "W": 7 * 86400.0, "D": 86400.0, "H": 3600.0, "MI": 60.0, "S": 1.0}


def parse_duration(text: str) -> float:
    """Seconds in an ISO 8601 duration such as ``PT0.5S``, ``PT1M30S`` or ``P1D``."""
    m = _DURATION.match(text.strip().upper()) if isinstance(text, str) else None
    if m is None:
        raise PermanentError(f"expected an ISO 8601 duration such as PT0.5S, got {text!r}")
    return sum(float(v.replace(",", ".")) * _UNIT_SECONDS[k] for k, v in m.groupdict().items() if v)


# --- the manifests ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """A Knative ``DeliverySpec``: retries, backoff and the dead-letter sink."""

    retry: int = 0
    backoff_policy: str = "exponential"
    backoff_delay: float = 0.0
    """Seconds (``backoffDelay`` parsed)."""
    dead_letter_sink: Mapping[str, Any] | None = None
    """A Destination (``ref`` and/or ``uri``), resolved at delivery time."""
    timeout: float | None = None
    """Per-request timeout (``timeout``), seconds."""

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | None, *, base: Delivery | None = None) -> Delivery:
        """``spec.delivery`` of a Broker or Trigger; fields it leaves out keep ``base``'s."""
        out = base or cls()
        if not spec:
            return out
        policy = str(spec.get("backoffPolicy", out.backoff_policy))
        if policy not in ("linear", "exponential"):
            raise PermanentError(f"delivery.backoffPolicy: expected linear or exponential, got {policy!r}")
        return replace(
            out,
            retry=int(spec.get("retry", out.retry)),
            backoff_policy=policy,
            backoff_delay=parse_duration(spec["backoffDelay"]) if "backoffDelay" in spec else out.backoff_delay,
            dead_letter_sink=spec.get("deadLetterSink", out.dead_letter_sink),
            timeout=parse_duration(spec["timeout"]) if "timeout" in spec else out.timeout,
        )

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        if self.backoff_policy == "linear":
            return self.backoff_delay * retry
        return float(self.backoff_delay * 2**retry)


def is_retryable(status: int) -> bool:
    """Knative's ``SelectiveRetry``: connection errors (-1), 5xx, 404, 408, 409, 429."""
    return status == -1 or status >= 500 or status in RETRIED_4XX


@dataclass(frozen=True)
class BrokerConfig:
    name: str = "default"
    namespace: str = "default"
    delivery: Delivery = field(default_factory=Delivery)


@dataclass(frozen=True)
class Trigger:
    name: str
    subscriber: Mapping[str, Any]
    """A Destination: ``ref`` (apiVersion, kind, name, namespace?) and/or ``uri``."""
    broker: str = "default"
    namespace: str = "default"
    attributes: Mapping[str, str] = field(default_factory=dict)
    """``spec.filter.attributes``."""
    filters: tuple[Mapping[str, Any], ...] = ()
    """``spec.filters`` (newer dialects); when non-empty, ``attributes`` is ignored."""
    delivery: Mapping[str, Any] | None = None
    """The Trigger's own ``spec.delivery``, merged over the Broker's at delivery."""

    def matches(self, attrs: Mapping[str, str]) -> bool:
        """Whether an event with these context attributes and extensions passes the filter."""
        if self.filters:
            return all(dialect_matches(f, attrs) for f in self.filters)
        return attributes_match(self.attributes, attrs)


def attributes_match(expected: Mapping[str, str], attrs: Mapping[str, str]) -> bool:
    """``filter.attributes``: exact match of each; ``""`` = present and non-empty."""
    for name, want in expected.items():
        have = attrs.get(name)
        if have is None or have == "" or (want != "" and have != want):
            return False
    return True


def dialect_matches(f: Mapping[str, Any], attrs: Mapping[str, str]) -> bool:
    """One ``spec.filters`` entry: exactly one of exact/prefix/suffix/all/any/not."""
    (kind, arg), *rest = f.items()
    if rest:
        raise PermanentError(f"filters: each entry takes exactly one dialect, got {sorted(f)}")
    if kind in ("exact", "prefix", "suffix"):
        return all(k in attrs and _string_test(kind, attrs[k], str(v)) for k, v in arg.items())
    if kind == "all":
        return all(dialect_matches(sub, attrs) for sub in arg)
    if kind == "any":
        return any(dialect_matches(sub, attrs) for sub in arg)
    if kind == "not":
        return not dialect_matches(arg, attrs)
    raise PermanentError(f"filters: unsupported dialect {kind!r} (exact, prefix, suffix, all, any, not)")


def _string_test(kind: str, have: str, want: str) -> bool:
    if kind == "exact":
        return have == want
    return have.startswith(want) if kind == "prefix" else have.endswith(want)


def _manifests(eventing_dir: Path) -> Iterable[tuple[Path, Mapping[str, Any]]]:
    """Every YAML document directly in ``eventing_dir`` (one resource per file, kustomize-style)."""
    for path in sorted(Path(eventing_dir).glob("*.y*ml")):
        if path.name.startswith("kustomization."):
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, Mapping):
                yield path, doc


def load_triggers(eventing_dir: Path, *, namespace: str = "default") -> list[Trigger]:
    """The Triggers among the manifests in ``eventing_dir``; namespace defaults to ``namespace``."""
    out: list[Trigger] = []
    for path, doc in _manifests(eventing_dir):
        if doc.get("kind") != "Trigger" or not str(doc.get("apiVersion", "")).startswith("eventing.knative.dev/"):
            continue
        out.append(trigger_from_manifest(doc, namespace=namespace, where=str(path)))
    return out


def trigger_from_manifest(doc: Mapping[str, Any], *, namespace: str = "default", where: str = "Trigger") -> Trigger:
    meta, spec = doc.get("metadata") or {}, doc.get("spec") or {}
    if not meta.get("name") or not spec.get("subscriber"):
        raise PermanentError(f"{where}: a Trigger needs metadata.name and spec.subscriber")
    attrs = (spec.get("filter") or {}).get("attributes") or {}
    try:
        Delivery.from_spec(spec.get("delivery"))
    except PermanentError as e:
        raise PermanentError(f"{where}: spec.delivery: {e.message}") from e
    return Trigger(
        name=str(meta["name"]),
        subscriber=spec["subscriber"],
        broker=str(spec.get("broker", "default")),
        namespace=str(meta.get("namespace") or namespace),
        attributes={str(k): "" if v is None else str(v) for k, v in attrs.items()},
        filters=tuple(spec.get("filters") or ()),
        delivery=spec.get("delivery"),
    )


def load_broker(eventing_dir: Path, *, name: str = "default", namespace: str = "default") -> BrokerConfig:
    """The Broker named ``name`` in ``eventing_dir`` (its delivery settings); defaults if absent."""
    for path, doc in _manifests(eventing_dir):
        meta = doc.get("metadata") or {}
        if doc.get("kind") == "Broker" and meta.get("name") == name:
            delivery = Delivery.from_spec((doc.get("spec") or {}).get("delivery"))
            return BrokerConfig(name=name, namespace=str(meta.get("namespace") or namespace), delivery=delivery)
    return BrokerConfig(name=name, namespace=namespace)


# --- resolving Destinations ----------------------------------------------------------------

Resolve = Callable[[Mapping[str, Any]], str]
FUNCTIONS_PATH: Final = "/_functions/"


def function_resolver(base_url: str, *, namespace: str = "default") -> Resolve:
    """Resolve Destinations as the embedded plane serves them: a Knative Service ``N`` is
    ``{base_url}/_functions/N``, a Broker ``B`` its ingress ``{base_url}/{namespace}/B``, an
    absolute ``uri`` itself; a relative ``uri`` is appended to the ``ref``'s URL (Knative)."""
    base = base_url.rstrip("/")

    def resolve(dest: Mapping[str, Any]) -> str:
        ref, uri = dest.get("ref"), dest.get("uri")
        if not ref:
            if uri and urlparse(str(uri)).scheme:
                return str(uri)
            raise PermanentError(f"destination {dict(dest)!r}: needs a ref or an absolute uri")
        kind, name = ref.get("kind"), ref.get("name")
        if kind == "Service":
            url = f"{base}{FUNCTIONS_PATH}{name}"
        elif kind == "Broker":
            url = f"{base}/{ref.get('namespace') or namespace}/{name}"
        else:
            raise PermanentError(f"destination ref kind {kind!r} has no local address (Service or Broker)")
        return urljoin(url + "/", str(uri).lstrip("/")) if uri else url

    return resolve
