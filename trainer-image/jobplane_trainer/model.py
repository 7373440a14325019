"""The torch side of the models: the intent classifier and the entity tagger, their batches,
and their export to the numpy arrays that ``jobplane.inference`` runs.

Both models read hashed features (``jobplane.inference``) through an embedding bag, so the
vocabulary is the set of feature hashes seen in training (sorted; looked up by binary search).
Sparse embedding gradients with SparseAdam keep a step cheap however large the vocabulary.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from jobplane import inference

from .data import Entity, Example

torch.set_flush_denormal(True)  # sparse Adam on denormal floats runs ~40x slower on CPU
O_TAG = "O"


# --- intent features ------------------------------------------------------------------------


@dataclass
class IntentFeatures:
    vocab: np.ndarray  # sorted int64 feature hashes
    idf: np.ndarray  # float32, aligned with vocab

    @classmethod
    def fit(cls, texts: Sequence[str], *, min_df: int = 1) -> IntentFeatures:
        df: Counter[int] = Counter()
        for text in texts:
            df.update(inference.intent_feature_counts(text).keys())
        keep = sorted(h for h, n in df.items() if n >= min_df)
        n_docs = len(texts)
        idf = [math.log((1 + n_docs) / (1 + df[h])) + 1.0 for h in keep]
        return cls(np.asarray(keep, dtype=np.int64), np.asarray(idf, dtype=np.float32))

    def bags(self, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        return [inference.intent_bag(self.vocab, self.idf, t) for t in texts]


def collate_bags(bags: Sequence[tuple[np.ndarray, np.ndarray]], device: torch.device) -> tuple[torch.Tensor, ...]:
    """(ids, offsets, weights) for ``nn.EmbeddingBag``."""
    lengths = [len(ids) for ids, _ in bags]
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    ids = np.concatenate([b[0] for b in bags]) if sum(lengths) else np.zeros(0, np.int64)
    w = np.concatenate([b[1] for b in bags]) if sum(lengths) else np.zeros(0, np.float32)
    return (torch.from_numpy(ids).to(device), torch.from_numpy(offsets).to(device), torch.from_numpy(w).to(device))


class IntentNet(nn.Module):
    """Embedding bag over TF-IDF-weighted hashed n-grams → (tanh hidden) → linear → logits."""

    def __init__(self, vocab_size: int, n_labels: int, *, dim: int = 256, hidden: int = 0, dropout: float = 0.2,
                 init_std: float = 0.1) -> None:
        super().__init__()
        self.emb = nn.EmbeddingBag(max(vocab_size, 1), dim, mode="sum", sparse=True)
        nn.init.normal_(self.emb.weight, std=init_std)
        self.emb_bias = nn.Parameter(torch.zeros(dim))
        self.hidden = nn.Linear(dim, hidden) if hidden else None
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden or dim, n_labels)

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        h = self.emb(ids, offsets, per_sample_weights=weights) + self.emb_bias
        if self.hidden is not None:
            h = torch.tanh(self.hidden(self.drop(h)))
        return self.out(self.drop(h))

    def export(self, feats: IntentFeatures) -> dict[str, np.ndarray]:
        arrays = {
            "intent_vocab": feats.vocab,
            "intent_idf": feats.idf,
            "intent_emb": _compact(_np(self.emb.weight)),
            "intent_emb_bias": _np(self.emb_bias),
            "intent_out_w": _np(self.out.weight),
            "intent_out_b": _np(self.out.bias),
        }
        if self.hidden is not None:
            arrays |= {"intent_hidden_w": _np(self.hidden.weight), "intent_hidden_b": _np(self.hidden.bias)}
        return arrays


# --- entity tagger ------------------------------------------------------------------------


def bio_tags(ex: Example) -> tuple[list[str], list[str]]:
    """Tokens of ``ex`` and their BIO tags from its entity spans (a token overlapping a span
    belongs to it)."""
    tokens = inference.tokenize(ex.text)
    tags = [O_TAG] * len(tokens)
    for ent in sorted(ex.entities, key=lambda e: e.start):
        inside = [i for i, t in enumerate(tokens) if t.start < ent.end and t.end > ent.start]
        for k, i in enumerate(inside):
            tags[i] = ("B-" if k == 0 else "I-") + ent.entity
    return [t.text for t in tokens], tags


def touching_types(tag_lists: Sequence[Sequence[str]]) -> set[str]:
    """Entity types of which one span directly follows another (``B-x`` after ``B-x`` or
    ``I-x``) in some training sentence. Annotators rarely split a value so (3 of the 21,964
    neighbouring Snips spans); the other types' spans never touch (``CRF``'s ``touching``)."""
    return {tag[2:] for tags in tag_lists for prev, tag in zip(tags, tags[1:]) if _touches(prev, tag)}


def _touches(prev: str, tag: str) -> bool:
    """``tag`` opens a span of the type that ``prev`` is in."""
    return tag.startswith("B-") and prev != O_TAG and prev[2:] == tag[2:]


def augment(examples: Sequence[Example], *, per_intent: int, seed: int) -> list[Example]:
    """``examples`` plus, for an intent with fewer than ``per_intent``, copies of its sentences
    with each entity's value swapped for another value of that type seen with the intent (the
    Snips engine's slot-filler augmentation): the tagger learns the contexts, not the values."""
    rng = random.Random(seed)
    values: dict[tuple[str, str], list[str]] = {}
    by_intent: dict[str, list[Example]] = {}
    for ex in examples:
        for e in ex.entities:
            values.setdefault((ex.intent, e.entity), []).append(ex.text[e.start : e.end])
        if ex.entities:
            by_intent.setdefault(ex.intent, []).append(ex)
    out = list(examples)
    for intent, items in sorted(by_intent.items()):
        n_intent = sum(1 for ex in examples if ex.intent == intent)
        for _ in range(max(0, per_intent - n_intent)):
            out.append(_swap_values(rng.choice(items), values, rng))
    return out


