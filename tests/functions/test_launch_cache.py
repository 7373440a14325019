"""The result cache through the launch and status functions' handlers: a training (or kb-index)
whose inputs match a succeeded run's is a ``CacheHit`` with no Job; a changed byte of data (of
an article), a changed param or ``force`` trains (indexes) again; only a promoted run's model
or index becomes the bot's through a hit."""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.fakes import FakeLauncher
from support.kb import ARTICLES, changed
from support.specs import TRAINING_EXAMPLES

from jobplane import cache, runs
from jobplane import conventions as c
from jobplane import events as ev
from jobplane.errors import ValidationError
from jobplane.handlers import launch, status
from jobplane.runtime import Runtime
from jobplane.settings import Settings
from jobplane.store import open_store

KEY = b"k" * 32


@dataclass
class Plane:
    rt: Runtime
    launcher: FakeLauncher

    def changed(self, id: str, *, revision: str, examples: list[dict[str, Any]] | None = None, **data: Any) -> runs.Run:
        body = {"botId": "pizza-bot", "revision": revision, "trainingData": {"examples": examples or TRAINING_EXAMPLES},
                **data}
        event = ev.new_event(ev.BOT_CHANGED, source="/platform/bots", id=id, subject="pizza-bot", data=body)
        launch.on_event(event, rt=self.rt)
        return runs.get_run(self.rt.store, runs.run_id_for("train-pizza-bot", source="/platform/bots", event_id=id))

    def requested(self, id: str, **data: Any) -> runs.Run:
        event = ev.new_event(ev.RUN_REQUESTED, source="/api", id=id, subject="train-pizza-bot",
                             data={"specId": "train-pizza-bot", **data})
        launch.on_event(event, rt=self.rt)
        return runs.get_run(self.rt.store, runs.run_id_for("train-pizza-bot", source="/api", event_id=id))

    def kb_changed(self, id: str, *, revision: str, articles: list[dict[str, Any]] | None = None) -> runs.Run:
        """A bot.changed with articles only: its run is the bot's kb-index run."""
        body = {"botId": "pizza-bot", "revision": revision, "knowledgeBase": {"articles": articles or ARTICLES}}
        launch.on_event(ev.new_event(ev.BOT_CHANGED, source="/platform/bots", id=id, subject="pizza-bot", data=body), rt=self.rt)
        return runs.get_run(self.rt.store, runs.run_id_for("kb-pizza-bot", source="/platform/bots", event_id=id))

    def kb_requested(self, id: str, **data: Any) -> runs.Run:
        event = ev.new_event(ev.RUN_REQUESTED, source="/api", id=id, subject="kb-pizza-bot",
                             data={"specId": "kb-pizza-bot", **data})
        launch.on_event(event, rt=self.rt)
        return runs.get_run(self.rt.store, runs.run_id_for("kb-pizza-bot", source="/api", event_id=id))

    def succeed(self, run: runs.Run, *, macro_f1: float = 0.88) -> runs.Run:
        """The trainer's final callback through the status function."""
        artifacts = f"{self.rt.store.url}/runs/{run['id']}/artifacts/"
        data: dict[str, Any] = {"metrics": {"accuracy": 0.9, "macro_f1": macro_f1}, "artifacts": {"model": artifacts + "model.npz"}}
        if run["type"] == "kb-index":
            data = {"metrics": {"articles": 4, "passages": 9}, "promote": True,
                    "artifacts": {"index": artifacts + "kb_index.npz", "manifest": artifacts + "kb_index.json"}}
        event = ev.new_event(ev.RUN_SUCCEEDED, source=f"/jobplane/trainer/{run['id']}", subject=run["id"], data=data,
                             extensions={c.TOKEN_EXTENSION: self.token_of(run)})
        status.on_event(event, rt=self.rt)
        return runs.get_run(self.rt.store, run["id"])

    def token_of(self, run: runs.Run) -> str:
        """The callback token the run's Job was given, as its trainer sends it."""
        job = self.launcher.jobs[run["job"]["name"]]
        env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
        return str(env[c.ENV_TOKEN])

    def pointer(self) -> dict[str, Any]:
        return json.loads(self.rt.store.read(c.bot_model_key("pizza-bot")).data)  # type: ignore[no-any-return]

    def index_pointer(self) -> dict[str, Any]:
        return json.loads(self.rt.store.read(c.bot_index_key("pizza-bot")).data)  # type: ignore[no-any-return]

    def newer_pointer(self, key: str) -> None:
        """A pointer naming a run created after any of the test's (a newer change's)."""
        self.rt.store.write(key, json.dumps({"runId": "newer", "runCreatedAt": "2999-01-01T00:00:00.000Z"}).encode())


