"""Thinking-trap data (Sharma et al., ACL 2023, behavioral-data/Cognitive-Reframing).

* ``thinking_traps.jsonl``: one ``{"prompt": "<thought> ->", "completion": " <trap>"}`` per
  line; a thought may appear on several lines with different traps. ``load_thinking_traps``
  groups lines by thought into a multi-label record (an empty set means "not distorted").
  Spelling variants are merged into the 13 canonical traps of ``TRAPS``
  (``magnification`` counts as ``catastrophizing``, as in Burns' list).
* ``reframing_dataset.csv``: ``situation, thought, reframe, thinking_traps_addressed``
  (comma-separated traps or ``none``); ``load_reframing`` reads it.

Licence: CC BY-NC-ND 4.0 (non-commercial, no derivatives; attribution: cite Sharma et al.
2023). mindcommons ships no text from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mindcommons.datasets._csvread import decode, read_rows, resolve, text_field
from mindcommons.errors import InputError
from mindcommons.jsonl import parse_jsonl

LICENCE = "Cognitive-Reframing (Sharma et al. 2023): CC BY-NC-ND 4.0, non-commercial."
TRAPS: tuple[str, ...] = (
    "all-or-nothing thinking",
    "blaming",
    "catastrophizing",
    "comparing and despairing",
    "disqualifying the positive",
    "emotional reasoning",
    "fortune telling",
    "labeling",
    "mind reading",
    "negative feeling or emotion",
    "overgeneralizing",
    "personalizing",
    "should statements",
)
NOT_DISTORTED = "not distorted"
_ALIASES = {
    "overgeneralization": "overgeneralizing",
    "personalization": "personalizing",
    "comparing": "comparing and despairing",
    "magnification": "catastrophizing",  # Burns' "magnification (catastrophizing)"
    "none": NOT_DISTORTED,
}


def canonical_trap(name: str) -> str | None:
    """The canonical trap for a spelling variant; ``NOT_DISTORTED``; None if unknown."""
    key = " ".join(name.strip().lower().split())
    key = _ALIASES.get(key, key)
    if key == NOT_DISTORTED or key in TRAPS:
        return key
    return None


@dataclass(frozen=True)
class ThoughtTraps:
    """A thought and the set of thinking traps annotators saw in it (empty: none)."""

    thought: str
    traps: frozenset[str]


@dataclass(frozen=True)
class ReframingRow:
    situation: str
    thought: str
    reframe: str
    traps: frozenset[str]


def load_thinking_traps(path: str | Path) -> list[ThoughtTraps]:
    """Thoughts with their trap sets, in order of first appearance."""
    file = resolve(path, "thinking_traps.jsonl")
    grouped: dict[str, set[str]] = {}
    for n, obj in parse_jsonl(decode(file).split("\n"), file=str(file)):
        prompt, completion = obj.get("prompt"), obj.get("completion")
        if not isinstance(prompt, str) or not prompt.strip():
            raise InputError("missing thought", file=str(file), record=n, field="prompt")
        if not isinstance(completion, str):
            raise InputError("missing trap", file=str(file), record=n, field="completion")
        trap = canonical_trap(completion)
        if trap is None:
            raise InputError(
                f"unknown thinking trap {completion.strip()!r}",
                file=str(file),
                record=n,
                field="completion",
                expected="one of " + ", ".join(TRAPS) + " or 'not distorted'",
            )
        thought = prompt.strip()
        if thought.endswith("->"):
            thought = thought[:-2].rstrip()
        traps = grouped.setdefault(thought, set())
        if trap != NOT_DISTORTED:
            traps.add(trap)
    return [ThoughtTraps(t, frozenset(s)) for t, s in grouped.items()]


def load_reframing(path: str | Path) -> list[ReframingRow]:
    """Rows of ``reframing_dataset.csv`` with their addressed traps parsed."""
    file = resolve(path, "reframing_dataset.csv")
    out = []
    for line, row in read_rows(
        file, ("situation", "thought", "reframe", "thinking_traps_addressed")
    ):
        traps: set[str] = set()
        for part in row["thinking_traps_addressed"].split(","):
            if not part.strip():
                continue
            trap = canonical_trap(part)
            if trap is None:
                raise InputError(
                    f"unknown thinking trap {part.strip()!r}",
                    file=str(file),
                    record=line,
                    field="thinking_traps_addressed",
                    expected="comma-separated traps or 'none'",
                )
            if trap != NOT_DISTORTED:
                traps.add(trap)
        out.append(
            ReframingRow(
                situation=row["situation"].strip(),
                thought=text_field(file, line, row, "thought").strip(),
                reframe=text_field(file, line, row, "reframe").strip(),
                traps=frozenset(traps),
            )
        )
    return out