def _swap_values(ex: Example, values: dict[tuple[str, str], list[str]], rng: random.Random) -> Example:
    text, ents, pos = "", [], 0
    for e in sorted(ex.entities, key=lambda e: e.start):
        value = rng.choice(values[(ex.intent, e.entity)])
        text += ex.text[pos : e.start]
        ents.append(Entity(len(text), len(text) + len(value), e.entity, value))
        text += value
        pos = e.end
    return Example(text + ex.text[pos:], ex.intent, tuple(ents))


def entity_values(ex: Example) -> Counter[tuple[str, str]]:
    """``(type, gazetteer key)`` of each entity of ``ex``."""
    return Counter((e.entity, inference.Gazetteer.key(ex.text[e.start : e.end])) for e in ex.entities)


def fit_gazetteer(examples: Sequence[Example]) -> inference.Gazetteer:
    counts: dict[str, Counter[str]] = {}
    for ex in examples:
        for (etype, key), n in entity_values(ex).items():
            if key:
                counts.setdefault(etype, Counter())[key] += n
    return inference.Gazetteer(counts)


@dataclass
class TagItem:
    """One sentence for the tagger: its tokens' feature bags, tag ids and (with an encoder)
    contextual word vectors."""

    bags: list[np.ndarray]
    tags: list[int]
    vectors: np.ndarray | None = None


