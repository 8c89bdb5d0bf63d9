"""Two cognitive-reframing tasks (Sharma et al. 2023, "Cognitive reframing of negative
thoughts through human-language model interaction"):

* ``thinking-traps``: which thinking trap a thought shows - classification over the 13
  traps + "not distorted", the label constrained by a JSON-schema enum; macro-F1 is the
  headline. A thought may have several gold traps (the public data is multi-label): an
  answer is correct when it names any of them, and for the F1 counts its true label is
  the gold trap it named (else the first gold trap, alphabetically).
* ``reframe``: given a situation, a thought and its traps, the model writes a reframe,
  scored for
  - ``trap_addressed``: the share of the thought's traps the trained ``thinking-traps``
    measurer no longer finds in the reframe (``trap_reduction``: mean drop in the trap's
    probability from thought to reframe; ``traps_in_reframe``: traps the measurer finds
    in the reframe). No trained measurer -> ``PrerequisiteError`` with the command to
    train it; the task never scores the trap some other way.
  - ``positivity`` and ``actionability``: rule-based lexicon proxies
    (``_reframe_scores``), since Sharma et al.'s own models do not ship with mindcommons.

Sources: ``load(None)`` uses thoughts and situations written for this project;
``load(path)`` reads the Cognitive-Reframing folder or file (``thinking_traps.jsonl`` /
``reframing_dataset.csv``; CC BY-NC-ND 4.0, see ``mindcommons.datasets.thinking_traps``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mindcommons.datasets.thinking_traps import (
    NOT_DISTORTED,
    TRAPS,
    canonical_trap,
    load_reframing,
    load_thinking_traps,
)
from mindcommons.errors import InputError
from mindcommons.models.base import GenerateConfig, Generation, Message
from mindcommons.suite import SUITE_TASKS
from mindcommons.suite.base import Aggregate, Sample, Score
from mindcommons.suite.tasks._measurers import Measurer, load_named, predict_one
from mindcommons.suite.tasks._reframe_scores import actionability, positivity
from mindcommons.suite.tasks._traps import DEFINITIONS, LABELS, SITUATIONS, THOUGHTS

TRAP_SCHEMA: dict[str, object] = {
    "type": "object",
    "properties": {"trap": {"type": "string", "enum": list(LABELS)}},
    "required": ["trap"],
}
TRAP_SYSTEM = (
    "You identify thinking traps (unhelpful thinking patterns) in a person's thought. "
    "The possible answers are:\n"
    + "\n".join(f"- {label}: {DEFINITIONS[label]}" for label in LABELS)
)
REFRAME_SYSTEM = (
    "You help people reframe negative thoughts. A reframe is a more balanced, hopeful and "
    "realistic way of seeing the situation, written in the first person, that addresses "
    "the thinking trap and, where it helps, names a small next step."
)
REFRAME_MAX_TOKENS = 120


def _digest(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()[:12]


def trap_sample(thought: str, gold: Sequence[str]) -> Sample:
    """A thinking-trap identification Sample; ``gold``: its traps (empty: not distorted)."""
    labels = sorted(gold) or [NOT_DISTORTED]
    return Sample(
        id=f"traps-{_digest(thought)}",
        messages=(
            Message("system", TRAP_SYSTEM),
            Message(
                "user",
                f"Thought: {thought.strip()}\n\nWhich thinking trap does this thought show? "
                'Answer with JSON: {"trap": "<one of the answers>"}.',
            ),
        ),
        target=labels[0],
        data={"thought": thought, "gold": labels},
    )


def parse_trap(text: str) -> str | None:
    """The trap named by a JSON answer ``{"trap": ...}`` (spelling variants merged)."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        obj = json.loads(text[start : end + 1])
    except json.JSONDecodeError:
        return None
    value = obj.get("trap") if isinstance(obj, dict) else None
    return canonical_trap(value) if isinstance(value, str) else None


@dataclass(frozen=True)
class ThinkingTrapsTask:
    """Name the thinking trap of a thought (13 traps + not distorted); macro-F1."""

    name: str = "thinking-traps"
    description: str = (
        "Thinking-trap identification over 13 traps + 'not distorted' (Sharma et al. 2023), "
        "answer constrained by a JSON-schema enum; macro-F1"
    )
    aggregates: tuple[Aggregate, ...] = (
        Aggregate("macro_f1", "macro_f1", labels=LABELS),
        Aggregate("accuracy", "accuracy", labels=LABELS),
    )
    primary: str = "macro_f1"

    def load(self, source: Path | None, *, limit: int | None = None, seed: int = 0) -> list[Sample]:
        if source is None:
            samples = [trap_sample(thought, [trap]) for thought, trap in THOUGHTS]
        else:
            samples = [trap_sample(r.thought, sorted(r.traps)) for r in load_thinking_traps(source)]
        return samples if limit is None else samples[:limit]

    def generate_config(self, sample: Sample, seed: int = 0) -> GenerateConfig:
        return GenerateConfig(max_tokens=24, temperature=0.0, seed=seed, json_schema=TRAP_SCHEMA)

    def score(self, sample: Sample, generation: Generation) -> Score:
        gold = _strings(sample, "gold")
        predicted = parse_trap(generation.text)
        correct = predicted is not None and predicted in gold
        return Score(
            sample_id=sample.id,
            values={"correct": 1.0 if correct else 0.0},
            label_true=predicted if correct else gold[0],
            label_pred=predicted,
            flags=() if predicted is not None else ("unparsed",),
        )


