"""Evaluation figures: accuracy, macro-F1, per-intent precision/recall/F1, entity-level F1 and
the confusion matrix (JSON, and a PNG heatmap written with zlib alone, no plotting library).
"""

from __future__ import annotations

import struct
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from jobplane import inference

if TYPE_CHECKING:
    from .data import Example


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f}


def intent_report(y_true: Sequence[str], y_pred: Sequence[str], *, labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 (over intents with support, as scikit-learn's labels=present), and
    per-intent precision/recall/F1/support."""
    pairs = list(zip(y_true, y_pred))
    correct = sum(t == p for t, p in pairs)
    per: dict[str, dict[str, float]] = {}
    for label in labels:
        tp = sum(t == label and p == label for t, p in pairs)
        fp = sum(t != label and p == label for t, p in pairs)
        fn = sum(t == label and p != label for t, p in pairs)
        support = tp + fn
        if support or fp:
            per[label] = _prf(tp, fp, fn) | {"support": support}
    scored = [v["f1"] for v in per.values() if v["support"]]
    return {
        "accuracy": correct / len(pairs) if pairs else 0.0,
        "macro_f1": sum(scored) / len(scored) if scored else 0.0,
        "n": len(pairs),
        "per_intent": per,
    }


Span = tuple[int, int, str]


def entity_report(gold: Sequence[Sequence[Span]], pred: Sequence[Sequence[Span]]) -> dict[str, Any]:
    """Entity-level (exact span and type) micro precision/recall/F1, and per entity type."""
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for g, p in zip(gold, pred):
        gs, ps = Counter(g), Counter(p)
        for span, n in (gs & ps).items():
            tp[span[2]] += n
        for span, n in (ps - gs).items():
            fp[span[2]] += n
        for span, n in (gs - ps).items():
            fn[span[2]] += n
    types = sorted(set(tp) | set(fp) | set(fn))
    per = {t: _prf(tp[t], fp[t], fn[t]) | {"support": tp[t] + fn[t]} for t in types}
    micro = _prf(sum(tp.values()), sum(fp.values()), sum(fn.values()))
    return micro | {"support": sum(tp.values()) + sum(fn.values()), "per_entity": per}


def confusion(y_true: Sequence[str], y_pred: Sequence[str], *, labels: Sequence[str]) -> dict[str, Any]:
    """``{"labels": [...], "matrix": [[...]]}``: rows are true intents, columns predicted."""
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for t, p in zip(y_true, y_pred):
        if t in index and p in index:
            matrix[index[t]][index[p]] += 1
    return {"labels": list(labels), "matrix": matrix}


def summary(report: Mapping[str, Any], entities: Mapping[str, Any] | None) -> dict[str, float]:
    """The flat figures a run record and the quality gate use."""
    out = {"accuracy": round(report["accuracy"], 6), "macro_f1": round(report["macro_f1"], 6)}
    if entities and entities.get("support"):
        out |= {
            "entity_f1": round(entities["f1"], 6),
            "entity_precision": round(entities["precision"], 6),
            "entity_recall": round(entities["recall"], 6),
        }
    return out


# --- PNG heatmap -------------------------------------------------------------------------


def heatmap_png(matrix: Sequence[Sequence[int]], *, cell: int = 0) -> bytes:
    """The confusion matrix as a PNG: each row normalised by its total, white (0) to dark blue
    (1), correct predictions on the diagonal; cells of ``cell`` pixels (auto: ~600 px wide)."""
    n = max(len(matrix), 1)
    size = cell or max(2, min(40, 600 // n))
    rows = []
    for r in range(n * size):
        i = r // size
        total = sum(matrix[i]) if matrix else 0
        line = bytearray([0])  # filter type None
        for j in range(n):
            share = matrix[i][j] / total if total else 0.0
            line += bytes(_blue(share)) * size
        rows.append(bytes(line))
    return _png(n * size, n * size, b"".join(rows))


def _blue(share: float) -> tuple[int, int, int]:
    s = max(0.0, min(1.0, share)) ** 0.5  # lift small confusions into view
    return (int(255 - 247 * s), int(255 - 207 * s), int(255 - 148 * s))


def _png(width: int, height: int, raw: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def evaluate(model: inference.Model, examples: Sequence[Example], *, labels: list[str]) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any]]:
    """Intent report, entity report (if the model tags) and confusion matrix, via numpy inference."""
    y_true, y_pred, gold, pred = [], [], [], []
    for ex in examples:
        probs = model.intent_probs(ex.text)
        y_true.append(ex.intent)
        y_pred.append(model.labels[int(probs.argmax())])
        if model.tags:
            gold.append([(e.start, e.end, e.entity) for e in ex.entities])
            pred.append([(e["start"], e["end"], e["entity"]) for e in model.entities(ex.text, intent=y_pred[-1])])
    all_labels = labels + sorted({t for t in y_true if t not in set(labels)})
    report = intent_report(y_true, y_pred, labels=all_labels)
    ents = entity_report(gold, pred) if model.tags else None
    return report, ents, confusion(y_true, y_pred, labels=all_labels)