@dataclass
class Prototypes:
    """The training words' contextual vectors by tag, for ``inference.with_prototypes``: up to
    ``per_tag`` words of each tag (a seeded sample), unit length, stored in float16 and used
    rounded alike in training, so training and ``predict`` compute the same features."""

    vectors: np.ndarray
    tags: np.ndarray
    texts: np.ndarray
    """The sentence each word came from: a training sentence does not see its own words."""
    n_tags: int

    @classmethod
    def fit(cls, sentences: Sequence[tuple[str, list[int], np.ndarray]], *, n_tags: int, per_tag: int, seed: int) -> Prototypes:
        """``sentences``: (text, tag ids, word vectors) each."""
        by_tag: dict[int, list[tuple[str, int, np.ndarray]]] = {}
        for text, tags, vecs in sentences:
            for t, v in zip(tags, vecs):
                by_tag.setdefault(t, []).append((text, t, v))
        rng = random.Random(seed)
        keep = []
        for k in sorted(by_tag):
            mine = by_tag[k]
            keep += rng.sample(mine, per_tag) if len(mine) > per_tag else mine
        vecs = np.stack([v for _, _, v in keep]).astype(np.float32) if keep else np.zeros((0, 1), np.float32)
        unit = (vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)).astype(np.float16)
        return cls(unit, np.asarray([t for _, t, _ in keep], dtype=np.int64), np.asarray([x for x, _, _ in keep]), n_tags)

    def features(self, vectors: np.ndarray, *, text: str | None = None) -> np.ndarray:
        """``vectors`` with the similarity features; ``text``: leave that sentence's words out."""
        leave_out = self.texts == text if text is not None else None
        return inference.with_prototypes(vectors, self.vectors, self.tags, self.n_tags, leave_out=leave_out)

    def export(self) -> dict[str, np.ndarray]:
        return {"tag_proto": self.vectors, "tag_proto_tag": self.tags}


@dataclass
class TagFeatures:
    vocab: np.ndarray
    tags: list[str]
    by_intent: dict[str, set[str]] = field(default_factory=dict)
    gazetteer: inference.Gazetteer | None = None
    held_out: bool = True
    """Featurise a training sentence with a gazetteer that lacks its own values."""
    vectors: Callable[[Sequence[str]], np.ndarray] | None = None
    """Words → contextual word vectors from a frozen encoder, beside the hashed features."""
    vectors_meta: dict[str, object] | None = None
    """What the model records about that encoder (``taggerEncoder``)."""
    prototypes: Prototypes | None = None
    """With ``vectors``: nearest-training-word similarity features beside them."""
    touching: set[str] = field(default_factory=set)
    """Types whose spans touch in training (``touching_types``)."""

    @classmethod
    def fit(cls, examples: Sequence[Example], *, gazetteer: bool = True, held_out: bool = True,
            vectors: Callable[[Sequence[str]], np.ndarray] | None = None, vectors_meta: dict[str, object] | None = None,
            prototypes: int = 0, seed: int = 0) -> TagFeatures:
        """``prototypes``: with ``vectors``, keep up to that many training words per tag for
        the similarity features (0: none)."""
        gaz = fit_gazetteer(examples) if gazetteer else None
        hashes: set[int] = set()
        tagset: set[str] = set()
        by_intent: dict[str, set[str]] = {}
        tagged = [(ex, *bio_tags(ex)) for ex in examples]
        for ex, tokens, tags in tagged:
            tagset.update(tags)
            by_intent.setdefault(ex.intent, set()).update(t[2:] for t in tags if t != O_TAG)
            exclude = entity_values(ex) if held_out else None
            for feats in inference.token_features(tokens, intent=ex.intent, gazetteer=gaz, exclude=exclude):
                hashes.update(feats)
        tags_sorted = [O_TAG] + sorted(tagset - {O_TAG})
        protos = None
        if vectors is not None and prototypes:
            index = {t: i for i, t in enumerate(tags_sorted)}
            sentences = [(ex.text, [index[t] for t in tags], vectors(tokens)) for ex, tokens, tags in tagged if tokens]
            protos = Prototypes.fit(sentences, n_tags=len(tags_sorted), per_tag=prototypes, seed=seed)
        return cls(np.asarray(sorted(hashes), dtype=np.int64), tags_sorted, by_intent, gaz, held_out, vectors, vectors_meta, protos,
                   touching_types([tags for _, _, tags in tagged]))

    def encode(self, ex: Example, *, training: bool = True) -> TagItem:
        tokens, tags = bio_tags(ex)
        index = {t: i for i, t in enumerate(self.tags)}
        exclude = entity_values(ex) if training and self.held_out else None
        bags = inference.token_bags(self.vocab, tokens, intent=ex.intent, gazetteer=self.gazetteer, exclude=exclude)
        vectors = self.vectors(tokens) if self.vectors is not None else None
        if vectors is not None and self.prototypes is not None:
            vectors = self.prototypes.features(vectors, text=ex.text if training else None)
        return TagItem(bags, [index.get(t, 0) for t in tags], vectors)

    def meta(self) -> dict[str, object]:
        return {"tags": self.tags, "gazetteer": self.gazetteer.counts if self.gazetteer else None,
                "taggerEncoder": self.vectors_meta}

    def intent_mask(self, labels: Sequence[str]) -> np.ndarray:
        """labels × tags: which tags an intent's sentences carried in training (O always)."""
        mask = np.zeros((len(labels), len(self.tags)), dtype=bool)
        for i, label in enumerate(labels):
            seen = self.by_intent.get(label, set())
            mask[i] = [t == O_TAG or t[2:] in seen for t in self.tags]
        return mask


