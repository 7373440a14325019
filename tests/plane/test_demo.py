"""``jobplane demo`` end to end with the real trainer, on a smaller bot to keep it quick."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from jobplane.demo import run_demo, sample_bot


@pytest.mark.slow
def test_the_demo_trains_a_bot_prints_its_figures_and_classifies_new_utterances(tmp_path: Path) -> None:
    bot = sample_bot()
    keep = {"greet", "goodbye", "branch_hours", "check_balance"}
    bot["examples"] = [e for e in bot["examples"] if e["intent"] in keep]
    bot["newUtterances"] = ["what time do you open on Monday", "hello there"]
    path = tmp_path / "bot.json"
    path.write_text(json.dumps(bot))
    out = io.StringIO()

    code = run_demo(data_dir=tmp_path / "data", bot_path=path, timeout=240, out=out)

    text = out.getvalue()
    assert code == 0, text
    assert "accuracy" in text and "macro_f1" in text and "confusion matrix" in text
    assert "bot.changed → trained model:" in text
    assert "'hello there'" in text and " → greet" in text
    assert (tmp_path / "data" / "store" / "bots" / bot["botId"] / "model.json").exists()


def test_the_demo_fails_fast_with_the_reason_when_the_event_is_rejected(tmp_path: Path) -> None:
    bot = sample_bot()
    bot["examples"] = [{"text": "hi", "intent": "greet", "entities": [{"start": 5, "end": 1, "entity": "x", "value": "?"}]}]
    path = tmp_path / "bot.json"
    path.write_text(json.dumps(bot))
    out = io.StringIO()

    code = run_demo(data_dir=tmp_path / "data", bot_path=path, timeout=60, out=out)

    text = out.getvalue()
    assert code == 1 and "rejected the event" in text and "HTTP 400" in text, text
