"""Knowledge-base retrieval: the kb-index's hybrid search beside a BM25-only baseline, in one run.

FAQ retrieval on CLINC150 and BANKING77 (../shared/data, or $JOBPLANE_SHARED_DATA): one article
per intent, its training utterances as a Markdown list under the intent's name; queries are the
test utterances; a query is answered right when the passage ranking's first article is its
intent's (recall@1), within the first five articles (recall@5), and MRR over articles. The
baseline is bm25s alone (the same tokens, stop words and stems as the index's lexical part).
The hybrid's semantic weight is picked on CLINC150's validation split and only reported on the
test splits. Then the search latency of ``KbIndex.search`` (query encoding, cosine over all
passages, BM25, fusion) at 10,000 passages on one CPU core, p50/p99, beside BM25 alone.

Skips with a reason when the data is absent. Run: ``make bench-kb``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core, as the figure promises; before numpy loads

import csv
import io
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from jobplane import kbindex
from jobplane.encoder import Encoder
from jobplane_trainer import kb_index, kbtext

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("JOBPLANE_SHARED_DATA") or ROOT.parent / "shared" / "data")
LATENCY_PASSAGES = 10_000
LATENCY_QUERIES = 300
WEIGHTS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0)

Pairs = list[tuple[str, str]]


def clinc() -> tuple[Pairs, Pairs, Pairs]:
    d = json.loads((DATA / "clinc150" / "data_full.json").read_text())
    return [tuple(p) for p in d["train"]], [tuple(p) for p in d["val"]], [tuple(p) for p in d["test"]]  # type: ignore[misc]


def banking() -> tuple[Pairs, Pairs]:
    def read(name: str) -> Pairs:
        return [(r["text"], r["category"]) for r in csv.DictReader(io.StringIO((DATA / "banking77" / name).read_text()))]

    return read("train.csv"), read("test.csv")


def faq_articles(train: Pairs) -> list[dict[str, str]]:
    """One Markdown article per intent: its name as the title, its utterances as a list."""
    by: dict[str, list[str]] = {}
    for text, intent in train:
        by.setdefault(intent, []).append(text)
    return [{"id": intent, "title": intent.replace("_", " "), "format": "markdown",
             "text": "\n".join(f"- {u}" for u in utts)} for intent, utts in sorted(by.items())]


def build(articles: list[dict[str, str]], encoder: Encoder) -> tuple[kbindex.KbIndex, float]:
    """The index the kb-index job builds from ``articles`` (in memory), and the build seconds."""
    t0 = time.perf_counter()
    passages = kb_index.article_passages(articles)
    embeddings = encoder.encode([kbindex.embedding_text(p) for p in passages])
    index = kbindex.KbIndex.from_bytes(kbindex.to_bytes(passages, embeddings, meta={}))
    return index, time.perf_counter() - t0


def evaluate(index: kbindex.KbIndex, queries: Pairs, q_emb: np.ndarray, weights: Sequence[float]) -> dict[str, dict[str, float]]:
    """recall@1, recall@5, MRR per semantic weight ("bm25" is the lexical scores alone)."""
    article_of = np.array([p["articleId"] for p in index.passages])
    sims = q_emb @ index.embeddings.T
    out: dict[str, list[tuple[int, int]]] = {}
    for qi, (text, intent) in enumerate(queries):
        lex = index.lexical_scores(text)
        top = float(lex.max())
        scaled = lex / top if top > 0 else lex
        for name, score in [("bm25", lex), *((f"hybrid w={w}", w * sims[qi] + (1 - w) * scaled) for w in weights)]:
            ranked = _article_ranking(article_of, score)
            hit = ranked.index(intent) + 1 if intent in ranked else 0
            out.setdefault(name, []).append((hit, len(ranked)))
    return {name: _figures([h for h, _ in hits]) for name, hits in out.items()}


def _article_ranking(article_of: np.ndarray, score: np.ndarray) -> list[str]:
    order = np.argsort(-score, kind="stable")
    seen: dict[str, None] = {}
    for a in article_of[order[:200]]:
        seen.setdefault(str(a), None)
        if len(seen) >= 20:
            break
    return list(seen)


def _figures(hits: list[int]) -> dict[str, float]:
    h = np.array(hits)
    return {"recall@1": float(np.mean(h == 1)), "recall@5": float(np.mean((h >= 1) & (h <= 5))),
            "MRR": float(np.mean(np.where(h > 0, 1.0 / np.maximum(h, 1), 0.0)))}


def _table(title: str, rows: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}\n{'method':<22}{'recall@1':>10}{'recall@5':>10}{'MRR':>8}")
    for name, f in rows.items():
        print(f"{name:<22}{f['recall@1']:>10.3f}{f['recall@5']:>10.3f}{f['MRR']:>8.3f}")


def latency(encoder: Encoder, train: Pairs, queries: Pairs) -> None:
    """p50/p99 of one search at 10,000 passages (one utterance each), on one core: the process is
    pinned to one CPU (where the OS allows) and BLAS runs one thread (set at the top)."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    texts = [t for t, _ in train][:LATENCY_PASSAGES]
    passages = [{"articleId": i, "title": i, "heading": "", "text": t, "articleHash": ""} for t, i in train[:LATENCY_PASSAGES]]
    embeddings = encoder.encode(texts)
    index = kbindex.KbIndex.from_bytes(kbindex.to_bytes(passages, embeddings, meta={}))
    qs = [t for t, _ in queries[:LATENCY_QUERIES]]
    index.search(qs[0], 5, encoder=encoder)  # warm
    hybrid = _timed(lambda q: index.search(q, 5, encoder=encoder), qs)
    lexical = _timed(lambda q: kbindex.rank(np.zeros(len(index), np.float32), index.lexical_scores(q), 5, weight=0.0), qs)
    load = os.getloadavg()[0]
    print(f"\nsearch latency, {len(index):,} passages, one core ({len(qs)} queries; load average {load:.1f} "
          f"on {os.cpu_count()} CPUs: above that, the figures include waiting for a core)")
    for name, ms in (("hybrid (encode+cosine+bm25)", hybrid), ("bm25 only", lexical)):
        print(f"{name:<30} p50 {np.percentile(ms, 50):6.2f} ms   p99 {np.percentile(ms, 99):6.2f} ms   "
              f"min {ms.min():6.2f} ms")


