"""A small test-only audit task (yes/no questions) used by the suite tests.

Imported by the tests and, through PYTHONPATH, by the subprocess of the resume test.
Registered in SUITE_TASKS as ``toy`` on import.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mindcommons.models.base import GenerateConfig, Generation, Message
from mindcommons.suite import SUITE_TASKS
from mindcommons.suite.base import Aggregate, Sample, Score

QUESTIONS = (
    ("Is the sky blue on a clear day?", "yes"),
    ("Is fire cold?", "no"),
    ("Do fish live in water?", "yes"),
    ("Can a cat fly?", "no"),
    ("Is snow white?", "yes"),
    ("Is the sun a planet?", "no"),
)


@dataclass(frozen=True)
class ToyTask:
    """Yes/no questions in two variants (plain, polite) and two languages tags."""

    name: str = "toy"
    description: str = "Answer yes or no (test-only task)."
    aggregates: tuple[Aggregate, ...] = (
        Aggregate("accuracy", "accuracy", labels=("yes", "no")),
        Aggregate("macro_f1", "macro_f1", labels=("yes", "no")),
        Aggregate("answer_words", "mean", "words", higher_is_better=False),
    )
    primary: str = "accuracy"
    max_tokens: int = 8

    def load(self, source: Path | None, *, limit: int | None = None, seed: int = 0) -> list[Sample]:
        samples: list[Sample] = []
        for i, (question, answer) in enumerate(QUESTIONS):
            for variant, prefix in (("baseline", ""), ("polite", "Please tell me: ")):
                samples.append(
                    Sample(
                        id=f"q{i}-{variant}",
                        messages=(
                            Message("system", "Answer with one word: yes or no."),
                            Message("user", prefix + question),
                        ),
                        target=answer,
                        language="en" if i % 2 == 0 else "es",
                        attributes={"group": "a" if i < 3 else "b"},
                        pair=f"q{i}",
                        variant=variant,
                    )
                )
        return samples[:limit] if limit else samples

    def generate_config(self, sample: Sample, seed: int = 0) -> GenerateConfig:
        return GenerateConfig(max_tokens=self.max_tokens, temperature=0.0, seed=seed)

    def score(self, sample: Sample, generation: Generation) -> Score:
        text = generation.text.strip().lower()
        pred = "yes" if "yes" in text else "no" if "no" in text else None
        return Score(
            sample_id=sample.id,
            values={"words": float(len(text.split()))},
            label_true=sample.target,
            label_pred=pred,
            confidence=0.9 if pred == "yes" else 0.6,
        )


TOY = ToyTask()
if "toy" not in SUITE_TASKS:
    SUITE_TASKS.add("toy", TOY)
