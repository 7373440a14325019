"""Training: a stratified validation split, the intent and entity stages with early stopping,
progress with phase/percent/ETA, checkpoints that a stop request writes and a retry resumes
from, and evaluation through the exported numpy model (the figures are what ``predict`` serves).
"""

from __future__ import annotations

import io
import os
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from jobplane import inference

from . import __version__, delex, encoder_head, finetune, metrics, word_vectors
from .stages import Hooks, Interrupted, Progress, Stage, TrainConfig, autocast, device
from .stages import shuffled as _shuffled
from .data import Example, data_hash
from .metrics import evaluate
from .model import Adam, augment, IntentFeatures, IntentNet, TagFeatures, TaggerNet, TagItem, collate_bags, collate_tokens

torch.set_flush_denormal(True)


@dataclass
class TrainResult:
    model: bytes
    metrics: dict[str, Any]
    confusion: dict[str, Any]
    summary: dict[str, float]
    meta: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    validation: list[Example] = field(default_factory=list)
    """The held-out examples; saved with the model so a bot test can run on them later."""


def split(examples: Sequence[Example], *, fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Stratified train/validation split; intents with fewer than 3 examples stay in train."""
    by_intent: dict[str, list[Example]] = defaultdict(list)
    for ex in examples:
        by_intent[ex.intent].append(ex)
    rng = random.Random(seed)
    train, val = [], []
    for intent in sorted(by_intent):
        items = list(by_intent[intent])
        rng.shuffle(items)
        n_val = max(1, round(len(items) * fraction)) if len(items) >= 3 and fraction > 0 else 0
        val += items[:n_val]
        train += items[n_val:]
    return train, val


# --- the generic epoch loop ---------------------------------------------------------------


class Runner:
    """Runs stages with early stopping, progress, checkpoints and resume."""

    def __init__(self, hooks: Hooks, *, fingerprint: str) -> None:
        self.hooks = hooks
        self.fingerprint = fingerprint
        self.started = time.monotonic()
        self.resume = self._load()
        self.done: dict[str, dict[str, Any]] = dict(self.resume.get("done", {})) if self.resume else {}

    def _load(self) -> dict[str, Any] | None:
        raw = self.hooks.load_checkpoint()
        if not raw:
            return None
        state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=False)
        return state if state.get("fingerprint") == self.fingerprint else None

    def fit(self, st: Stage) -> int:
        """Train ``st`` with early stopping; the number of epochs of its best state."""
        if st.name in self.done:
            st.net.load_state_dict(self.done[st.name]["state"])
            return int(self.done[st.name]["epochs"])
        pos = self._restore(st)
        epoch, best, best_state, bad = pos["epoch"], pos["best"], pos["best_state"], pos["bad"]
        best_epoch = pos.get("best_epoch", epoch)
        while epoch < st.max_epochs and (bad < st.patience or epoch < st.min_epochs):
            self._epoch(st, epoch, skip=pos["batch"] if epoch == pos["epoch"] else 0, best=(best, best_state, bad, best_epoch))
            epoch += 1
            score = st.score()
            if score is None:
                self._report(st, epoch / st.max_epochs, f"epoch {epoch}/{st.max_epochs}")
                continue
            if score > best:
                best, bad, best_epoch = score, 0, epoch
                best_state = {k: v.detach().clone() for k, v in st.net.state_dict().items()}
            else:
                bad += 1
            self._report(st, epoch / st.max_epochs, f"epoch {epoch}: validation {score:.4f}", {"validation": round(score, 4)})
        if best_state is not None:
            st.net.load_state_dict(best_state)
        else:
            best_epoch = epoch
        self.done[st.name] = {"state": {k: v.detach().clone() for k, v in st.net.state_dict().items()}, "epochs": best_epoch}
        return int(best_epoch)

    def _epoch(self, st: Stage, epoch: int, *, skip: int, best: tuple[float, Any, int, int]) -> None:
        st.net.train()
        batches = st.batches(epoch)
        for i, batch in enumerate(batches):
            if i < skip:
                continue
            if self.hooks.should_stop():
                self._checkpoint(st, epoch=epoch, batch=i, best=best)
                raise Interrupted(f"stopped in {st.name} epoch {epoch + 1} batch {i}")
            for opt in st.optimizers:
                opt.zero_grad()
            st.step(batch).backward()
            for opt in st.optimizers:
                opt.step()
            frac = (epoch + (i + 1) / len(batches)) / st.max_epochs
            self._report(st, frac, f"epoch {epoch + 1}/{st.max_epochs}")
        st.net.eval()

    def _restore(self, st: Stage) -> dict[str, Any]:
        r = self.resume
        if not r or r.get("stage") != st.name:
            return {"epoch": 0, "batch": 0, "best": -1.0, "best_state": None, "bad": 0, "best_epoch": 0}
        self.hooks.progress(Progress(st.name, st.span[0], f"resumed from checkpoint at epoch {r['epoch'] + 1} batch {r['batch']}"))
        st.net.load_state_dict(r["net"])
        for opt, s in zip(st.optimizers, r["opts"]):
            opt.load_state_dict(s)
        torch.set_rng_state(r["rng"])
        return {k: r[k] for k in ("epoch", "batch", "best", "best_state", "bad", "best_epoch")}

    def _checkpoint(self, st: Stage, *, epoch: int, batch: int, best: tuple[float, Any, int, int]) -> None:
        state = {
            "fingerprint": self.fingerprint, "stage": st.name, "epoch": epoch, "batch": batch,
            "net": st.net.state_dict(), "opts": [o.state_dict() for o in st.optimizers],
            "best": best[0], "best_state": best[1], "bad": best[2], "best_epoch": best[3], "done": self.done,
            "rng": torch.get_rng_state(),
        }
        buf = io.BytesIO()
        torch.save(state, buf)
        self.hooks.save_checkpoint(buf.getvalue())

    def _report(self, st: Stage, frac: float, message: str, extra: dict[str, float] | None = None) -> None:
        lo, hi = st.span
        percent = lo + (hi - lo) * min(1.0, frac)
        elapsed = time.monotonic() - self.started
        eta = elapsed * (100 - percent) / percent if percent > 1 else None
        self.hooks.progress(Progress(st.name, round(percent, 1), message, eta, extra))


# --- the two stages ------------------------------------------------------------------------


def intent_stage(train: Sequence[Example], val: Sequence[Example], *, labels: list[str], cfg: TrainConfig, dev: torch.device,
                 epochs: int | None = None, name: str = "intent", span: tuple[float, float] = (5.0, 60.0)) -> tuple[Stage, IntentFeatures]:
    if cfg.delexicalise:
        train = delex.with_delexicalised(train)
    feats = IntentFeatures.fit([e.text for e in train], min_df=cfg.min_df)
    index = {label: i for i, label in enumerate(labels)}
    bags = feats.bags([e.text for e in train])
    y = torch.tensor([index[e.intent] for e in train], device=dev)
    val_bags = feats.bags([e.text for e in val])
    val_y = torch.tensor([index[e.intent] for e in val], device=dev)
    net = IntentNet(len(feats.vocab), len(labels), dim=cfg.dim, hidden=cfg.hidden, dropout=cfg.dropout, init_std=cfg.init_std).to(dev)
    dense = [p for n, p in net.named_parameters() if not n.startswith("emb.")]
    opts = [Adam([net.emb.weight], lr=cfg.lr_sparse, weight_decay=cfg.weight_decay, rowwise=cfg.rowwise), Adam(dense, lr=cfg.lr_dense)]
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)

    def step(batch: list[int]) -> torch.Tensor:
        with autocast(dev):
            logits = net(*collate_bags([bags[i] for i in batch], dev))
        return loss_fn(logits.float(), y[batch])

    def score() -> float | None:
        if not val:
            return None
        with torch.no_grad(), autocast(dev):
            pred = net(*collate_bags(val_bags, dev)).float().argmax(1)
        return float((pred == val_y).float().mean())

    per_epoch = max(1, -(-len(train) // cfg.batch_size))
    chunk = min(per_epoch, cfg.eval_steps) if cfg.eval_steps > 0 else per_epoch
    min_chunks = -(-cfg.min_steps // chunk)
    patience = cfg.patience if chunk == per_epoch else cfg.eval_patience
    max_chunks = -(-cfg.max_epochs * per_epoch // chunk)
    stage = Stage(name, net, opts, lambda ep: _chunk(len(train), seed=cfg.seed, index=ep, chunk=chunk, size=cfg.batch_size),
                  step, score, epochs or max(max_chunks, min_chunks + patience), patience, span, min_chunks)
    return stage, feats


def _chunk(n: int, *, seed: int, index: int, chunk: int, size: int) -> list[list[int]]:
    """The ``index``-th run of ``chunk`` batches of the stream of shuffled epochs (one epoch
    when ``chunk`` is an epoch's batch count): the unit that validation and early stopping count."""
    per_epoch = -(-n // size)
    out: list[list[int]] = []
    while len(out) < chunk:
        epoch, i = divmod(index * chunk + len(out), per_epoch)
        out += _shuffled(n, seed=seed, epoch=epoch, size=size)[i : i + chunk - len(out)]
    return out


def tagger_stage(train: Sequence[Example], val: Sequence[Example], *, cfg: TrainConfig, dev: torch.device,
                 epochs: int | None = None, name: str = "entities", span: tuple[float, float] = (60.0, 92.0),
                 wv: word_vectors.WordVectors | None = None) -> tuple[Stage, TagFeatures]:
    train = [e for e in train if inference.tokenize(e.text)]
    if wv is not None:  # encode every sentence in batches up front
        wv.of([[t.text for t in inference.tokenize(e.text)] for e in [*train, *val]])
    feats = TagFeatures.fit(train, gazetteer=cfg.tagger_gazetteer, held_out=cfg.gazetteer_held_out,
                            vectors=wv.one if wv else None, vectors_meta=wv.meta() if wv else None,
                            prototypes=cfg.tagger_prototypes, seed=cfg.seed)
    if cfg.tagger_augment:
        train = augment(train, per_intent=cfg.tagger_augment, seed=cfg.seed)
    items = [feats.encode(e) for e in train]
    val_items = [feats.encode(e, training=False) for e in val if inference.tokenize(e.text)]
    net = TaggerNet(len(feats.vocab), len(feats.tags), dim=cfg.tagger_dim, hidden=cfg.tagger_hidden, dropout=cfg.tagger_dropout,
                    feature_dropout=cfg.tagger_feature_dropout, crf_tags=feats.tags if cfg.tagger_crf else None,
                    enc_dim=_vector_dim(items), enc_mode=cfg.tagger_encoder_mode,
                    touching=feats.touching if cfg.tagger_apart else None).to(dev)
    dense = [p for n, p in net.named_parameters() if not n.startswith("emb.")]
    opts = [Adam([net.emb.weight], lr=cfg.tagger_lr_sparse), Adam(dense, lr=cfg.lr_dense)]

    def step(batch: list[int]) -> torch.Tensor:
        ids, offsets, targets, lengths, vectors = collate_tokens([items[i] for i in batch], dev)
        with autocast(dev):
            logits = net(ids, offsets, lengths.tolist(), vectors)
        return net.loss(logits.float(), targets)

    def score() -> float | None:
        if not val_items or opts[1].t < min_epochs * n_batches:  # a state before the minimum steps is never kept
            return None
        ids, offsets, targets, lengths, vectors = collate_tokens(val_items, dev)
        with torch.no_grad(), autocast(dev):
            pred = net(ids, offsets, lengths.tolist(), vectors).float().argmax(-1)
        mask = targets != -100
        hit = ((pred == targets) & mask & (targets != 0)).sum() + ((pred == targets) & mask & (targets == 0)).sum() * 0.1
        return float(hit / (mask & (targets != 0)).sum().clamp(min=1))

    n_batches = max(1, -(-len(items) // cfg.batch_size))
    min_epochs = -(-cfg.tagger_min_steps // n_batches)
    stage = Stage(name, net, opts, lambda ep: _shuffled(len(items), seed=cfg.seed + 1, epoch=ep, size=cfg.batch_size),
                  step, score, epochs or max(cfg.tagger_epochs, min_epochs + cfg.tagger_patience), cfg.tagger_patience, span, min_epochs)
    return stage, feats


def _vector_dim(items: Sequence[TagItem]) -> int:
    return int(items[0].vectors.shape[1]) if items and items[0].vectors is not None else 0


# --- the whole run -------------------------------------------------------------------------


def train(examples: Sequence[Example], *, cfg: TrainConfig = TrainConfig(), hooks: Hooks | None = None,
          test: Sequence[Example] | None = None) -> TrainResult:
    """Train both models on ``examples``; evaluate on ``test`` if given, else on the split.

    With ``cfg.refit`` the served model is trained again on every example for the epochs that
    early stopping chose; without ``test`` the figures are those of the split model."""
    hooks = hooks or Hooks()
    t0 = time.monotonic()
    dev = _seed(cfg)
    wv = word_vectors.load(cfg.tagger_encoder)
    runner = Runner(hooks, fingerprint=f"{data_hash(examples)}:{sorted(asdict(cfg).items())}")
    hooks.progress(Progress("prepare", 1.0, f"{len(examples)} examples, device {dev.type}"))
    train_set, val = split(examples, fraction=cfg.val_fraction, seed=cfg.seed)
    labels = sorted({e.intent for e in examples})
    refit = cfg.refit and bool(val) and len(examples) <= cfg.refit_max_examples and not cfg.finetune
    spans = [(5.0, 50.0), (50.0, 60.0), (60.0, 80.0), (80.0, 92.0)] if refit else [(5.0, 60.0), (60.0, 92.0)]
    emb = encoder_head.embeddings(cfg, hooks) if cfg.encoder else None
    arrays, tagger_meta, epochs = _fit(runner, train_set, val, labels=labels, cfg=cfg, dev=dev, spans=spans[:2], emb=emb, wv=wv)
    meta: dict[str, Any] = {"format": inference.FORMAT, "labels": labels, **tagger_meta, "trainerVersion": __version__,
            "config": asdict(cfg), "epochs": epochs, **_decoding(cfg, len(examples))}
    if emb is not None:
        meta["encoder"] = encoder_head.encoder_meta(arrays, meta, val, cfg=cfg, emb=emb)
    model = _with_vectors(encoder_head.served_model(arrays, meta, emb), wv)
    meta["threshold"] = calibrate(model, val, quantile=cfg.fallback_quantile)
    hooks.progress(Progress("evaluate", spans[1][1], f"evaluating on {'test' if test else 'validation'} set"))
    evaluation = None if test else evaluate(model, val, labels=labels)
    if refit:
        arrays, tagger_meta, _ = _fit(runner, examples, [], labels=labels, cfg=cfg, dev=dev, spans=spans[2:], epochs=epochs,
                                      suffix="-refit", emb=emb, wv=wv)
        meta |= tagger_meta
    model = _with_vectors(encoder_head.served_model(arrays, meta, emb, texts=[e.text for e in test or ()]), wv)
    t_train = time.monotonic() - t0
    report, ents, conf = evaluate(model, test, labels=labels) if test else evaluation  # type: ignore[misc]
    summary = metrics.summary(report, ents)
    full = {**summary, "evaluatedOn": "test" if test else "validation", "intents": report, "entities": ents,
            "threshold": meta["threshold"], "trainSize": len(train_set), "validationSize": len(val), "refit": refit}
    timings = {"trainSeconds": round(t_train, 2), "totalSeconds": round(time.monotonic() - t0, 2)}
    return TrainResult(inference.save_model(arrays, meta), full, conf, summary, meta, timings, list(val))


def _decoding(cfg: TrainConfig, n_examples: int) -> dict[str, float]:
    """The tagger's decoding rule stored in the model (``inference.Model.entities``)."""
    small = n_examples <= cfg.tagger_decode_max_examples
    return {"spanThreshold": cfg.tagger_min_confidence if small else 0.0, "entityBias": cfg.tagger_entity_bias if small else 0.0}


def _seed(cfg: TrainConfig) -> torch.device:
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    dev = device()
    if dev.type == "cpu":
        torch.set_num_threads(cfg.threads or auto_threads())
    return dev


def auto_threads(limit: int = 2) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    cores = max(1, min(limit, cores))
    return 1 if os.getloadavg()[0] >= cores else cores


def _fit(runner: Runner, train_set: Sequence[Example], val: Sequence[Example], *, labels: list[str], cfg: TrainConfig,
         dev: torch.device, spans: Sequence[tuple[float, float]], epochs: dict[str, int] | None = None,
         suffix: str = "", emb: encoder_head.Embeddings | None = None,
         wv: word_vectors.WordVectors | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any], dict[str, int]]:
    """Fit the intent model (the encoder head with ``emb``; the tagger if any example has
    entities); export them."""
    torch.manual_seed(cfg.seed)
    epochs = epochs or {}
    stage, ifeats = intent_stage(train_set, val, labels=labels, cfg=cfg, dev=dev, epochs=epochs.get("intent"),
                                 name="intent" + suffix, span=spans[0])
    chosen = {"intent": runner.fit(stage)}
    arrays = stage.net.export(ifeats)  # type: ignore[operator]
    if emb is not None:
        hstage = encoder_head.head_stage(train_set, val, labels=labels, cfg=cfg, dev=dev, emb=emb, epochs=epochs.get("encoder"),
                                         name="encoder" + suffix, span=(spans[0][1], spans[0][1]))
        chosen["encoder"] = runner.fit(hstage)
        arrays |= hstage.net.export()  # type: ignore[operator]
        if cfg.finetune:
            fstage = finetune.finetune_stage(train_set, val, labels=labels, cfg=cfg, dev=dev, enc=emb.encoder, head=arrays,
                                             epochs=epochs.get("finetune"), name="finetune" + suffix, span=spans[0])
            chosen["finetune"] = runner.fit(fstage)
            arrays |= fstage.net.export()  # type: ignore[operator]
    tagger_meta: dict[str, Any] = {"tags": []}
    if any(e.entities for e in train_set):
        tstage, tfeats = tagger_stage(train_set, val, cfg=cfg, dev=dev, epochs=epochs.get("entities"),
                                      name="entities" + suffix, span=spans[1], wv=wv)
        chosen["entities"] = runner.fit(tstage)
        arrays |= tstage.net.export(tfeats)  # type: ignore[operator]
        arrays["tag_intent_mask"] = tfeats.intent_mask(labels)
        tagger_meta = tfeats.meta()
    return arrays, tagger_meta, chosen


def _with_vectors(model: inference.Model, wv: word_vectors.WordVectors | None) -> inference.Model:
    """``model`` reading the tagger's word vectors from the run's cache."""
    if wv is not None:
        model.word_vectors = wv.one
    return model


def calibrate(model: inference.Model, val: Sequence[Example], *, quantile: float) -> float:
    """The out-of-scope threshold: a low quantile of the confidence of correct validation answers."""
    conf = []
    for ex in val:
        probs = model.intent_probs(ex.text)
        if model.labels[int(probs.argmax())] == ex.intent:
            conf.append(float(probs.max()))
    return round(float(np.quantile(conf, quantile)), 6) if conf else 0.0