def _timed(fn: object, qs: list[str]) -> np.ndarray:
    out = []
    for q in qs:
        t0 = time.perf_counter()
        fn(q)  # type: ignore[operator]
        out.append((time.perf_counter() - t0) * 1000)
    return np.array(out)


def main() -> int:
    if not (DATA / "clinc150").is_dir() or not (DATA / "banking77").is_dir():
        print(f"skipped: {DATA} (../shared/data) is absent; set JOBPLANE_SHARED_DATA to the data folder", file=sys.stderr)
        return 0
    encoder = Encoder.load()
    c_train, c_val, c_test = clinc()
    b_train, b_test = banking()
    index, secs = build(faq_articles(c_train), encoder)
    print(f"CLINC150: {len({i for _, i in c_train})} articles → {len(index)} passages, built in {secs:.1f} s")
    val = evaluate(index, c_val, encoder.encode([t for t, _ in c_val]), WEIGHTS)
    _table("CLINC150 validation (picks the semantic weight)", val)
    best = max(WEIGHTS, key=lambda w: (val[f"hybrid w={w}"]["MRR"], -abs(w - kbindex.SEMANTIC_WEIGHT)))
    print(f"best weight on validation: {best} (the index's default: {kbindex.SEMANTIC_WEIGHT})")
    chosen = (kbindex.SEMANTIC_WEIGHT,)
    test = evaluate(index, c_test, encoder.encode([t for t, _ in c_test]), chosen)
    _table(f"CLINC150 test ({len(c_test):,} queries): hybrid beside BM25 alone", test)
    b_index, secs = build(faq_articles(b_train), encoder)
    print(f"\nBANKING77: {len({i for _, i in b_train})} articles → {len(b_index)} passages, built in {secs:.1f} s")
    _table(f"BANKING77 test ({len(b_test):,} queries): hybrid beside BM25 alone",
           evaluate(b_index, b_test, encoder.encode([t for t, _ in b_test]), chosen))
    latency(encoder, c_train, c_test)
    return 0


if __name__ == "__main__":
    sys.exit(main())
