"""Rule-based proxies for two reframe attributes of Sharma et al. (2023).

Sharma et al. measure *positivity* with a sentiment model and *actionability* with a
trained classifier; neither ships with mindcommons, so the ``reframe`` task uses
transparent lexicon proxies (rules as data in ``_reframe_lexicon.json``, English):

* ``positivity(text)`` in [-1, 1]: (positive - negative) / (positive + negative) over
  sentiment words, a negator up to three words before a word flipping its polarity
  ("not a failure" counts positive); 0.0 when no sentiment word occurs.
* ``actionability(text)`` in [0, 1]: how many distinct action cues (first-person intent
  followed by a verb, "next time", "try to", asking or talking to someone, making a plan,
  ...) the text contains, capped at two: 0 none, 0.5 one, 1.0 two or more.

Both explain themselves (``matched`` cue lists) so a reviewer can check a score.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

NEGATION_WINDOW = 3
ACTION_CAP = 2
_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|n't")


@functools.cache
def _lexicon() -> Mapping[str, Any]:
    text = resources.files(__package__).joinpath("_reframe_lexicon.json").read_text("utf-8")
    data: Mapping[str, Any] = json.loads(text)
    return data


@functools.cache
def _action_patterns() -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in _lexicon()["action_patterns"])


@dataclass(frozen=True)
class Positivity:
    score: float  # [-1, 1]
    positive: tuple[str, ...]
    negative: tuple[str, ...]


@dataclass(frozen=True)
class Actionability:
    score: float  # [0, 1]
    matched: tuple[str, ...]


def positivity(text: str) -> Positivity:
    """Lexicon positivity of ``text`` with negation flipping (see module docstring)."""
    lex = _lexicon()
    positive_words, negative_words = set(lex["positive"]), set(lex["negative"])
    negators = set(lex["negators"])
    tokens = _TOKEN.findall(text.lower().replace("’", "'"))
    pos: list[str] = []
    neg: list[str] = []
    for i, token in enumerate(tokens):
        polarity = 1 if token in positive_words else -1 if token in negative_words else 0
        if not polarity:
            continue
        window = tokens[max(0, i - NEGATION_WINDOW) : i]
        if any(w in negators or w.endswith("n't") for w in window):
            polarity = -polarity
            token = f"not {token}"
        (pos if polarity > 0 else neg).append(token)
    total = len(pos) + len(neg)
    score = (len(pos) - len(neg)) / total if total else 0.0
    return Positivity(round(score, 4), tuple(pos), tuple(neg))


def actionability(text: str) -> Actionability:
    """Distinct action cues in ``text``, scored 0 / 0.5 / 1 (see module docstring)."""
    matched = []
    for pattern in _action_patterns():
        found = pattern.search(text.replace("’", "'"))
        if found:
            matched.append(found.group(0))
    return Actionability(min(len(matched), ACTION_CAP) / ACTION_CAP, tuple(matched))
