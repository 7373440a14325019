"""Which succeeded runs the result cache reuses, and whether a hit may move the bot's pointer
(``cache.standing``): promoted ones fully, ones the gate judged and refused (or was told not
to promote) without moving it, ones the gate never judged not at all."""

from __future__ import annotations

from typing import Any

import pytest

from jobplane import cache

BOT_RUN = {"id": "r", "type": "training", "botId": "b", "state": "succeeded"}


@pytest.mark.parametrize(("run", "expected"), [
    (BOT_RUN | {"promoted": True, "gate": {"decision": "promoted"}}, cache.PROMOTED),
    ({"id": "r", "type": "training", "state": "succeeded"}, cache.PROMOTED),  # no bot: no pointer to move
    (BOT_RUN | {"type": "bot-test"}, cache.PROMOTED),  # a type that promotes nothing
    (BOT_RUN | {"promoted": False, "gate": {"metric": "macro_f1", "candidate": 0.5, "current": 0.9, "margin": 0.02,
                                             "decision": "kept current: candidate worse by more than the margin"}},
     cache.REFUSED),
    (BOT_RUN | {"promoted": False, "gate": {"decision": "not requested (params.promote: false)"}}, cache.REFUSED),
    (BOT_RUN | {"promoted": False, "gate": {"metric": "macro_f1", "candidate": 0.9, "current": 0.9, "margin": 0.02,
                                             "decision": "kept current: run x is newer"}}, cache.UNJUDGED),
    (BOT_RUN | {"type": "kb-index", "promoted": False, "gate": {"decision": "kept current: run x is newer"}},
     cache.UNJUDGED),
    (BOT_RUN, cache.UNJUDGED),  # the gate has not decided yet
])
def test_a_runs_standing_follows_its_promotion(run: dict[str, Any], expected: str) -> None:
    assert cache.standing(run) == expected
