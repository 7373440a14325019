"""The ``taggerEncoder: minilm`` option: contextual word vectors from the frozen MiniLM encoder
beside the tagger's hashed features.

The vectors are those of the encoder's 4th of 6 layers (each word the mean of its WordPiece
vectors): on Snips slots they beat the last layer, which all-MiniLM-L6-v2 tuned for sentence
similarity, and cost two layers less. ``jobplane.encoder`` computes them with numpy, the code
``predict`` runs; each sentence is encoded once per run (the split model and the refit share it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from jobplane import encoder

TAGGER_ENCODERS = {"minilm": encoder.NAME}
"""The option's values and the encoders they name."""
DEPTH = 4
"""Transformer layers run: the vectors are the 4th layer's."""


def check_option(name: str) -> None:
    if name and name not in TAGGER_ENCODERS:
        raise ValueError(f"params.taggerEncoder must be one of {sorted(TAGGER_ENCODERS)} or empty, got {name!r}")


class WordVectors:
    """Word vectors by sentence (a tuple of words), computed once each, in batches."""

    def __init__(self, enc: encoder.Encoder, *, option: str, depth: int = DEPTH) -> None:
        self.encoder = enc
        self.option = option
        self.depth = depth
        self.cache: dict[tuple[str, ...], np.ndarray] = {}

    def of(self, sentences: Sequence[Sequence[str]]) -> list[np.ndarray]:
        missing = sorted({tuple(s) for s in sentences if s and tuple(s) not in self.cache})
        if missing:
            self.cache.update(zip(missing, self.encoder.word_vectors_batch(missing, depth=self.depth)))
        return [self.cache[tuple(s)] if s else np.zeros((0, self.encoder.dim), np.float32) for s in sentences]

    def one(self, words: Sequence[str]) -> np.ndarray:
        return self.of([words])[0]

    def meta(self) -> dict[str, Any]:
        """What the model records: the option, the encoder's name and weights' SHA-256, the depth."""
        return {"option": self.option, "name": TAGGER_ENCODERS[self.option], "sha256": self.encoder.sha256, "depth": self.depth}


def load(option: str) -> WordVectors | None:
    """The run's word vectors for ``option`` (the installed encoder); None for no option."""
    check_option(option)
    return WordVectors(encoder.Encoder.load(), option=option) if option else None