class TaggerNet(nn.Module):
    """Per-token embedding bag (+ a projection of contextual word vectors) → tanh → BiLSTM →
    linear → BIO tag logits."""

    def __init__(self, vocab_size: int, n_tags: int, *, dim: int = 128, hidden: int = 96, dropout: float = 0.25,
                 feature_dropout: float = 0.0, crf_tags: Sequence[str] | None = None, enc_dim: int = 0,
                 enc_mode: str = "add", touching: set[str] | None = None) -> None:
        """``touching``: with ``crf_tags``, the types whose spans may touch (``CRF``); None: all."""
        super().__init__()
        self.crf = CRF(crf_tags, touching=touching) if crf_tags else None
        self.feature_dropout = feature_dropout
        self.emb = nn.EmbeddingBag(max(vocab_size, 1), dim, mode="sum", sparse=True)
        nn.init.normal_(self.emb.weight, std=0.1)
        self.emb_bias = nn.Parameter(torch.zeros(dim))
        self.enc_mode = enc_mode
        self.enc = nn.Linear(enc_dim, dim) if enc_dim and enc_mode == "add" else None
        self.drop = nn.Dropout(dropout)
        lstm_in = dim + (enc_dim if enc_dim and enc_mode == "concat" else 0)
        self.lstm = nn.LSTM(lstm_in, hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden, n_tags)

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor, lengths: list[int], vectors: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B × T × K) for sentences whose tokens are consecutive bags (and rows of ``vectors``)."""
        weights = None
        if self.training and self.feature_dropout:  # hide features so no single one (the word) is relied on
            weights = (torch.rand(ids.shape, device=ids.device) >= self.feature_dropout).float()
        x = self.emb(ids, offsets, per_sample_weights=weights) + self.emb_bias
        if self.enc is not None and vectors is not None:
            x = x + self.enc(self.drop(vectors))
        x = self.drop(torch.tanh(x))
        if self.enc_mode == "concat" and vectors is not None:
            x = torch.cat([x, self.drop(vectors)], dim=1)
        padded = nn.utils.rnn.pad_sequence(list(torch.split(x, lengths)), batch_first=True)
        packed = pack_padded_sequence(padded, torch.tensor(lengths), batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=padded.shape[1])
        return self.out(self.drop(out))

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.crf is not None:
            return self.crf.nll(logits, targets)
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)

    def export(self, feats: TagFeatures) -> dict[str, np.ndarray]:
        w = dict(self.lstm.named_parameters())
        crf = {"tag_trans": _np(self.crf.trans + self.crf.apart), "tag_start": _np(self.crf.start)} if self.crf is not None else {}
        enc = {"tag_enc_w": _np(self.enc.weight), "tag_enc_b": _np(self.enc.bias)} if self.enc is not None else {}
        protos = feats.prototypes.export() if feats.prototypes is not None else {}
        return crf | enc | protos | {
            "tag_vocab": feats.vocab,
            "tag_emb": _np(self.emb.weight),
            "tag_emb_bias": _np(self.emb_bias),
            "tag_lstm_w_ih": _np(w["weight_ih_l0"]),
            "tag_lstm_w_hh": _np(w["weight_hh_l0"]),
            "tag_lstm_b": _np(w["bias_ih_l0"] + w["bias_hh_l0"]),
            "tag_lstm_w_ih_r": _np(w["weight_ih_l0_reverse"]),
            "tag_lstm_w_hh_r": _np(w["weight_hh_l0_reverse"]),
            "tag_lstm_b_r": _np(w["bias_ih_l0_reverse"] + w["bias_hh_l0_reverse"]),
            "tag_out_w": _np(self.out.weight),
            "tag_out_b": _np(self.out.bias),
        }


class CRF(nn.Module):
    """A linear-chain CRF over the tagger's scores: learned transition and start scores, the
    BIO constraints as fixed -1e4 penalties; trained by the forward algorithm (the sentence's
    negative log-likelihood), decoded by ``inference.viterbi``.

    With ``touching``, two spans of a type not in it never touch (``B-x`` after ``B-x`` or
    ``I-x``: -1e4 in ``apart``, exported in the transitions). Without it a few-shot tagger
    splits values it is unsure of ("animated | movies", "oyster | bar"): on Snips training
    utterances held out of the draws, with ``taggerEncoder``, P / R +1.3 / +1.5 at 10 per
    intent and +0.8 / +1.7 at 20."""

    def __init__(self, tags: Sequence[str], *, touching: set[str] | None = None) -> None:
        super().__init__()
        k = len(tags)
        self.trans = nn.Parameter(torch.zeros(k, k))
        self.start = nn.Parameter(torch.zeros(k))
        start_ok, allowed = inference.allowed_transitions(tags)
        apart = np.zeros((k, k), dtype=np.float32)
        if touching is not None:
            for i, prev in enumerate(tags):
                for j, tag in enumerate(tags):
                    if _touches(prev, tag) and tag[2:] not in touching:
                        apart[i, j] = -1e4
        self.register_buffer("apart", torch.from_numpy(apart))
        self.register_buffer("trans_penalty", torch.from_numpy(np.where(allowed, 0.0, -1e4).astype(np.float32) + apart))
        self.register_buffer("start_penalty", torch.from_numpy(np.where(start_ok, 0.0, -1e4).astype(np.float32)))

    def nll(self, emissions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Summed negative log-likelihood over the batch / number of tokens (B×T×K, B×T with -100 pads)."""
        mask = targets != -100
        y = targets.clamp(min=0)
        trans = self.trans + self.trans_penalty
        alpha = self.start + self.start_penalty + emissions[:, 0]
        gold = (self.start + self.start_penalty)[y[:, 0]] + emissions[:, 0].gather(1, y[:, :1]).squeeze(1)
        for t in range(1, emissions.shape[1]):
            nxt = torch.logsumexp(alpha[:, :, None] + trans[None], dim=1) + emissions[:, t]
            alpha = torch.where(mask[:, t, None], nxt, alpha)
            step = trans[y[:, t - 1], y[:, t]] + emissions[:, t].gather(1, y[:, t : t + 1]).squeeze(1)
            gold = gold + step * mask[:, t]
        return (torch.logsumexp(alpha, dim=1) - gold).sum() / mask.sum().clamp(min=1)


