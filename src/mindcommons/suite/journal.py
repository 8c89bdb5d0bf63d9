"""The append-only run journal: one JSON line per scored sample (numbers and labels, no text).

A run folder holds ``journal.jsonl``. Its first line describes the run (``kind: run``);
every scored sample is one ``kind: sample`` line written (and fsynced) as soon as it is
scored; energy measurements are ``kind: energy`` lines. A run started again on the same
folder reads the journal, skips every (task, sample id) already there, and appends. A line
torn by a crash mid-write (the last line, without its newline) is cut off before appending;
nothing else is ever rewritten.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mindcommons.errors import ConfigError, InputError
from mindcommons.jsonl import read_jsonl
from mindcommons.models.base import Generation
from mindcommons.suite.base import Sample, Score

JOURNAL = "journal.jsonl"
JOURNAL_VERSION = 1
# Run settings that must match for a journal to be resumed (others may change).
RESUME_KEYS = ("model", "seed")


@dataclass(frozen=True)
class ScoredSample:
    """One journaled sample: its Score, grouping fields and cost. Holds no text."""

    task: str
    sample_id: str
    language: str = "en"
    attributes: Mapping[str, str] = field(default_factory=dict)
    pair: str | None = None
    variant: str | None = None
    baseline: str = "baseline"
    values: Mapping[str, float] = field(default_factory=dict)
    label_true: str | None = None
    label_pred: str | None = None
    confidence: float | None = None
    flags: tuple[str, ...] = ()
    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    finish_reason: str = "stop"
    score_seconds: float = 0.0  # time the task's scorer took (measurement models included)

    @classmethod
    def of(
        cls, task: str, sample: Sample, score: Score, gen: Generation, score_seconds: float = 0.0
    ) -> ScoredSample:
        return cls(
            task=task,
            sample_id=sample.id,
            language=sample.language,
            attributes={str(k): str(v) for k, v in sample.attributes.items()},
            pair=sample.pair,
            variant=sample.variant,
            baseline=str(getattr(sample, "baseline", "baseline")),
            values={str(k): float(v) for k, v in score.values.items()},
            label_true=score.label_true,
            label_pred=score.label_pred,
            confidence=None if score.confidence is None else float(score.confidence),
            flags=tuple(score.flags),
            input_tokens=int(gen.usage.input_tokens),
            output_tokens=int(gen.usage.output_tokens),
            seconds=float(gen.seconds),
            finish_reason=gen.finish_reason,
            score_seconds=float(score_seconds),
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["attributes"] = dict(self.attributes)
        data["values"] = dict(self.values)
        data["flags"] = list(self.flags)
        data["seconds"] = round(self.seconds, 6)
        data["score_seconds"] = round(self.score_seconds, 6)
        return {"kind": "sample", **data}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScoredSample:
        fields = {k: v for k, v in data.items() if k != "kind"}
        fields["flags"] = tuple(fields.get("flags", ()))
        return cls(**fields)


@dataclass(frozen=True)
class EnergyEntry:
    """Energy of one stretch of a task's work (a resumed task has several)."""

    task: str
    kwh: float
    co2e_kg: float
    seconds: float
    inferences: int
    method: str
    measured: bool
    country: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": "energy", **asdict(self)}


@dataclass
class JournalState:
    """What a journal holds: the run line, samples by (task, id), energy entries."""

    run: dict[str, Any] = field(default_factory=dict)
    samples: dict[tuple[str, str], ScoredSample] = field(default_factory=dict)
    energy: list[EnergyEntry] = field(default_factory=list)

    def done(self, task: str) -> set[str]:
        return {sid for (t, sid) in self.samples if t == task}

    def records(self, task: str) -> list[ScoredSample]:
        return [r for (t, _), r in self.samples.items() if t == task]


class Journal:
    """An append-only JSONL journal in ``folder`` (created on first write)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / JOURNAL

    def read(self) -> JournalState:
        """Parse the journal; a torn last line is ignored (and cut off by ``open``)."""
        state = JournalState()
        if not self.path.exists():
            return state
        for number, data in self._lines():
            kind = data.get("kind")
            try:
                if kind == "run":
                    state.run = dict(data)
                elif kind == "sample":
                    rec = ScoredSample.from_json(data)
                    state.samples[(rec.task, rec.sample_id)] = rec
                elif kind == "energy":
                    fields = {k: v for k, v in data.items() if k != "kind"}
                    state.energy.append(EnergyEntry(**fields))
            except TypeError as err:
                raise InputError(
                    f"unexpected fields ({err})", file=str(self.path), record=number,
                    field="kind", expected="a journal line written by mindcommons",
                ) from None  # fmt: skip
        return state

    def _lines(self) -> Iterator[tuple[int, dict[str, Any]]]:
        # A last line without its newline (torn by a crash, or complete-looking) is not
        # committed: it is skipped here and cut off by ``open``.
        return read_jsonl(self.path, torn_tail=True)

    def open(self, run: Mapping[str, Any]) -> JournalState:
        """Start or resume: check the run settings match, cut a torn tail, write the run line."""
        self.folder.mkdir(parents=True, exist_ok=True)
        state = self.read()
        if state.run:
            for key in RESUME_KEYS:
                if key in run and state.run.get(key) != run[key]:
                    raise ConfigError(
                        f"{self.path} is a run with {key}={state.run.get(key)!r}, not "
                        f"{run[key]!r}; resume it with the same settings or use a new folder"
                    )
        self._cut_torn_tail()
        if not state.run:
            state.run = {"kind": "run", "journal_version": JOURNAL_VERSION, **run}
            self._append(state.run)
        return state

    def _cut_torn_tail(self) -> None:
        if not self.path.exists():
            return
        raw = self.path.read_bytes()
        if raw and not raw.endswith(b"\n"):
            keep = raw.rfind(b"\n") + 1
            with self.path.open("r+b") as fh:
                fh.truncate(keep)

    def _append(self, data: Mapping[str, Any]) -> None:
        line = json.dumps(data, ensure_ascii=False, sort_keys=True) + "\n"
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def add_sample(self, rec: ScoredSample) -> None:
        self._append(rec.to_json())

    def add_energy(self, entry: EnergyEntry) -> None:
        self._append(entry.to_json())
