"""What the trainer's stages share: the config, progress and hooks types, the stop signal, the
device and autocast, and the generic stage an epoch loop runs. Its own module so that the
stages (``train``'s intent and tagger stages, ``encoder_head``, ``finetune``) import it, not
each other: ``train`` runs the others, and they no longer import ``train`` back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import nn

from .model import Adam

class Interrupted(Exception):
    """A stop was requested; the checkpoint is written. A retry resumes from it."""


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 13
    val_fraction: float = 0.1
    max_epochs: int = 30
    patience: int = 3
    batch_size: int = 32
    lr_sparse: float = 0.0015
    lr_dense: float = 0.003
    dim: int = 512
    hidden: int = 0
    dropout: float = 0.5
    init_std: float = 0.01
    min_df: int = 1
    """Intent features seen in fewer training utterances are dropped."""
    weight_decay: float = 0.0
    rowwise: bool = False
    """Decoupled weight decay on the intent embedding rows a batch touches."""
    label_smoothing: float = 0.0
    delexicalise: bool = True
    """Train the intent model also on a copy of each sentence with entities whose values are
    replaced by a placeholder for their type (``delex``): Snips held-out 98.49 → 98.53 (9 runs),
    test 98.50 → 98.64 (4 seeds); no effect on a bot without entities."""
    eval_steps: int = 100
    """Validate the intent model every this many steps when an epoch has more (0: every epoch):
    on a large data set the best model comes within one or two epochs, and whole epochs are too
    coarse a grid to stop on (CLINC150's official validation split: 92.53 → 93.00)."""
    eval_patience: int = 6
    """Early-stopping patience, in validations, when they come every ``eval_steps``."""
    min_steps: int = 150
    """Early stopping waits for this many optimizer steps (small bots have few per epoch)."""
    tagger_epochs: int = 25
    tagger_patience: int = 4
    tagger_min_steps: int = 300
    tagger_lr_sparse: float = 0.02
    tagger_feature_dropout: float = 0.1
    tagger_crf: bool = True
    """A CRF layer (learned transitions, forward-algorithm loss) instead of per-token softmax."""
    tagger_apart: bool = True
    """Spans of a type never touch unless two touch in a training sentence (``model.CRF``)."""
    tagger_gazetteer: bool = True
    """Gazetteer features from the training entity values."""
    gazetteer_held_out: bool = True
    """A training sentence sees the gazetteer without its own values."""
    tagger_augment: int = 0
    """Tagger training sentences per intent, made up to by swapping entity values (0: none)."""
    tagger_encoder: str = ""
    """Contextual word vectors from a frozen pretrained encoder as tagger features ("minilm"; "": none)."""
    tagger_encoder_mode: str = "concat"
    """How they enter: "concat" (beside the token embedding, into the BiLSTM) or "add" (projected into it)."""
    tagger_prototypes: int = 100
    """With ``tagger_encoder``: per word, its similarity to the nearest training words of each
    tag beside its vector (``model.Prototypes``), from up to this many words per tag (0: off)."""
    refit: bool = True
    """After early stopping picks the epochs, train again on all examples (validation included)."""
    refit_max_examples: int = 5000
    """Refit only up to this many examples: it matters for small bots (10 % more data; +0.8
    points few-shot) and little for large sets (+0.07 on CLINC150), where it costs ~40 % more time."""
    tagger_entity_bias: float = 2.0
    """Added to each entity tag's score per token when decoding (above 0: more candidate spans)..."""
    tagger_min_confidence: float = 0.45
    """... of which those less probable than this under the CRF (with the bias) are not answered.
    Together (chosen on Snips training utterances held out of the draws, 10–50 per intent) they
    raised precision and recall at once, by about 1 point each, over plain Viterbi."""
    tagger_decode_max_examples: int = 5000
    """The bias and the threshold apply to bots with up to this many examples; larger ones decode
    by plain Viterbi (on all 13,784 Snips sentences the rule cost 0.37 points of entity F1)."""
    tagger_dropout: float = 0.25
    tagger_dim: int = 128
    tagger_hidden: int = 96
    fallback_quantile: float = 0.05
    encoder: str = ""
    """``minilm``: frozen MiniLM sentence embeddings → a softmax head, mixed with the n-gram model
    (``encoder_head``); empty: the n-gram model alone."""
    encoder_weight: float = -1.0
    """The encoder head's weight in the mixture of probabilities; negative: chosen on the validation split."""
    encoder_lr: float = 0.01
    encoder_dropout: float = 0.3
    encoder_epochs: int = 100
    encoder_patience: int = 20
    """The head is cheap (seconds on CLINC150) and its validation loss noisy on small bots: a
    patience of 5 stopped BANKING77 10-shot at epoch 7 (82.50 % head alone; 20: 85.03 %)."""
    finetune: bool = False
    """With ``encoder``: fine-tune the encoder with the head (``finetune``), its weights exported
    in float16 into the model. No refit (a second fine-tune would double the cost)."""
    finetune_epochs: int = 3
    finetune_lr: float = 5e-5
    finetune_head_lr: float = 1e-3
    finetune_batch_size: int = 32
    finetune_warmup: float = 0.1
    threads: int = 0
    """CPU threads; 0: two (the spec's default CPU request), or one when the load average says
    the cores are taken: extra threads on busy cores thrash (10x slower, measured)."""

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> TrainConfig:
        """Known hyper-parameter names from a spec's params (camelCase or snake_case)."""
        known = {f.name: f.type for f in fields(cls)}
        picked: dict[str, Any] = {}
        for name in known:
            camel = name.split("_")[0] + "".join(p.title() for p in name.split("_")[1:])
            for key in (name, camel):
                if key in params:
                    picked[name] = _coerce(getattr(cls(), name), params[key])
        return cls(**picked)


def _coerce(default: Any, value: Any) -> Any:
    if isinstance(default, bool) and isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return type(default)(value)


@dataclass(frozen=True)
class Progress:
    phase: str
    percent: float
    message: str
    eta: float | None = None
    metrics: dict[str, float] | None = None


class Hooks:
    """What the caller gives the trainer: progress reports, a stop flag, a checkpoint store."""

    def __init__(
        self,
        *,
        progress: Callable[[Progress], None] = lambda p: None,
        should_stop: Callable[[], bool] = lambda: False,
        save_checkpoint: Callable[[bytes], object] = lambda b: None,
        load_checkpoint: Callable[[], bytes | None] = lambda: None,
    ) -> None:
        self.progress = progress
        self.should_stop = should_stop
        self.save_checkpoint = save_checkpoint
        self.load_checkpoint = load_checkpoint


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(dev: torch.device) -> Any:
    """bf16 autocast on a GPU; nothing on CPU."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else torch.autocast("cpu", enabled=False)


@dataclass
class Stage:
    """One model to fit: its batches, a step, a validation score (higher is better)."""

    name: str
    net: nn.Module
    optimizers: list[Adam]
    batches: Callable[[int], list[Any]]
    step: Callable[[Any], torch.Tensor]
    score: Callable[[], float | None]
    """Validation score; None without validation data (no early stopping: every epoch runs)."""
    max_epochs: int
    patience: int
    span: tuple[float, float]
    min_epochs: int = 0


def shuffled(n: int, *, seed: int, epoch: int, size: int) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed * 1000 + epoch)
    order = torch.randperm(n, generator=g).tolist()
    return [order[i : i + size] for i in range(0, n, size)]