def reframe_sample(situation: str, thought: str, traps: Sequence[str]) -> Sample:
    """A reframe-generation Sample for (situation, thought) with its traps."""
    named = ", ".join(sorted(traps)) or NOT_DISTORTED
    prompt = (
        f"Situation: {situation.strip()}\nThought: {thought.strip()}\n"
        f"Thinking trap(s) in this thought: {named}.\n\n"
        "Write a reframe of the thought in one to three sentences."
    )
    return Sample(
        id=f"reframe-{_digest(situation, thought)}",
        messages=(Message("system", REFRAME_SYSTEM), Message("user", prompt)),
        data={"situation": situation, "thought": thought, "traps": sorted(traps)},
    )


def score_reframe(
    sample_id: str, thought: str, traps: Sequence[str], reframe: str, measurer: Measurer
) -> Score:
    """Trap addressed (measurer), positivity and actionability (lexicon) of ``reframe``."""
    flags: list[str] = []
    if not reframe.strip():
        flags.append("empty_output")
    before = predict_one(measurer, thought, traps)
    after = predict_one(measurer, reframe, TRAPS)
    values: dict[str, float] = {}
    if traps:
        addressed = [after.labels[t] != "1" for t in traps]
        drops = [before.probs[t].get("1", 0.0) - after.probs[t].get("1", 0.0) for t in traps]
        values["trap_addressed"] = sum(addressed) / len(addressed)
        values["trap_reduction"] = round(sum(drops) / len(drops), 4)
        if not all(addressed):
            flags.append("trap_remains")
    values["traps_in_reframe"] = float(sum(1 for t in TRAPS if after.labels[t] == "1"))
    values["positivity"] = positivity(reframe).score
    values["actionability"] = actionability(reframe).score
    return Score(sample_id=sample_id, values=values, flags=tuple(flags))


@dataclass(frozen=True)
class ReframeTask:
    """Reframe a negative thought; trap addressed (measurer), positivity, actionability."""

    name: str = "reframe"
    description: str = (
        "Reframe a negative thought (Sharma et al. 2023): thinking trap addressed (trained "
        "thinking-traps measurer), positivity and actionability (lexicon proxies)"
    )
    aggregates: tuple[Aggregate, ...] = (
        Aggregate("trap_addressed", "mean", "trap_addressed"),
        Aggregate("trap_reduction", "mean", "trap_reduction"),
        Aggregate("traps_in_reframe", "mean", "traps_in_reframe", higher_is_better=False),
        Aggregate("positivity", "mean", "positivity"),
        Aggregate("actionability", "mean", "actionability"),
    )
    primary: str = "trap_addressed"
    measurer: Measurer | None = None  # None: load the trained "thinking-traps" model
    measurer_name: str = "thinking-traps"
    max_tokens: int = REFRAME_MAX_TOKENS
    _loaded: dict[str, Measurer] = field(default_factory=dict, compare=False, repr=False)

    def scorer(self) -> Measurer:
        """The measurer in use (loaded once); PrerequisiteError when none is trained."""
        if self.measurer is not None:
            return self.measurer
        if "m" not in self._loaded:
            self._loaded["m"] = load_named(self.measurer_name)
        return self._loaded["m"]

    def load(self, source: Path | None, *, limit: int | None = None, seed: int = 0) -> list[Sample]:
        if source is None:
            samples = [reframe_sample(s, t, traps) for s, t, traps in SITUATIONS]
        else:
            grouped: dict[tuple[str, str], set[str]] = {}
            for row in load_reframing(source):
                grouped.setdefault((row.situation, row.thought), set()).update(row.traps)
            samples = [reframe_sample(s, t, sorted(tr)) for (s, t), tr in grouped.items()]
        return samples if limit is None else samples[:limit]

    def generate_config(self, sample: Sample, seed: int = 0) -> GenerateConfig:
        self.scorer()  # stop before the first generation when no measurer is trained
        return GenerateConfig(max_tokens=self.max_tokens, temperature=0.0, seed=seed)

    def score(self, sample: Sample, generation: Generation) -> Score:
        thought = sample.data.get("thought")
        if not isinstance(thought, str):
            raise InputError(
                "sample has no thought", record=sample.id, field="data.thought", expected="text"
            )
        traps = _strings(sample, "traps", allow_empty=True)
        return score_reframe(sample.id, thought, traps, generation.text, self.scorer())


def _strings(sample: Sample, key: str, *, allow_empty: bool = False) -> list[str]:
    value: Any = sample.data.get(key)
    if (
        not isinstance(value, list)
        or not all(isinstance(v, str) for v in value)
        or (not value and not allow_empty)
    ):
        raise InputError(
            f"sample has no {key} list", record=sample.id, field=f"data.{key}", expected="labels"
        )
    return list(value)


THINKING_TRAPS = ThinkingTrapsTask()
REFRAME = ReframeTask()
SUITE_TASKS.add(THINKING_TRAPS.name, THINKING_TRAPS)
SUITE_TASKS.add(REFRAME.name, REFRAME)