@pytest.fixture
def plane(tmp_path: Path) -> Iterator[Plane]:
    store = open_store((tmp_path / "store").as_uri())
    launcher = FakeLauncher()
    settings = Settings(store_url=store.url, sink="http://127.0.0.1:9/default/default", callback_key=KEY, command=("true",))
    yield Plane(Runtime(settings=settings, store=store, launcher_factory=lambda: launcher, send=lambda e: None), launcher)


def test_a_second_identical_training_is_a_cache_hit_that_reuses_the_first_runs_model_with_no_job(plane: Plane) -> None:
    first = plane.succeed(plane.changed("evt-1", revision="r1"))
    second = plane.changed("evt-2", revision="r1-again")  # another revision name, the same bytes

    assert first["state"] == "succeeded" and first["cacheKey"]
    assert second["state"] == "skipped" and second["reason"] == "CacheHit"
    assert second["reusedRun"] == first["id"] and second["cachedFrom"]["runId"] == first["id"]
    assert second["cacheKey"] == first["cacheKey"]
    assert second["metrics"] == first["metrics"] and second["artifacts"]["model"] == first["artifacts"]["model"]
    assert plane.launcher.launch_calls == [first["id"]]  # no second Job
    assert [r["id"] for r in runs.list_runs(plane.rt.store, spec_id="train-pizza-bot")] == [second["id"], first["id"]]


def test_the_cache_entry_is_one_object_named_by_the_inputs_key(plane: Plane) -> None:
    first = plane.succeed(plane.changed("evt-1", revision="r1"))

    entry = json.loads(plane.rt.store.read(cache.entry_key("training", first["cacheKey"])).data)
    assert entry["runId"] == first["id"]
    assert list(plane.rt.store.list(cache.PREFIX)) == [cache.entry_key("training", first["cacheKey"])]


def test_a_run_that_has_not_succeeded_is_never_reused(plane: Plane) -> None:
    first = plane.changed("evt-1", revision="r1")  # launched, still running
    second = plane.changed("evt-2", revision="r1-again")

    assert first["cacheKey"] == second["cacheKey"]
    assert second["state"] == "launched" and len(plane.launcher.launch_calls) == 2


def test_a_changed_byte_of_training_data_trains_again(plane: Plane) -> None:
    plane.succeed(plane.changed("evt-1", revision="r1"))
    edited = copy.deepcopy(TRAINING_EXAMPLES)
    edited[0]["text"] = edited[0]["text"] + "!"
    second = plane.changed("evt-2", revision="r2", examples=edited)

    assert second["state"] == "launched" and "reusedRun" not in second
    assert len(plane.launcher.launch_calls) == 2


def test_a_changed_param_trains_again_and_the_same_param_again_is_a_hit(plane: Plane) -> None:
    plane.succeed(plane.changed("evt-1", revision="r1"))
    tuned = plane.succeed(plane.requested("req-1", params={"epochs": 7}))
    again = plane.requested("req-2", params={"epochs": 7})

    assert tuned["state"] == "succeeded" and len(plane.launcher.launch_calls) == 2
    assert again["reason"] == "CacheHit" and again["reusedRun"] == tuned["id"]


