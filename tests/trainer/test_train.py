"""Training on small real data: accuracy, numpy inference equal to torch, checkpoints that
resume, progress that is rate-limited."""

from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np
import pytest
import torch

from jobplane import inference
from jobplane.events import Event
from jobplane_trainer.data import Example, decode, from_project, from_snips
from jobplane_trainer.model import CRF, IntentFeatures, IntentNet, TagFeatures, TaggerNet, collate_bags, collate_tokens, touching_types
from jobplane_trainer.report import Reporter, Throttle
from jobplane_trainer.train import Hooks, Interrupted, Progress, TrainConfig, _chunk, _decoding, _shuffled, evaluate, split, train

from .conftest import SHARED_DATA, make_bot


def test_generated_bot_reaches_sane_accuracy(trained: Any) -> None:
    assert trained.summary["accuracy"] >= 0.85
    assert trained.summary["entity_f1"] >= 0.7
    assert 0.0 < trained.meta["threshold"] < 1.0


def test_served_model_answers_with_ranking_and_entities(trained: Any) -> None:
    model = inference.Model.from_bytes(trained.model)
    answer = model.predict("book a flight to lisbon tomorrow")
    assert answer["intent"] == "book_flight"
    assert answer["ranking"][0]["intent"] == "book_flight" and len(answer["ranking"]) == 5
    assert {"entity": "city", "value": "lisbon", "start": 17, "end": 23} in [{k: v for k, v in e.items() if k != "confidence"} for e in answer["entities"]]


def test_low_confidence_falls_back_to_out_of_scope(trained: Any) -> None:
    model = inference.Model.from_bytes(trained.model)
    assert model.predict("book a flight to lisbon", threshold=1.01)["intent"] == inference.FALLBACK_INTENT


def test_split_is_stratified_and_deterministic() -> None:
    examples = [Example(f"t{i}", f"i{i % 4}") for i in range(40)] + [Example("x", "rare"), Example("y", "rare")]
    train_a, val_a = split(examples, fraction=0.2, seed=1)
    train_b, val_b = split(examples, fraction=0.2, seed=1)
    assert val_a == val_b and train_a == train_b
    assert sorted(e.intent for e in val_a) == ["i0", "i0", "i1", "i1", "i2", "i2", "i3", "i3"]


def test_numpy_inference_equals_torch(bot_data: dict[str, Any]) -> None:
    torch.manual_seed(0)
    examples = from_project(bot_data)
    ifeats = IntentFeatures.fit([e.text for e in examples])
    inet = IntentNet(len(ifeats.vocab), 8, dim=16, hidden=12).eval()
    tfeats = TagFeatures.fit(examples)
    tnet = TaggerNet(len(tfeats.vocab), len(tfeats.tags), dim=8, hidden=6, crf_tags=tfeats.tags).eval()
    assert tfeats.gazetteer is not None
    arrays = inet.export(ifeats) | tnet.export(tfeats)
    for ex in examples[::25]:
        with torch.no_grad():
            want = inet(*collate_bags(ifeats.bags([ex.text]), torch.device("cpu")))[0].numpy()
            ids, offsets, _, lengths, _ = collate_tokens([tfeats.encode(ex, training=False)], torch.device("cpu"))
            logits = tnet(ids, offsets, lengths.tolist())[0]
            want_tags = torch.log_softmax(logits, -1).numpy()
        np.testing.assert_allclose(inference.intent_logits(arrays, ex.text), want, rtol=1e-4, atol=1e-5)
        tokens = [t.text for t in inference.tokenize(ex.text)]
        got = inference.tag_scores(arrays, tokens, intent=ex.intent, gazetteer=tfeats.gazetteer)
        np.testing.assert_allclose(got, want_tags, rtol=1e-4, atol=1e-5)


