"""A bot's knowledge-base search index: its format, and hybrid search over it (numpy only).

The ``kb-index`` job (``jobplane_trainer.kb_index``) builds it; the api's
``/v1/bots/{botId}:search`` (``jobplane.search``) loads and queries it. One ``.npz`` holds
everything a query needs: the passages (article id, title, text, the article's content hash),
their MiniLM embeddings (unit length, float32) and a BM25 index built by ``bm25s`` (its saved
files, so ``bm25s.BM25.load`` reads them back as it wrote them). Lexical tokens are ``bm25s``'s
(lower-cased words, English stop words dropped, Snowball-stemmed by PyStemmer), the same at
build and at query time.

The hybrid score of a passage is ``SEMANTIC_WEIGHT · cosine + (1 − SEMANTIC_WEIGHT) · bm25 /
max bm25`` (the lexical score scaled to [0, 1] per query, so the two are comparable);
``matchedBy`` says which part ranked the passage among its own top ``k``.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt

FORMAT: Final = "jobplane-kb-index/1"
INDEX_FILE: Final = "kb_index.npz"
MANIFEST_FILE: Final = "kb_index.json"
SEMANTIC_WEIGHT: Final = 0.8
"""Weight of the cosine similarity in the hybrid score (the rest is the scaled BM25 score);
chosen on CLINC150's validation split, not its test split (benchmarks/bench_kb.py)."""
MAX_K: Final = 50
F32 = npt.NDArray[np.float32]


class SentenceEncoder(Protocol):
    """What the index needs of ``jobplane.encoder.Encoder``."""

    dim: int

    def encode(self, texts: Sequence[str]) -> F32: ...


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """BM25 tokens per text: bm25s's word pattern, English stop words, Snowball stems."""
    import bm25s

    out = bm25s.tokenize(list(texts), stopwords="en", stemmer=_stemmer(), return_ids=False, show_progress=False)
    return [list(t) for t in out]


_STEMMER: list[Any] = []


def _stemmer() -> Any:
    if not _STEMMER:
        import Stemmer

        _STEMMER.append(Stemmer.Stemmer("english"))
    return _STEMMER[0]


def lexical_index(texts: Sequence[str]) -> Any:
    """A ``bm25s.BM25`` over ``texts`` (Lucene's BM25, k1 1.5, b 0.75)."""
    import bm25s

    retriever = bm25s.BM25()
    retriever.index(tokenize(texts), show_progress=False)
    return retriever


def embedding_text(passage: Mapping[str, Any]) -> str:
    """What is embedded for a passage: its article's title and section heading give context."""
    head = " — ".join(p for p in (passage.get("title"), passage.get("heading")) if p)
    return f"{head}: {passage['text']}" if head else str(passage["text"])


# --- the file ------------------------------------------------------------------------------


def to_bytes(passages: Sequence[Mapping[str, Any]], embeddings: F32, *, meta: Mapping[str, Any]) -> bytes:
    """The index file: passages, embeddings and the BM25 index built here over the passages."""
    retriever = lexical_index([f"{p.get('title') or ''} {p.get('heading') or ''} {p['text']}" for p in passages])
    arrays: dict[str, np.ndarray] = {
        "embeddings": np.ascontiguousarray(embeddings, dtype=np.float32),
        "passages": _blob(list(passages)),
        "meta": _blob(dict(meta) | {"format": FORMAT}),
    }
    with tempfile.TemporaryDirectory() as tmp:
        retriever.save(tmp)
        for path in sorted(Path(tmp).iterdir()):
            arrays[f"bm25/{path.name}"] = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    out = io.BytesIO()
    np.savez(out, **arrays)  # type: ignore[arg-type]
    return out.getvalue()


def _blob(obj: Any) -> np.ndarray:
    return np.frombuffer(json.dumps(obj, ensure_ascii=False).encode(), dtype=np.uint8)


@dataclass
class Hit:
    index: int
    score: float
    semantic: float
    lexical: float
    matched_by: list[str]


class KbIndex:
    """A loaded index: ``search(query, k)`` with the encoder the index was built with."""

    def __init__(self, passages: list[dict[str, Any]], embeddings: F32, lexical: Any, meta: dict[str, Any]) -> None:
        self.passages = passages
        self.embeddings = embeddings
        self.lexical = lexical
        self.meta = meta

    @classmethod
    def from_bytes(cls, data: bytes) -> KbIndex:
        import bm25s

        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            meta = json.loads(npz["meta"].tobytes())
            if meta.get("format") != FORMAT:
                raise ValueError(f"index format {meta.get('format')!r}, expected {FORMAT!r}")
            passages = json.loads(npz["passages"].tobytes())
            embeddings = np.ascontiguousarray(npz["embeddings"], dtype=np.float32)
            with tempfile.TemporaryDirectory() as tmp:
                for name in npz.files:
                    if name.startswith("bm25/"):
                        (Path(tmp) / name[len("bm25/"):]).write_bytes(npz[name].tobytes())
                lexical = bm25s.BM25.load(tmp, show_progress=False)
        return cls(passages, embeddings, lexical, meta)

    def __len__(self) -> int:
        return len(self.passages)

    def lexical_scores(self, query: str) -> F32:
        """BM25 score of every passage for ``query`` (zeros when no query word is indexed)."""
        vocab = self.lexical.vocab_dict
        ids = [vocab[t] for t in tokenize([query])[0] if t in vocab]
        if not ids:
            return np.zeros(len(self.passages), dtype=np.float32)
        return np.asarray(self.lexical.get_scores(ids), dtype=np.float32)

    def hits(self, query: str, k: int, *, encoder: SentenceEncoder) -> list[Hit]:
        """The ``k`` best passages by hybrid score, best first."""
        semantic = self.embeddings @ encoder.encode([query])[0]
        lexical = self.lexical_scores(query)
        return rank(semantic, lexical, k)

    def search(self, query: str, k: int, *, encoder: SentenceEncoder) -> list[dict[str, Any]]:
        """The API's answer rows: article id, title, passage text, score, matchedBy."""
        return [_row(self.passages[h.index], h) for h in self.hits(query, k, encoder=encoder)]


def rank(semantic: F32, lexical: F32, k: int, *, weight: float = SEMANTIC_WEIGHT) -> list[Hit]:
    """Hybrid ranking of passages from their cosine and BM25 scores (pure)."""
    n = len(semantic)
    k = max(0, min(k, n))
    if k == 0:
        return []
    top = float(lexical.max()) if n else 0.0
    scaled = lexical / top if top > 0 else lexical
    score = weight * semantic + (1.0 - weight) * scaled
    best = _top(score, k)
    sem_top, lex_top = set(_top(semantic, k).tolist()), set(_top(lexical, k).tolist()) if top > 0 else set()
    return [Hit(int(i), float(score[i]), float(semantic[i]), float(lexical[i]),
                [m for m, s in (("semantic", sem_top), ("lexical", lex_top)) if int(i) in s]) for i in best]


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest scores, largest first (ties: lower index first)."""
    part = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    return part[np.lexsort((part, -scores[part]))]


def _row(passage: Mapping[str, Any], hit: Hit) -> dict[str, Any]:
    return {"articleId": passage["articleId"], "title": passage.get("title") or "", "heading": passage.get("heading") or "",
            "text": passage["text"], "score": round(hit.score, 6), "semanticScore": round(hit.semantic, 6),
            "lexicalScore": round(hit.lexical, 6), "matchedBy": hit.matched_by}


def articles_of(passages: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Article id → content hash, for the articles an index holds."""
    return {str(p["articleId"]): str(p["articleHash"]) for p in passages}