@pytest.mark.parametrize("how", ["bot.changed", "run.requested"])
def test_force_trains_again_and_its_run_then_names_the_inputs(plane: Plane, how: str) -> None:
    first = plane.succeed(plane.changed("evt-1", revision="r1"))
    forced = plane.changed("evt-2", revision="r1", force=True) if how == "bot.changed" else plane.requested("req-1", force=True)

    assert forced["state"] == "launched" and forced["cacheKey"] == first["cacheKey"]
    assert len(plane.launcher.launch_calls) == 2
    plane.succeed(forced)
    later = plane.changed("evt-3", revision="r1-again")
    assert later["reusedRun"] == forced["id"]  # the newest succeeded run with these inputs


def test_force_that_is_not_a_boolean_is_refused(plane: Plane) -> None:
    with pytest.raises(ValidationError) as refused:
        plane.changed("evt-1", revision="r1", force="yes")

    assert refused.value.problems[0].field == "data.force"


def test_a_bot_reverted_to_an_earlier_revision_gets_that_revisions_model_back(plane: Plane) -> None:
    r1 = plane.succeed(plane.changed("evt-1", revision="r1"))
    edited = [*copy.deepcopy(TRAINING_EXAMPLES), {"text": "cancel my table", "intent": "cancel"}]
    r2 = plane.succeed(plane.changed("evt-2", revision="r2", examples=edited))
    plane.rt.store.write(c.bot_model_key("pizza-bot"), json.dumps({"runId": r2["id"], "metrics": {}}).encode())
    reverted = plane.changed("evt-3", revision="r3")  # r1's examples again

    assert reverted["reason"] == "CacheHit" and reverted["reusedRun"] == r1["id"]
    pointer = plane.pointer()
    assert pointer["runId"] == r1["id"] and pointer["modelUri"] == r1["artifacts"]["model"]
    assert pointer["reusedBy"] == reverted["id"]


def test_a_cache_hit_supersedes_the_bots_older_active_run(plane: Plane) -> None:
    r1 = plane.succeed(plane.changed("evt-1", revision="r1"))
    edited = [*copy.deepcopy(TRAINING_EXAMPLES), {"text": "cancel my table", "intent": "cancel"}]
    r2 = plane.changed("evt-2", revision="r2", examples=edited)  # still training
    reverted = plane.changed("evt-3", revision="r3")

    assert reverted["reusedRun"] == r1["id"]
    assert runs.get_run(plane.rt.store, r2["id"])["state"] == "superseded"
    assert r2["id"] in plane.launcher.cancelled


def test_a_model_the_gate_refused_is_a_hit_that_leaves_the_bots_model_alone(plane: Plane) -> None:
    r1 = plane.succeed(plane.changed("evt-1", revision="r1"))
    edited = [*copy.deepcopy(TRAINING_EXAMPLES), {"text": "cancel my table", "intent": "cancel"}]
    worse = plane.succeed(plane.changed("evt-2", revision="r2", examples=edited), macro_f1=0.5)
    again = plane.changed("evt-3", revision="r2-again", examples=edited)

    assert worse["promoted"] is False and plane.pointer()["runId"] == r1["id"]
    assert again["reason"] == "CacheHit" and again["reusedRun"] == worse["id"]
    assert again["cachedFrom"]["promoted"] is False and "not promoted" in again["message"]
    assert "modelUri" not in again and again["artifacts"]["model"] == worse["artifacts"]["model"]
    assert plane.pointer()["runId"] == r1["id"]  # the refused model never becomes the bot's
    assert len(plane.launcher.launch_calls) == 2


def test_a_model_the_gate_never_judged_is_a_miss_and_trains_again(plane: Plane) -> None:
    plane.newer_pointer(c.bot_model_key("pizza-bot"))
    kept = plane.succeed(plane.changed("evt-1", revision="r1"))  # kept out: the pointer names a newer run
    again = plane.changed("evt-2", revision="r1-again")

    assert kept["promoted"] is False
    assert again["state"] == "launched" and "reusedRun" not in again
    assert plane.pointer()["runId"] == "newer" and len(plane.launcher.launch_calls) == 2