def test_crf_loss_is_the_path_nll_and_viterbi_finds_the_best_allowed_path() -> None:
    torch.manual_seed(1)
    tags = ["O", "B-x", "I-x", "B-y", "I-y"]
    crf = CRF(tags)
    with torch.no_grad():
        crf.trans.normal_()
        crf.start.normal_()
    emissions = torch.randn(1, 4, len(tags))
    gold = [1, 2, 0, 3]
    trans, start = crf.trans + crf.trans_penalty, crf.start + crf.start_penalty

    def path_score(path: tuple[int, ...]) -> torch.Tensor:
        s = start[path[0]] + sum(emissions[0, t, k] for t, k in enumerate(path))
        return s + sum(trans[a, b] for a, b in zip(path, path[1:]))

    paths = list(itertools.product(range(len(tags)), repeat=4))
    scores = torch.stack([path_score(p) for p in paths])
    want_nll = (torch.logsumexp(scores, 0) - path_score(tuple(gold))) / 4
    torch.testing.assert_close(crf.nll(emissions, torch.tensor([gold])), want_nll)
    best = inference.viterbi(emissions[0].numpy(), tags, transitions=crf.trans.detach().numpy(),
                             start_scores=crf.start.detach().numpy())
    assert tuple(best) == paths[int(scores.argmax())]


def test_touching_types_are_those_with_a_span_right_after_another_of_the_type() -> None:
    assert touching_types([["B-x", "B-x", "O", "B-y", "O", "B-y"], ["B-z", "I-z", "B-z", "B-x", "B-w", "I-w"]]) == {"x", "z"}
    assert touching_types([["B-x", "I-x", "B-y", "O", "B-x"]]) == set()


@pytest.mark.parametrize("touching", [set(), {"x"}])
def test_spans_of_a_type_that_never_touched_in_training_are_decoded_as_one(touching: set[str]) -> None:
    tags = ["O", "B-x", "I-x", "B-y", "I-y"]
    net = TaggerNet(1, len(tags), dim=4, hidden=3, crf_tags=tags, touching=touching)
    feats = TagFeatures(np.zeros(1, dtype=np.int64), tags)
    trans = net.export(feats)["tag_trans"]
    emissions = np.log(np.array([[0.05, 0.9, 0.01, 0.03, 0.01], [0.05, 0.6, 0.3, 0.04, 0.01]], dtype=np.float32))
    path = [tags[i] for i in inference.viterbi(emissions, tags, transitions=trans)]
    assert path == (["B-x", "B-x"] if touching else ["B-x", "I-x"])
    assert trans[tags.index("I-x"), tags.index("B-x")] == (0.0 if touching else -1e4)
    assert trans[tags.index("B-y"), tags.index("B-y")] == trans[tags.index("I-y"), tags.index("B-y")] == -1e4
    assert trans[tags.index("B-x"), tags.index("B-y")] == trans[tags.index("B-x"), tags.index("I-x")] == 0.0


def test_crf_gives_touching_spans_of_an_apart_type_no_probability() -> None:
    tags = ["O", "B-x", "I-x"]
    crf = CRF(tags, touching=set())
    emissions = torch.zeros(1, 2, len(tags))
    nll_split = float(crf.nll(emissions, torch.tensor([[1, 1]])))
    nll_one = float(crf.nll(emissions, torch.tensor([[1, 2]])))
    assert nll_split > 1000 > nll_one


def test_lattice_gives_each_viterbi_span_its_probability_over_all_paths() -> None:
    rng = np.random.default_rng(0)
    tags = ["O", "B-x", "I-x", "B-y", "I-y"]
    scores = rng.normal(size=(4, len(tags))).astype(np.float32)
    trans = rng.normal(size=(len(tags), len(tags))).astype(np.float32)
    start_scores = rng.normal(size=len(tags)).astype(np.float32)
    lattice = inference.Lattice.of(scores, tags, transitions=trans, start_scores=start_scores)
    start, allowed = inference.allowed_transitions(tags)
    weights = {}
    for p in itertools.product(range(len(tags)), repeat=4):
        if start[p[0]] and all(allowed[a, b] for a, b in zip(p, p[1:])):
            s = start_scores[p[0]] + sum(scores[t, k] for t, k in enumerate(p)) + sum(trans[a, b] for a, b in zip(p, p[1:]))
            weights[p] = float(np.exp(s))
    z = sum(weights.values())
    best = inference.viterbi(lattice.scores, tags, transitions=lattice.trans, start_scores=lattice.start)
    assert tuple(best) == max(weights, key=weights.__getitem__)
    want = sum(w for p, w in weights.items() if p[1:3] == (1, 2) and p[3] != 2) / z  # B-x I-x, then not I-x
    assert lattice.span_probability(1, [1, 2], stop=[2]) == pytest.approx(want, rel=1e-4)
    spans = [(i, k) for i, k in enumerate(best) if tags[k].startswith("B-")]
    confidences = inference.span_confidences(lattice, tags, best)
    assert len(confidences) == len(spans) and all(0.0 < c <= 1.0 for c in confidences)


