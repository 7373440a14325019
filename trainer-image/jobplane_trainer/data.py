"""Training data: the project's JSON format, importers for Rasa NLU YAML and Snips NLU JSON, and
validation that names every problem.

Data that can never train (bad encoding, an intent with too few examples, one utterance under
two intents...) raises ``BadDataError``; the trainer exits with ``EXIT_BAD_DATA`` so the Job's
podFailurePolicy fails it without retries.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from jobplane.errors import PermanentError, Problem

MIN_EXAMPLES_PER_INTENT = 2
MIN_INTENTS = 2
MAX_TEXT = 2000
_RASA_ANNOTATION = re.compile(r"\[(?P<text>[^\]]+)\](?:\((?P<paren>[^)]+)\)|(?P<brace>\{[^}]*\}))")


class BadDataError(PermanentError):
    """Training data that can never train; ``problems`` says what and where."""

    code = "bad_data"

    def __init__(self, problems: Sequence[Problem], *, what: str = "training data") -> None:
        summary = "; ".join(str(p) for p in problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        super().__init__(f"invalid {what}: {summary}{more}" if problems else f"invalid {what}", details=list(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class Entity:
    start: int
    end: int
    entity: str
    value: str

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "entity": self.entity, "value": self.value}


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    entities: tuple[Entity, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text, "intent": self.intent}
        if self.entities:
            out["entities"] = [e.to_dict() for e in self.entities]
        return out


# --- decoding ------------------------------------------------------------------------------


def decode(raw: bytes, *, name: str, errors: str = "strict") -> str:
    """UTF-8 text; with ``errors="strict"`` a bad byte raises ``BadDataError`` naming the line."""
    try:
        return raw.decode("utf-8-sig", errors)
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise BadDataError(
            [Problem(f"{name}:{line}:{column}", f"not valid UTF-8: byte 0x{raw[e.start]:02x} ({e.reason})")]
        ) from e


def parse(raw: bytes, *, name: str, errors: str = "strict") -> list[Example]:
    """Examples from any supported format, told apart by content (then by file name)."""
    text = decode(raw, name=name, errors=errors)
    stripped = text.lstrip()
    if name.endswith((".yml", ".yaml")) or stripped.startswith(("nlu:", "version:", "#")):
        return from_rasa(text, name=name)
    if name.endswith(".csv"):
        return from_csv(text, name=name)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadDataError([Problem(f"{name}:{e.lineno}:{e.colno}", f"not valid JSON: {e.msg}")]) from e
    if isinstance(obj, Mapping) and "examples" in obj:
        return from_project(obj, name=name)
    if isinstance(obj, Mapping):
        return from_snips(obj, name=name)
    raise BadDataError([Problem(name, "expected a JSON object with examples, Snips intents, or Rasa YAML")])


# --- the project format ---------------------------------------------------------------------


def from_project(obj: Mapping[str, Any], *, name: str = "data") -> list[Example]:
    """``{"examples": [{"text", "intent", "entities"?: [{"start","end","entity","value"?}]}]}``."""
    items = obj.get("examples")
    if not isinstance(items, list):
        raise BadDataError([Problem(f"{name}.examples", "must be a list")])
    out: list[Example] = []
    problems: list[Problem] = []
    for i, item in enumerate(items):
        path = f"{name}.examples[{i}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("text"), str) or not isinstance(item.get("intent"), str):
            problems.append(Problem(path, "must be an object with string text and intent"))
            continue
        ents = _project_entities(item.get("entities") or [], item["text"], path, problems)
        out.append(Example(item["text"], item["intent"], ents))
    if problems:
        raise BadDataError(problems)
    return out


def _project_entities(items: Any, text: str, path: str, problems: list[Problem]) -> tuple[Entity, ...]:
    if not isinstance(items, list):
        problems.append(Problem(f"{path}.entities", "must be a list"))
        return ()
    out = []
    for j, e in enumerate(items):
        where = f"{path}.entities[{j}]"
        ok = isinstance(e, Mapping) and isinstance(e.get("start"), int) and isinstance(e.get("end"), int)
        if not ok or not isinstance(e.get("entity"), str):
            problems.append(Problem(where, "must have integer start, end and a string entity"))
            continue
        if not 0 <= e["start"] < e["end"] <= len(text):
            problems.append(Problem(where, f"span {e['start']}..{e['end']} is outside the text (length {len(text)})"))
            continue
        out.append(Entity(e["start"], e["end"], e["entity"], text[e["start"] : e["end"]]))
    return tuple(out)


def to_project(examples: Iterable[Example]) -> dict[str, Any]:
    return {"examples": [e.to_dict() for e in examples]}


# --- Snips NLU JSON ----------------------------------------------------------------------


def from_snips(obj: Mapping[str, Any], *, name: str = "data") -> list[Example]:
    """Snips NLU's dataset (``{"intents": {X: {"utterances": [...]}}}``) or the 2017 benchmark
    files (``{X: [{"data": [{"text", "entity"?}]}]}``)."""
    intents: Mapping[str, Any] = obj["intents"] if isinstance(obj.get("intents"), Mapping) else obj
    out: list[Example] = []
    problems: list[Problem] = []
    for intent, body in intents.items():
        utterances = body.get("utterances") if isinstance(body, Mapping) else body
        if not isinstance(utterances, list):
            problems.append(Problem(f"{name}.{intent}", "must be a list of utterances with data chunks"))
            continue
        for i, utt in enumerate(utterances):
            chunks = utt.get("data") if isinstance(utt, Mapping) else None
            if not isinstance(chunks, list):
                problems.append(Problem(f"{name}.{intent}[{i}].data", "must be a list of chunks"))
                continue
            out.append(_snips_example(str(intent), chunks))
    if problems:
        raise BadDataError(problems)
    return out


def _snips_example(intent: str, chunks: Sequence[Mapping[str, Any]]) -> Example:
    text, ents = "", []
    for chunk in chunks:
        piece = str(chunk.get("text", ""))
        if chunk.get("entity"):
            lead = len(piece) - len(piece.lstrip())
            core = piece.strip()
            if core:
                start = len(text) + lead
                ents.append(Entity(start, start + len(core), str(chunk["entity"]), core))
        text += piece
    return Example(text, intent, tuple(ents))


# --- Rasa NLU YAML ----------------------------------------------------------------------


def from_rasa(text: str, *, name: str = "data") -> list[Example]:
    """``nlu: - intent: X  examples: | - utterance with [value](entity)``."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        raise BadDataError([Problem(where, f"not valid YAML: {getattr(e, 'problem', e)}")]) from e
    items = doc.get("nlu") if isinstance(doc, Mapping) else None
    if not isinstance(items, list):
        raise BadDataError([Problem(f"{name}.nlu", "must be a list of intents")])
    out: list[Example] = []
    for i, item in enumerate(items):
        if isinstance(item, Mapping) and "intent" in item:
            out += [_rasa_example(line, str(item["intent"])) for line in _rasa_lines(item.get("examples"))]
    if not out:
        raise BadDataError([Problem(f"{name}.nlu", "no intent with examples")])
    return out


