"""The result cache through the launch and status functions' handlers: a training whose inputs
match a succeeded run's is a ``CacheHit`` with no Job; a changed byte of data, a changed param
or ``force`` trains again."""

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

    def succeed(self, run: runs.Run) -> runs.Run:
        """The trainer's final callback through the status function."""
        model = f"{self.rt.store.url}/runs/{run['id']}/artifacts/model.npz"
        data = {"metrics": {"accuracy": 0.9, "macro_f1": 0.88}, "artifacts": {"model": model}}
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


def test_the_cache_key_follows_the_trainer_version() -> None:
    sys.path.insert(0, str(Path(__file__).parents[2] / "trainer-image"))
    import jobplane_trainer

    assert cache.TRAINER_VERSION == jobplane_trainer.__version__