def test_a_second_identical_kb_index_is_a_cache_hit_with_no_job_and_the_pointer_names_the_reused_index(plane: Plane) -> None:
    first = plane.succeed(plane.kb_changed("evt-1", revision="r1"))
    second = plane.kb_changed("evt-2", revision="r2")  # another object, the same articles

    assert first["type"] == "kb-index" and first["state"] == "succeeded" and first["promoted"] is True
    assert second["state"] == "skipped" and second["reason"] == "CacheHit"
    assert second["reusedRun"] == first["id"] and second["cacheKey"] == first["cacheKey"]
    assert second["indexUri"] == first["indexUri"] and second["metrics"] == first["metrics"]
    assert plane.launcher.launch_calls == [first["id"]]
    assert (plane.index_pointer()["runId"], plane.index_pointer()["indexUri"]) == (first["id"], first["indexUri"])
    assert runs.get_run(plane.rt.store, second["id"]) == second  # what GET /v1/runs/{id} answers


def test_a_knowledge_base_reverted_to_earlier_articles_gets_that_index_back(plane: Plane) -> None:
    first = plane.succeed(plane.kb_changed("evt-1", revision="r1"))
    edited = plane.succeed(plane.kb_changed("evt-2", revision="r2", articles=changed(ARTICLES, "interest", "3% a year.")))
    reverted = plane.kb_changed("evt-3", revision="r3")

    assert plane.launcher.launch_calls == [first["id"], edited["id"]]
    assert reverted["reusedRun"] == first["id"]
    pointer = plane.index_pointer()
    assert (pointer["runId"], pointer["indexUri"], pointer["reusedBy"]) == (first["id"], first["indexUri"], reverted["id"])


def test_a_kb_hit_never_moves_the_index_pointer_back_behind_a_newer_change(plane: Plane) -> None:
    first = plane.succeed(plane.kb_changed("evt-1", revision="r1"))
    plane.newer_pointer(c.bot_index_key("pizza-bot"))
    again = plane.kb_changed("evt-2", revision="r2")

    assert again["reason"] == "CacheHit" and again["reusedRun"] == first["id"]
    assert plane.index_pointer()["runId"] == "newer"


def test_one_changed_article_byte_reindexes(plane: Plane) -> None:
    plane.succeed(plane.kb_changed("evt-1", revision="r1"))
    text = next(a["text"] for a in ARTICLES if a["id"] == "interest")
    again = plane.kb_changed("evt-2", revision="r2", articles=changed(ARTICLES, "interest", text + "!"))

    assert again["state"] == "launched" and "reusedRun" not in again and len(plane.launcher.launch_calls) == 2


def test_a_changed_kb_param_reindexes_and_its_default_spelled_out_is_a_hit(plane: Plane) -> None:
    first = plane.succeed(plane.kb_changed("evt-1", revision="r1"))
    spelled = plane.kb_requested("req-1", params={"maxWords": 80, "overlap": 20})
    shorter = plane.kb_requested("req-2", params={"maxWords": 60})

    assert spelled["reason"] == "CacheHit" and spelled["reusedRun"] == first["id"]
    assert shorter["state"] == "launched" and len(plane.launcher.launch_calls) == 2


def test_force_reindexes(plane: Plane) -> None:
    first = plane.succeed(plane.kb_changed("evt-1", revision="r1"))
    forced = plane.kb_requested("req-1", force=True)

    assert forced["state"] == "launched" and forced["cacheKey"] == first["cacheKey"]
    assert len(plane.launcher.launch_calls) == 2


def test_an_index_that_was_not_promoted_never_becomes_the_bots_through_a_hit(plane: Plane) -> None:
    plane.newer_pointer(c.bot_index_key("pizza-bot"))
    kept = plane.succeed(plane.kb_changed("evt-1", revision="r1"))
    again = plane.kb_changed("evt-2", revision="r2")

    assert kept["promoted"] is False
    assert again["state"] == "launched" and "reusedRun" not in again  # indexed again, judged on its own
    assert plane.index_pointer()["runId"] == "newer"


def test_the_cache_key_follows_the_trainer_version() -> None:
    sys.path.insert(0, str(Path(__file__).parents[2] / "trainer-image"))
    import jobplane_trainer

    assert cache.TRAINER_VERSION == jobplane_trainer.__version__
