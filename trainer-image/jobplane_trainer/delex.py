"""Delexicalised copies of training sentences for the intent model.

An utterance's entity values say less about its intent than the words around them: "I want to
see <movie>" asks for a screening whatever the movie is called, and a model that memorises the
training titles' n-grams misjudges the next title. Each training sentence with entities is added
once more with every value replaced by a placeholder word for its type (``play xartistx on
xservicex``), so the model also learns the contexts on their own. Training only: ``predict``
reads the raw text (no tagger runs before the intent model) and the validation split stays raw.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .data import Example, normalize


def placeholder(entity_type: str) -> str:
    """One lower-case word per entity type, unlike any real word (``movie_name`` → ``xmovienamex``)."""
    return "x" + re.sub(r"[^0-9a-z]", "", entity_type.lower()) + "x"


def delexicalise(ex: Example) -> Example:
    """``ex`` with each entity value replaced by its type's placeholder (no entities left)."""
    text, pos = "", 0
    for ent in sorted(ex.entities, key=lambda e: e.start):
        text += ex.text[pos : ent.start] + placeholder(ent.entity)
        pos = ent.end
    return Example(" ".join((text + ex.text[pos:]).split()), ex.intent)


def with_delexicalised(examples: Sequence[Example]) -> list[Example]:
    """``examples`` plus a delexicalised copy of each one with entities, unless that copy
    equals (case and spaces ignored) a sentence already there."""
    seen = {normalize(e.text) for e in examples}
    extra = [delexicalise(e) for e in examples if e.entities]
    return list(examples) + [e for e in extra if normalize(e.text) not in seen]