def test_entities_carry_their_probability_and_the_models_threshold_and_bias_apply() -> None:
    examples = from_project(make_bot(per_intent=10, seed=5))
    cfg = TrainConfig(tagger_min_confidence=0.3, tagger_entity_bias=0.5, tagger_min_steps=40, tagger_epochs=4, refit=False)
    model = inference.Model.from_bytes(train(examples, cfg=cfg).model)
    assert (model.span_threshold, model.entity_bias) == (0.3, 0.5)
    text = "book a flight to lisbon tomorrow"
    every = model.entities(text, intent="book_flight", min_confidence=0.0)
    assert every and all(0.0 < e["confidence"] <= 1.0 for e in every)
    assert model.entities(text, intent="book_flight") == [e for e in every if e["confidence"] >= 0.3]
    assert model.entities(text, intent="book_flight", min_confidence=1.01) == []
    model.entity_bias = -50.0  # as a model trained with taggerEntityBias -50 answers
    assert model.entities(text, intent="book_flight", min_confidence=0.0) == []
    model.entity_bias = 50.0
    spans = model.entities(text, intent="book_flight", min_confidence=0.0)
    assert all(any(e["start"] <= t.start and t.end <= e["end"] for e in spans) for t in inference.tokenize(text))


def test_large_bots_decode_by_plain_viterbi() -> None:
    cfg = TrainConfig(tagger_entity_bias=2.0, tagger_min_confidence=0.45, tagger_decode_max_examples=100)
    assert _decoding(cfg, 100) == {"spanThreshold": 0.45, "entityBias": 2.0}
    assert _decoding(cfg, 101) == {"spanThreshold": 0.0, "entityBias": 0.0}


def test_gazetteer_marks_seen_values_and_leaves_out_a_sentences_own() -> None:
    gaz = inference.Gazetteer({"city": {"new york": 1, "paris": 2}})
    lows = ["fly", "to", "new", "york", "or", "paris"]
    assert gaz.marks(lows) == [[], [], ["g:B-city"], ["g:I-city"], [], ["g:B-city"]]
    held_out = gaz.marks(lows, exclude={("city", "new york"): 1, ("city", "paris"): 1})
    assert held_out == [[], [], [], [], [], ["g:B-city"]]


def test_chunks_of_a_whole_epoch_are_the_epochs_and_shorter_chunks_continue_the_stream() -> None:
    n, size = 50, 4  # 13 batches an epoch
    assert [_chunk(n, seed=3, index=i, chunk=13, size=size) for i in range(3)] == [_shuffled(n, seed=3, epoch=e, size=size) for e in range(3)]
    stream = [b for i in range(6) for b in _chunk(n, seed=3, index=i, chunk=5, size=size)]
    assert stream[:26] == _shuffled(n, seed=3, epoch=0, size=size) + _shuffled(n, seed=3, epoch=1, size=size)


