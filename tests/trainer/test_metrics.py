"""Evaluation figures against tables worked out by hand."""

from __future__ import annotations

import struct
import zlib

import pytest

from jobplane_trainer.metrics import confusion, entity_report, heatmap_png, intent_report

# true:  a a a b b c      pred: a a b b c c
# a: tp 2 fp 0 fn 1 → P 1, R 2/3, F1 0.8
# b: tp 1 fp 1 fn 1 → P 1/2, R 1/2, F1 1/2
# c: tp 1 fp 1 fn 0 → P 1/2, R 1, F1 2/3
Y_TRUE = ["a", "a", "a", "b", "b", "c"]
Y_PRED = ["a", "a", "b", "b", "c", "c"]


def test_intent_report_matches_hand_computed_table() -> None:
    r = intent_report(Y_TRUE, Y_PRED, labels=["a", "b", "c"])
    assert r["accuracy"] == pytest.approx(4 / 6)
    assert r["per_intent"]["a"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert r["per_intent"]["b"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert r["per_intent"]["c"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1})
    assert r["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_confusion_rows_are_true_columns_predicted() -> None:
    assert confusion(Y_TRUE, Y_PRED, labels=["a", "b", "c"])["matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]


def test_entity_report_counts_exact_spans_and_types() -> None:
    gold = [[(0, 3, "city"), (5, 8, "date")], [(1, 2, "city")]]
    pred = [[(0, 3, "city"), (5, 9, "date")], [(1, 2, "date")]]
    r = entity_report(gold, pred)
    # tp 1 (city), fp 2, fn 2 → P 1/3, R 1/3
    assert (r["precision"], r["recall"], r["f1"]) == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    assert r["per_entity"]["city"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    assert r["per_entity"]["date"]["precision"] == 0.0


def test_heatmap_is_a_valid_png_of_the_matrix_size() -> None:
    png = heatmap_png([[2, 1, 0], [0, 1, 1], [0, 0, 1]], cell=4)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (12, 12)
    idat_len = struct.unpack(">I", png[33:37])[0]
    raw = zlib.decompress(png[41 : 41 + idat_len])
    assert len(raw) == 12 * (1 + 12 * 3)
    assert raw[1:4] != b"\xff\xff\xff"  # the (0, 0) cell holds 2/3 of its row: coloured