def _rasa_lines(examples: Any) -> list[str]:
    if isinstance(examples, list):
        return [str(e.get("text", "")) if isinstance(e, Mapping) else str(e) for e in examples]
    lines = str(examples or "").splitlines()
    return [ln.strip()[1:].strip() for ln in lines if ln.strip().startswith("-")]


def _rasa_example(line: str, intent: str) -> Example:
    text, ents, pos = "", [], 0
    for m in _RASA_ANNOTATION.finditer(line):
        text += line[pos : m.start()]
        entity = _rasa_entity_name(m.group("paren"), m.group("brace"))
        ents.append(Entity(len(text), len(text) + len(m.group("text")), entity, m.group("text")))
        text += m.group("text")
        pos = m.end()
    return Example(text + line[pos:], intent, tuple(ents))


def _rasa_entity_name(paren: str | None, brace: str | None) -> str:
    if paren is not None:
        return paren.split(":", 1)[0].strip()
    try:
        return str(json.loads(brace or "{}").get("entity", "entity"))
    except json.JSONDecodeError:
        return "entity"


# --- CSV (text,intent) -------------------------------------------------------------------


def from_csv(text: str, *, name: str = "data") -> list[Example]:
    """A CSV with a header naming ``text`` and ``intent`` (or ``category``/``label``) columns."""
    reader = csv.DictReader(io.StringIO(text))
    cols = reader.fieldnames or []
    label = next((c for c in ("intent", "category", "label") if c in cols), None)
    if "text" not in cols or label is None:
        raise BadDataError([Problem(f"{name}:1", f"CSV header must name text and intent columns, got {cols}")])
    return [Example(row["text"], row[label]) for row in reader]


# --- validation ----------------------------------------------------------------------------


def validate(examples: Sequence[Example], *, min_per_intent: int = MIN_EXAMPLES_PER_INTENT) -> None:
    """Raise ``BadDataError`` listing every problem: empty texts or intents, too few intents or
    examples per intent, one utterance under two intents, entity spans that do not match."""
    problems: list[Problem] = []
    seen: dict[str, tuple[int, str]] = {}
    for i, ex in enumerate(examples):
        problems += _example_problems(i, ex)
        key = normalize(ex.text)
        first = seen.setdefault(key, (i, ex.intent))
        if first[1] != ex.intent and key:
            problems.append(Problem(f"examples[{i}]", f"{ex.text!r} is also under intent {first[1]!r} (examples[{first[0]}])"))
    counts = Counter(ex.intent for ex in examples if ex.intent.strip())
    if len(counts) < MIN_INTENTS:
        problems.append(Problem("examples", f"need at least {MIN_INTENTS} intents, got {len(counts)}"))
    for intent, n in sorted(counts.items()):
        if n < min_per_intent:
            problems.append(Problem(f"intent {intent}", f"needs at least {min_per_intent} examples, got {n}"))
    if problems:
        raise BadDataError(problems)


def _example_problems(i: int, ex: Example) -> list[Problem]:
    out = []
    if not ex.text.strip():
        out.append(Problem(f"examples[{i}].text", "is empty"))
    if len(ex.text) > MAX_TEXT:
        out.append(Problem(f"examples[{i}].text", f"is longer than {MAX_TEXT} characters"))
    if not ex.intent.strip():
        out.append(Problem(f"examples[{i}].intent", "is empty"))
    for j, e in enumerate(ex.entities):
        if not 0 <= e.start < e.end <= len(ex.text) or ex.text[e.start : e.end] != e.value:
            out.append(Problem(f"examples[{i}].entities[{j}]", f"span {e.start}..{e.end} does not hold {e.value!r}"))
    return out


def drop_conflicts(examples: Sequence[Example]) -> list[Example]:
    """Examples without the utterances that appear under more than one intent (benchmarks)."""
    intents: dict[str, set[str]] = defaultdict(set)
    for ex in examples:
        intents[normalize(ex.text)].add(ex.intent)
    return [ex for ex in examples if len(intents[normalize(ex.text)]) == 1]


def normalize(text: str) -> str:
    return " ".join(text.lower().split())


def data_hash(examples: Sequence[Example]) -> str:
    """SHA-256 of the canonical project JSON: the model card's training-data hash."""
    blob = json.dumps(to_project(examples), sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()