def collate_tokens(items: Sequence[TagItem], device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(ids, offsets, tag targets padded with -100, sentence lengths, word vectors or None)."""
    bags = [bag for it in items for bag in it.bags]
    lengths = [len(it.bags) for it in items]
    sizes = [len(b) for b in bags]
    offsets = torch.tensor(np.concatenate([[0], np.cumsum(sizes)[:-1]]), dtype=torch.long)
    ids = torch.from_numpy(np.concatenate(bags) if sum(sizes) else np.zeros(0, np.int64))
    targets = torch.full((len(items), max(lengths)), -100, dtype=torch.long)
    for i, it in enumerate(items):
        targets[i, : len(it.tags)] = torch.tensor(it.tags)
    vectors = None
    if items and items[0].vectors is not None:
        vectors = torch.from_numpy(np.concatenate([it.vectors for it in items]).astype(np.float32)).to(device)
    return ids.to(device), offsets.to(device), targets.to(device), torch.tensor(lengths), vectors


FLOAT16_ABOVE = 8_000_000
"""Embedding tables with more entries are stored as float16 (half the file; same answers)."""


def _compact(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float16) if a.size > FLOAT16_ABOVE else a


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy().astype(np.float32)


class Adam:
    """Adam for dense and sparse (row) gradients; lazy on sparse rows like ``SparseAdam``.

    Written out because constructing any ``torch.optim`` optimizer imports torch._dynamo,
    about 4 s on a 2-core CPU: more than training a small bot takes."""

    def __init__(self, params: Sequence[torch.Tensor], *, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, rowwise: bool = False) -> None:
        self.params = list(params)
        self.lr, self.betas, self.eps, self.wd = lr, betas, eps, weight_decay
        self.rowwise = rowwise
        """Sparse rows: one second moment per row and no momentum (a third of the memory
        traffic: the embedding update dominates a step on CPU)."""
        self.t = 0
        self.m = [torch.zeros(0, device=p.device) if rowwise else torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros(p.shape[0], device=p.device) if rowwise else torch.zeros_like(p) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1 - b1**self.t, 1 - b2**self.t
        for p, m, v in zip(self.params, self.m, self.v):
            if p.grad is None:
                continue
            if p.grad.is_sparse and self.rowwise:
                self._rowwise(p, v, c2)
            elif p.grad.is_sparse:
                g = p.grad.coalesce()
                rows, vals = g.indices()[0], g.values()
                mr = m[rows].mul_(b1).add_(vals, alpha=1 - b1)
                vr = v[rows].mul_(b2).addcmul_(vals, vals, value=1 - b2)
                m[rows], v[rows] = mr, vr
                update = (mr / c1).div_((vr / c2).sqrt_().add_(self.eps))
                if self.wd:  # decoupled (AdamW), on the rows this batch touched
                    update.add_(p[rows], alpha=self.wd)
                p.index_add_(0, rows, update.mul_(-self.lr))
            else:
                m.mul_(b1).add_(p.grad, alpha=1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                p.addcdiv_(m / c1, (v / c2).sqrt_().add_(self.eps), value=-self.lr)

    def _rowwise(self, p: torch.Tensor, v: torch.Tensor, c2: float) -> None:
        g = p.grad.coalesce()  # type: ignore[union-attr]
        rows, vals = g.indices()[0], g.values()
        b2 = self.betas[1]
        vr = v[rows].mul_(b2).add_(vals.pow(2).mean(1), alpha=1 - b2)
        v[rows] = vr
        scale = (vr / c2).sqrt_().add_(self.eps).reciprocal_().mul_(-self.lr)
        p.index_add_(0, rows, vals * scale[:, None])

    def state_dict(self) -> dict[str, object]:
        return {"t": self.t, "m": [x.clone() for x in self.m], "v": [x.clone() for x in self.v]}

    def load_state_dict(self, state: dict[str, object]) -> None:
        self.t = int(state["t"])  # type: ignore[call-overload]
        for mine, theirs in zip(self.m + self.v, list(state["m"]) + list(state["v"])):  # type: ignore[call-overload]
            mine.copy_(theirs)
