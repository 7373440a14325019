"""The ``encoder: minilm`` option: frozen MiniLM sentence embeddings → a trained softmax head,
whose probabilities are mixed with the n-gram model's by a weight chosen on the validation split.

The embeddings come from ``jobplane.encoder`` (numpy), the code ``predict`` runs, so training
and serving see the same vectors. Each text is encoded once per run: the split model, the
refit and the evaluation share the vectors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from jobplane import encoder, inference

from .data import Example
from .stages import Hooks, Interrupted, Progress, Stage, TrainConfig, autocast, shuffled
from .model import Adam


ENCODERS = {"minilm": encoder.NAME}
"""The option's values and the encoders they name."""
WEIGHTS = tuple(round(0.1 * i, 1) for i in range(11))
"""Candidate encoder weights in the mixture (0: the n-gram model alone, 1: the head alone)."""
ENCODE_CHUNK = 512


def check_option(name: str) -> None:
    if name and name not in ENCODERS:
        raise ValueError(f"params.encoder must be one of {sorted(ENCODERS)} or empty, got {name!r}")


class Embeddings:
    """Sentence embeddings by text, computed once per text in length-sorted batches."""

    def __init__(self, enc: encoder.Encoder, *, progress: Callable[[Progress], None] | None = None,
                 should_stop: Callable[[], bool] = lambda: False) -> None:
        self.encoder = enc
        self.progress = progress
        self.should_stop = should_stop
        self.vectors: dict[str, np.ndarray] = {}
        self._served: tuple[int, Embeddings] | None = None

    def served(self, arrays: dict[str, np.ndarray]) -> Embeddings:
        """The embeddings a model's arrays serve: these, or (fine-tuned) those of its own encoder."""
        ft = [v for k, v in arrays.items() if k.startswith(encoder.FINETUNED_PREFIX)]
        if not ft:
            return self
        if self._served is None or self._served[0] != id(ft[0]):
            prefix = len(encoder.FINETUNED_PREFIX)
            tuned = self.encoder.with_weights({k[prefix:]: v for k, v in arrays.items() if k.startswith(encoder.FINETUNED_PREFIX)})
            self._served = (id(ft[0]), Embeddings(tuned, progress=self.progress, should_stop=self.should_stop))
        return self._served[1]

    def of(self, texts: Sequence[str]) -> np.ndarray:
        """n×384 float32 embeddings of ``texts``."""
        missing = sorted({t for t in texts if t not in self.vectors})
        for i in range(0, len(missing), ENCODE_CHUNK):
            chunk = missing[i : i + ENCODE_CHUNK]
            if self.should_stop():

                raise Interrupted(f"stopped while encoding ({i}/{len(missing)} texts)")
            self.vectors.update(zip(chunk, self.encoder.encode(chunk)))
            self._report(i + len(chunk), len(missing))
        if not texts:
            return np.zeros((0, self.encoder.dim), np.float32)
        return np.stack([self.vectors[t] for t in texts])

    def one(self, text: str) -> np.ndarray:
        return self.of([text])[0]

    def _report(self, done: int, total: int) -> None:
        if self.progress is not None:

            self.progress(Progress("encode", 5.0, f"{encoder.NAME}: encoded {done}/{total} texts"))


class HeadNet(nn.Module):
    """A softmax head on frozen sentence embeddings (dropout → linear)."""

    def __init__(self, dim: int, n_labels: int, *, dropout: float) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(dim, n_labels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(x))

    def export(self) -> dict[str, np.ndarray]:
        return {"encoder_head_w": self.out.weight.detach().float().cpu().numpy(),
                "encoder_head_b": self.out.bias.detach().float().cpu().numpy()}


