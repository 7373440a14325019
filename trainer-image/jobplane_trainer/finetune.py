"""Fine-tuning the MiniLM encoder with its head (``finetune: true`` with ``encoder: minilm``).

A small torch BERT loads the same safetensors weights as the numpy encoder and is trained with
the softmax head (initialised from the frozen head: linear probe, then fine-tune) by AdamW
with a linear warmup and decay, bf16 autocast on CUDA. The word-embedding table stays frozen (a
third of the weights, and rows most bots never touch); every other encoder weight is exported in
float16 into the model (``encoder_ft.<name>``, ~22 MB), so numpy ``predict`` runs the fine-tuned
encoder with the installed package's word embeddings and vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from jobplane import encoder

from .data import Example
from .stages import Stage, TrainConfig, autocast, shuffled


PREFIX = encoder.FINETUNED_PREFIX
_LAYER_NAMES = {"query": "attention.self.query", "key": "attention.self.key", "value": "attention.self.value",
                "attn_out": "attention.output.dense", "ln1": "attention.output.LayerNorm",
                "ff1": "intermediate.dense", "ff2": "output.dense", "ln2": "output.LayerNorm"}


class BertLayer(nn.Module):
    def __init__(self, dim: int, ff: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value, self.attn_out = (nn.Linear(dim, dim) for _ in range(4))
        self.ln1, self.ln2 = nn.LayerNorm(dim, eps=encoder.LN_EPS), nn.LayerNorm(dim, eps=encoder.LN_EPS)
        self.ff1, self.ff2 = nn.Linear(dim, ff), nn.Linear(ff, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = (m(x).view(b, t, self.heads, d // self.heads).transpose(1, 2) for m in (self.query, self.key, self.value))
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])
        x = self.ln1(x + self.attn_out(ctx.transpose(1, 2).reshape(b, t, d)))
        return self.ln2(x + self.ff2(F.gelu(self.ff1(x))))


class Bert(nn.Module):
    """BERT with mean pooling and L2 normalisation (sentence-transformers' all-MiniLM-L6-v2)."""

    def __init__(self, tensors: dict[str, np.ndarray], config: dict[str, Any]) -> None:
        super().__init__()
        dim, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
        self.register_buffer("word", _t(tensors["embeddings.word_embeddings.weight"]), persistent=False)  # frozen
        self.position = nn.Parameter(_t(tensors["embeddings.position_embeddings.weight"]))
        self.token_type = nn.Parameter(_t(tensors["embeddings.token_type_embeddings.weight"]))
        self.emb_ln = nn.LayerNorm(dim, eps=encoder.LN_EPS)
        self.layers = nn.ModuleList(BertLayer(dim, int(config["intermediate_size"]), heads)
                                    for _ in range(int(config["num_hidden_layers"])))
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name in self.hf_names():
                    p.copy_(_t(tensors[self.hf_names()[name]]))

    def hf_names(self) -> dict[str, str]:
        """This module's parameter names → the safetensors (Hugging Face) names."""
        names = {"position": "embeddings.position_embeddings.weight", "token_type": "embeddings.token_type_embeddings.weight",
                 "emb_ln.weight": "embeddings.LayerNorm.weight", "emb_ln.bias": "embeddings.LayerNorm.bias"}
        for i in range(len(self.layers)):
            for mine, theirs in _LAYER_NAMES.items():
                for kind in ("weight", "bias"):
                    names[f"layers.{i}.{mine}.{kind}"] = f"encoder.layer.{i}.{theirs}.{kind}"
        return names

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        t = ids.shape[1]
        x = self.emb_ln(self.word[ids] + self.position[:t] + self.token_type[0])
        for layer in self.layers:
            x = layer(x, mask)
        m = mask.unsqueeze(-1).to(x.dtype)
        pooled = (x * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return F.normalize(pooled.float(), dim=-1)

    def export(self) -> dict[str, np.ndarray]:
        """Every trained encoder weight, float16, under its safetensors name."""
        names = self.hf_names()
        return {PREFIX + names[n]: p.detach().float().cpu().numpy().astype(np.float16) for n, p in self.named_parameters()}


class FinetuneNet(nn.Module):
    def __init__(self, bert: Bert, head: nn.Linear, *, dropout: float) -> None:
        super().__init__()
        self.bert, self.drop, self.out = bert, nn.Dropout(dropout), head

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(self.bert(ids, mask)))

    def export(self) -> dict[str, np.ndarray]:
        return self.bert.export() | {"encoder_head_w": self.out.weight.detach().float().cpu().numpy(),
                                     "encoder_head_b": self.out.bias.detach().float().cpu().numpy()}


class WarmupAdamW:
    """``torch.optim.AdamW`` with a linear warmup then a linear decay to 0, stepped per batch;
    the shape of an optimizer the trainer's Runner drives (zero_grad, step, state_dict)."""

    def __init__(self, groups: list[dict[str, Any]], *, total: int, warmup: float, weight_decay: float) -> None:
        self.opt = torch.optim.AdamW(groups, weight_decay=weight_decay)
        self.base = [g["lr"] for g in self.opt.param_groups]
        self.total, self.warmup, self.t = max(1, total), max(1, int(warmup * total)), 0
        self._set_lr()

    def _set_lr(self) -> None:
        t = self.t + 1
        f = t / self.warmup if t <= self.warmup else max(0.0, (self.total - t) / max(1, self.total - self.warmup))
        for g, lr in zip(self.opt.param_groups, self.base):
            g["lr"] = lr * f

    def zero_grad(self) -> None:
        self.opt.zero_grad(set_to_none=True)

    def step(self) -> None:
        self.opt.step()
        self.t += 1
        self._set_lr()

    def state_dict(self) -> dict[str, Any]:
        return {"opt": self.opt.state_dict(), "t": self.t}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.opt.load_state_dict(state["opt"])
        self.t = int(state["t"])
        self._set_lr()


def collate(ids: Sequence[Sequence[int]], dev: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    t = max(len(s) for s in ids)
    tok = torch.zeros((len(ids), t), dtype=torch.long)
    mask = torch.zeros((len(ids), t), dtype=torch.bool)
    for i, s in enumerate(ids):
        tok[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = True
    return tok.to(dev), mask.to(dev)


def finetune_stage(train: Sequence[Example], val: Sequence[Example], *, labels: list[str], cfg: TrainConfig, dev: torch.device,
                   enc: encoder.Encoder, head: dict[str, np.ndarray], epochs: int | None, name: str,
                   span: tuple[float, float]) -> Stage:
    """The encoder and the head trained together; the best epoch by validation loss is kept."""

    index = {label: i for i, label in enumerate(labels)}
    ids = [enc.tokenizer.encode(e.text) for e in train]
    y = torch.tensor([index[e.intent] for e in train], device=dev)
    val_ids = [enc.tokenizer.encode(e.text) for e in val]
    val_y = torch.tensor([index[e.intent] for e in val], device=dev)
    out = nn.Linear(enc.dim, len(labels))
    with torch.no_grad():
        out.weight.copy_(torch.from_numpy(head["encoder_head_w"]))
        out.bias.copy_(torch.from_numpy(head["encoder_head_b"]))
    net = FinetuneNet(Bert(enc.tensors, enc.config), out, dropout=cfg.encoder_dropout).to(dev)
    n_epochs = epochs or cfg.finetune_epochs
    per_epoch = -(-len(train) // cfg.finetune_batch_size)
    groups = [{"params": list(net.bert.parameters()), "lr": cfg.finetune_lr}, {"params": list(net.out.parameters()), "lr": cfg.finetune_head_lr}]
    opt = WarmupAdamW(groups, total=n_epochs * per_epoch, warmup=cfg.finetune_warmup, weight_decay=0.01)
    loss_fn = nn.CrossEntropyLoss()

    def step(batch: list[int]) -> torch.Tensor:
        with autocast(dev):
            logits = net(*collate([ids[i] for i in batch], dev))
        return loss_fn(logits.float(), y[batch])

    def score() -> float | None:
        if not val:
            return None
        losses = []
        with torch.no_grad(), autocast(dev):
            for i in range(0, len(val_ids), 128):
                logits = net(*collate(val_ids[i : i + 128], dev)).float()
                losses.append(float(F.cross_entropy(logits, val_y[i : i + 128], reduction="sum")))
        return -sum(losses) / len(val_ids)

    return Stage(name, net, [opt], lambda ep: shuffled(len(train), seed=cfg.seed + 3, epoch=ep, size=cfg.finetune_batch_size),  # type: ignore[list-item]
                 step, score, n_epochs, n_epochs, span, n_epochs)


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(a, dtype=np.float32))

