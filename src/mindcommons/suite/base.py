"""The audit-suite task contract: a task turns a data source into Samples, the model answers
each, the task scores each answer into numbers. Text never leaves the site; Scores do.

A task module registers one ``AuditTask`` in ``SUITE_TASKS`` (see ``__init__``). The runner
(``mindcommons.suite.runner``) owns everything generic: resume journal, energy, bootstrap
intervals, disaggregation by subgroup and language, paired gaps, report card.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from mindcommons.models.base import GenerateConfig, Generation, Message

AggregateKind = Literal["mean", "accuracy", "weighted_f1", "macro_f1"]


@dataclass(frozen=True)
class Sample:
    """One thing to ask the model, with what its scorer needs.

    ``pair``/``variant``: samples sharing ``pair`` are the same item in different variants
    (a counterfactual demographic cue, or a language in ``xling``); the runner reports the
    paired gap of each variant to the pair's ``baseline`` variant with an interval.
    ``attributes``: subgroup columns for disaggregated metrics (e.g. gender, dialect,
    country). ``data``: task-private scorer inputs (reference facts, gold spans); they
    stay at the site like the text.
    """

    id: str
    messages: tuple[Message, ...]
    target: str | None = None  # gold label or reference answer
    language: str = "en"
    attributes: Mapping[str, str] = field(default_factory=dict)
    pair: str | None = None
    variant: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    # The variant this sample's pair is compared against. A field with a default, so
    # ``Sample.baseline`` (class level) is still "baseline"; a task whose reference variant
    # has a natural name sets it per sample (``xling``: variant = language, baseline = "en").
    # Runners read ``sample.baseline`` (all samples of one pair carry the same value).
    baseline: str = "baseline"


@dataclass(frozen=True)
class Score:
    """A scored answer: numbers and labels only (safe to journal and to aggregate).

    ``values``: per-sample results (e.g. ``{"pass": 1.0, "readability": 62.3}``); a key
    absent means "not applicable to this sample". ``label_true``/``label_pred`` feed the
    F1/accuracy aggregates (``label_pred`` None = unparseable answer, counted wrong).
    ``confidence``: the model's probability for ``label_pred``, for calibration (ECE,
    Brier). ``flags``: named events worth counting (e.g. "harmful", "false_alarm").
    """

    sample_id: str
    values: Mapping[str, float] = field(default_factory=dict)
    label_true: str | None = None
    label_pred: str | None = None
    confidence: float | None = None
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Aggregate:
    """How a headline metric is computed from Scores.

    ``mean``: mean of ``Score.values[value]`` over samples that have it; ``accuracy``,
    ``weighted_f1``, ``macro_f1``: from (label_true, label_pred).
    ``labels``: the label set of a label aggregate (optional). A federated run needs it to
    lay out the confusion counts every site sends (label names never travel from a site);
    without it the runner uses the labels of the task's synthetic samples.
    """

    name: str
    kind: AggregateKind
    value: str | None = None
    higher_is_better: bool = True
    labels: tuple[str, ...] = ()


@runtime_checkable
class AuditTask(Protocol):
    """What every audit-suite task provides."""

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def aggregates(self) -> tuple[Aggregate, ...]: ...

    @property
    def primary(self) -> str:
        """Name of the headline aggregate."""
        ...

    def load(self, source: Path | None, *, limit: int | None = None, seed: int = 0) -> list[Sample]:
        """Samples from ``source`` (the task's own JSONL, or a public dataset's folder/file
        where the task has a loader); ``None`` = project-generated synthetic samples."""
        ...

    def generate_config(self, sample: Sample, seed: int = 0) -> GenerateConfig: ...

    def score(self, sample: Sample, generation: Generation) -> Score: ...