def head_stage(train: Sequence[Example], val: Sequence[Example], *, labels: list[str], cfg: TrainConfig, dev: torch.device,
               emb: Embeddings, epochs: int | None, name: str, span: tuple[float, float]) -> Stage:
    """The head's stage: cross-entropy on the embeddings, early stopping on the validation loss."""

    index = {label: i for i, label in enumerate(labels)}
    x = torch.from_numpy(emb.of([e.text for e in train])).to(dev)
    y = torch.tensor([index[e.intent] for e in train], device=dev)
    val_x = torch.from_numpy(emb.of([e.text for e in val])).to(dev)
    val_y = torch.tensor([index[e.intent] for e in val], device=dev)
    net = HeadNet(x.shape[1], len(labels), dropout=cfg.encoder_dropout).to(dev)
    opts = [Adam(list(net.parameters()), lr=cfg.encoder_lr)]
    loss_fn = nn.CrossEntropyLoss()

    def step(batch: list[int]) -> torch.Tensor:
        with autocast(dev):
            logits = net(x[batch])
        return loss_fn(logits.float(), y[batch])

    def score() -> float | None:
        """Minus the validation loss: smoother than accuracy, and the mixture wants calibrated probabilities."""
        if not len(val):
            return None
        with torch.no_grad():
            return -float(loss_fn(net(val_x).float(), val_y))

    min_epochs = -(-cfg.min_steps // max(1, -(-len(train) // cfg.batch_size)))
    return Stage(name, net, opts, lambda ep: shuffled(len(train), seed=cfg.seed + 2, epoch=ep, size=cfg.batch_size),
                 step, score, epochs or max(cfg.encoder_epochs, min_epochs + cfg.encoder_patience), cfg.encoder_patience, span, min_epochs)


def head_probs(arrays: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    logits = x @ arrays["encoder_head_w"].T + arrays["encoder_head_b"]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float32)


def choose_weight(ngram: np.ndarray, head: np.ndarray, y: np.ndarray) -> float:
    """The encoder's weight in the mixture with the best validation accuracy (ties: the lower
    log-loss); 0.5, the plain mean, without validation data."""
    if not len(y):
        return 0.5

    def key(w: float) -> tuple[float, float]:
        mix = (1 - w) * ngram + w * head
        return (float((mix.argmax(1) == y).mean()), float(np.log(mix[np.arange(len(y)), y] + 1e-9).mean()))

    return max(WEIGHTS, key=key)


def encoder_meta(arrays: dict[str, np.ndarray], meta: dict[str, Any], val: Sequence[Example], *, cfg: TrainConfig,
                 emb: Embeddings) -> dict[str, Any]:
    """What the model records about its encoder: name, weights' SHA-256, the mixing weight."""
    emb = emb.served(arrays)
    weight = cfg.encoder_weight
    if weight < 0:
        ngram_only = inference.Model(arrays, {k: v for k, v in meta.items() if k != "encoder"})
        ngram = np.stack([ngram_only.intent_probs(e.text) for e in val]) if val else np.zeros((0, len(meta["labels"])))
        head = head_probs(arrays, emb.of([e.text for e in val]))
        y = np.array([meta["labels"].index(e.intent) for e in val], dtype=np.int64)
        weight = choose_weight(ngram, head, y)
    out = {"option": cfg.encoder, "name": ENCODERS[cfg.encoder], "sha256": emb.encoder.sha256, "weight": weight}
    return out | ({"finetuned": True} if cfg.finetune else {})


def embeddings(cfg: TrainConfig, hooks: Hooks) -> Embeddings:
    """The run's embedding cache over the encoder ``cfg.encoder`` names (the installed package)."""
    check_option(cfg.encoder)
    return Embeddings(encoder.Encoder.load(), progress=hooks.progress, should_stop=hooks.should_stop)


def served_model(arrays: dict[str, np.ndarray], meta: dict[str, Any], emb: Embeddings | None, *,
                 texts: Sequence[str] = ()) -> inference.Model:
    """The numpy model ``predict`` serves, reading embeddings from the run's cache (``texts`` are
    encoded in batches up front: the evaluation's)."""
    model = inference.Model(arrays, meta)
    if emb is not None:
        emb = emb.served(arrays)
        emb.of(texts)
        model.embed = emb.one
    return model
