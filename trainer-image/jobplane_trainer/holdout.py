"""The test split: examples kept out of training altogether (the refit included), stored with
the model so that a ``bot-test`` scores it on cases it never saw.

Stratified per intent and seeded: each intent with at least ``MIN_FOR_TEST`` examples gives
``round(n × fraction)`` of them (at least one), and keeps at least ``KEEP_IN_TRAINING`` for
training, so the validation split can still take one and leave two to train on. Smaller
intents give none (a tiny bot keeps every example it has). Utterances that are the same after
``normalize`` stay together, so no test case is also a training example in another spelling.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from typing import Final

from .data import Example, normalize

DEFAULT_FRACTION: Final = 0.1
"""Share of each intent's examples held out (spec param ``testSplit``; 0: none)."""
MIN_FOR_TEST: Final = 4
KEEP_IN_TRAINING: Final = 3
TEST_FILE: Final = "test.json"
"""The held-out examples, beside the model under the training run's artifacts."""


def hold_out(examples: Sequence[Example], *, fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """``(training, test)``: a stratified, seeded split of ``examples`` (order kept within each)."""
    groups: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, ex in enumerate(examples):
        groups[ex.intent][normalize(ex.text)].append(i)
    rng = random.Random(seed)
    held: set[int] = set()
    for intent in sorted(groups):
        texts = groups[intent]
        n = sum(len(ix) for ix in texts.values())
        if fraction <= 0 or n < MIN_FOR_TEST:
            continue
        want = min(max(1, round(n * fraction)), n - KEEP_IN_TRAINING)
        order = sorted(texts)
        rng.shuffle(order)
        taken = 0
        for text in order:
            if taken >= want:
                break
            if taken + len(texts[text]) <= n - KEEP_IN_TRAINING:
                held.update(texts[text])
                taken += len(texts[text])
    return ([ex for i, ex in enumerate(examples) if i not in held], [ex for i, ex in enumerate(examples) if i in held])
