"""The search index's pure parts: hybrid ranking, what found a passage, the file round trip."""

from __future__ import annotations

import numpy as np
import pytest

from jobplane import kbindex


def f32(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float32)


def test_hybrid_ranks_by_weighted_cosine_and_scaled_bm25() -> None:
    hits = kbindex.rank(f32(0.9, 0.1, 0.5), f32(0.0, 10.0, 5.0), 3, weight=0.5)
    assert [h.index for h in hits] == [1, 2, 0]  # 0.5·0.1 + 0.5·1, 0.5·0.5 + 0.5·0.5, 0.5·0.9 + 0
    assert [h.score for h in hits] == pytest.approx([0.55, 0.5, 0.45])


def test_matched_by_names_the_parts_that_ranked_a_passage_in_their_own_top_k() -> None:
    hits = {h.index: h.matched_by for h in kbindex.rank(f32(0.9, 0.8, 0.1), f32(0.0, 1.0, 3.0), 2, weight=0.5)}
    assert hits == {1: ["semantic", "lexical"], 2: ["lexical"]}  # passage 0 is in the semantic top 2 only, and out


def test_no_lexical_match_leaves_only_the_semantic_part() -> None:
    hits = kbindex.rank(f32(0.2, 0.7), f32(0.0, 0.0), 5)
    assert [h.index for h in hits] == [1, 0] and all(h.matched_by == ["semantic"] for h in hits)


def test_k_is_bounded_by_the_passages() -> None:
    assert len(kbindex.rank(f32(0.1), f32(1.0), 10)) == 1 and kbindex.rank(f32(), f32(), 3) == []


def test_the_index_file_round_trips_passages_embeddings_and_bm25() -> None:
    passages = [{"articleId": a, "articleHash": "h" + a, "title": t, "heading": "", "text": x} for a, t, x in
                [("a", "Refunds", "refunds take five days"), ("b", "Cards", "freeze a lost card in the app")]]
    emb = np.eye(2, 384, dtype=np.float32)
    index = kbindex.KbIndex.from_bytes(kbindex.to_bytes(passages, emb, meta={"runId": "r"}))
    assert index.passages == passages and np.array_equal(index.embeddings, emb) and index.meta["runId"] == "r"
    scores = index.lexical_scores("my card was lost")
    assert scores[1] > 0 == scores[0]
    assert not index.lexical_scores("zzz qqq").any()


def test_a_file_of_another_format_is_refused() -> None:
    import io
    import json

    out = io.BytesIO()
    np.savez(out, meta=np.frombuffer(json.dumps({"format": "other/9"}).encode(), dtype=np.uint8))
    with pytest.raises(ValueError, match="format"):
        kbindex.KbIndex.from_bytes(out.getvalue())