@pytest.mark.parametrize(("eval_steps", "stop_after"), [(0, 30), (4, 10)])  # 6 batches an epoch: epochs, or 4-batch chunks
def test_stop_writes_a_checkpoint_and_resume_finishes_the_same_model(bot_data: dict[str, Any], eval_steps: int, stop_after: int) -> None:
    examples = from_project(bot_data)
    cfg = TrainConfig(max_epochs=4, patience=4, tagger_epochs=3, tagger_patience=3, min_steps=0, tagger_min_steps=0, threads=1,
                      eval_steps=eval_steps, eval_patience=4)
    saved: list[bytes] = []
    calls = iter(range(10**6))
    # stop_after batches: inside the intent stage's second epoch, or its third chunk
    with pytest.raises(Interrupted):
        train(examples, cfg=cfg, hooks=Hooks(should_stop=lambda: next(calls) >= stop_after, save_checkpoint=saved.append))
    assert len(saved) == 1
    seen: list[Progress] = []
    resumed = train(examples, cfg=cfg, hooks=Hooks(load_checkpoint=lambda: saved[0], progress=seen.append))
    assert any("resumed from checkpoint" in p.message for p in seen)
    straight = train(examples, cfg=cfg)
    a, b = inference.Model.from_bytes(resumed.model), inference.Model.from_bytes(straight.model)
    for name in ("intent_emb", "intent_out_w", "tag_out_w"):
        np.testing.assert_allclose(a.arrays[name], b.arrays[name], rtol=1e-5, atol=1e-6)


def test_checkpoint_of_other_data_is_ignored(bot_data: dict[str, Any]) -> None:
    saved: list[bytes] = []
    examples = from_project(bot_data)
    cfg = TrainConfig(max_epochs=2, tagger_epochs=1, min_steps=0, tagger_min_steps=0, refit=False, threads=1)
    with pytest.raises(Interrupted):
        train(examples, cfg=cfg, hooks=Hooks(should_stop=lambda: True, save_checkpoint=saved.append))
    seen: list[Progress] = []
    train(examples[:-1], cfg=cfg, hooks=Hooks(load_checkpoint=lambda: saved[0], progress=seen.append))
    assert not any("resumed" in p.message for p in seen)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_events_are_rate_limited_and_never_go_backwards() -> None:
    clock = FakeClock()
    sent: list[Event] = []
    reporter = Reporter(sent.append, run_id="r1", token="tok", throttle=Throttle(1.0, clock=clock), clock_ms=lambda: 0)
    for i in range(50):  # 50 updates over 5 simulated seconds
        clock.now = i * 0.1
        reporter.progress(Progress("intent", 5.0 if i == 30 else float(i), "x"))
    times = [0.0, 1.0, 2.0, 3.0, 4.0]
    assert len(sent) == len(times)
    assert [e.data["seq"] for e in sent] == [1, 2, 3, 4, 5]
    assert all(e.extensions["jobplanetoken"] == "tok" and e.subject == "r1" for e in sent)
    assert sent[0].source == "/jobplane/trainer/r1" and sent[0].type == "dev.jobplane.run.progress"
    progress = [e.data["progress"] for e in sent]
    assert progress == sorted(progress)


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is absent (Snips subset test)")
@pytest.mark.timeout(900)  # real Snips data: minutes on a loaded 2-core machine
def test_snips_subset_trains_intents_and_slots() -> None:
    train_set: list[Example] = []
    test_set: list[Example] = []
    for folder in sorted((SHARED_DATA / "snips").iterdir()):
        if not folder.is_dir():
            continue
        name = folder.name
        raw = (folder / f"train_{name}_full.json").read_bytes()
        train_set += from_snips(json.loads(decode(raw, name=name, errors="replace")))[:40]
        val = (folder / f"validate_{name}.json").read_bytes()
        test_set += from_snips(json.loads(decode(val, name=name, errors="replace")))[:40]
    result = train(train_set, cfg=TrainConfig(tagger_epochs=20, tagger_min_steps=150, threads=1), test=test_set)
    assert result.summary["accuracy"] >= 0.9
    assert result.summary["entity_f1"] >= 0.5


def test_evaluate_scores_unseen_test_intents_as_errors(trained: Any) -> None:
    model = inference.Model.from_bytes(trained.model)
    report, _, conf = evaluate(model, [Example("hello", "greet"), Example("launch the rocket", "rocket")], labels=model.labels)
    assert report["accuracy"] == 0.5
    assert conf["labels"][-1] == "rocket"


def test_make_bot_is_deterministic() -> None:
    assert make_bot(seed=5) == make_bot(seed=5)
