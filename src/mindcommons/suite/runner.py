"""Run audit-suite tasks on one model: generate, score, journal each sample, report card.

``run_suite`` is resumable: every scored sample is appended to ``<out_dir>/journal.jsonl``
as soon as it is scored, and a run started again on the same folder skips every sample
already there. Energy is measured per task (per stretch of work when a task resumes).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mindcommons.errors import ConfigError, InputError, PrerequisiteError
from mindcommons.models.base import ModelBackend
from mindcommons.suite.base import AuditTask, Sample
from mindcommons.suite.energy import EnergyMeter
from mindcommons.suite.journal import EnergyEntry, Journal, JournalState, ScoredSample

Progress = Callable[[str, int, int], None]  # (task, done, total); (task, -1, -1): skipped


@dataclass
class SuiteRun:
    """What a run did: per task, samples computed now and samples found in the journal."""

    out_dir: Path
    computed: dict[str, int] = field(default_factory=dict)
    resumed: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # task -> what it lacks here
    card_json: Path | None = None
    card_html: Path | None = None
    seconds: float = 0.0


def get_tasks(names: Sequence[str]) -> list[AuditTask]:
    """Registered tasks by name (an unknown name fails before anything runs)."""
    from mindcommons.suite import SUITE_TASKS

    if not names:
        raise ConfigError(f"no tasks chosen; known: {', '.join(SUITE_TASKS.names()) or 'none'}")
    if len(set(names)) != len(names):
        raise ConfigError(f"a task is listed twice in {list(names)}")
    return [SUITE_TASKS.get(name) for name in names]


def load_samples(
    task: AuditTask, source: Path | None, *, limit: int | None, seed: int
) -> list[Sample]:
    """The task's samples, checked: unique ids, at least one message each."""
    if source is not None and not Path(source).exists():
        raise ConfigError(f"source for task '{task.name}' not found: {source}")
    samples = task.load(source, limit=limit, seed=seed)
    seen: set[str] = set()
    where = str(source) if source is not None else f"synthetic samples of '{task.name}'"
    for sample in samples:
        if sample.id in seen:
            raise InputError(
                "duplicate sample id", file=where, record=sample.id, field="id",
                expected="ids unique within a task",
            )  # fmt: skip
        if not sample.messages:
            raise InputError(
                "sample has no messages", file=where, record=sample.id, field="messages",
                expected="at least one message",
            )  # fmt: skip
        seen.add(sample.id)
    return samples


def run_task_samples(
    task: AuditTask,
    samples: Sequence[Sample],
    model: ModelBackend,
    *,
    seed: int,
    on_scored: Callable[[ScoredSample], None],
    progress: Progress | None = None,
    done_before: int = 0,
    total: int | None = None,
) -> int:
    """Generate and score each sample, handing each result to ``on_scored`` at once."""
    from mindcommons.models.replay import sample_context

    count = 0
    for sample in samples:
        with sample_context(task.name, sample.id):  # lets a replay backend find the answer
            generation = model.generate(list(sample.messages), task.generate_config(sample, seed))
        scoring = time.perf_counter()
        score = task.score(sample, generation)
        scoring = time.perf_counter() - scoring
        if score.sample_id != sample.id:
            raise ConfigError(
                f"task '{task.name}' scored sample '{sample.id}' as '{score.sample_id}' "
                "(a scorer must keep the sample id)"
            )
        on_scored(ScoredSample.of(task.name, sample, score, generation, scoring))
        count += 1
        if progress is not None:
            progress(task.name, done_before + count, total or len(samples))
    return count


def _run_task(
    task: AuditTask,
    backend: ModelBackend,
    journal: Journal,
    state: JournalState,
    run: SuiteRun,
    *,
    sources: Mapping[str, Path | None],
    limit: int | None,
    seed: int,
    energy: bool,
    country: str | None,
    progress: Progress | None,
    sample_ids: dict[str, set[str]],
) -> None:
    """One task of a run: its samples not yet journaled, generated, scored and journaled."""
    samples = load_samples(task, sources.get(task.name), limit=limit, seed=seed)
    sample_ids[task.name] = {s.id for s in samples}
    done = state.done(task.name)
    todo = [s for s in samples if s.id not in done]
    run.resumed[task.name] = len(samples) - len(todo)
    run.computed[task.name] = 0
    if progress is not None:
        progress(task.name, len(samples) - len(todo), len(samples))
    if not todo:
        return

    def keep(rec: ScoredSample) -> None:
        journal.add_sample(rec)
        state.samples[(rec.task, rec.sample_id)] = rec
        run.computed[task.name] += 1

    with EnergyMeter(country, enabled=energy) as meter:
        count = run_task_samples(
            task, todo, backend, seed=seed, on_scored=keep, progress=progress,
            done_before=len(samples) - len(todo), total=len(samples),
        )  # fmt: skip
    reading = meter.reading
    assert reading is not None
    entry = EnergyEntry(
        task=task.name, kwh=reading.kwh, co2e_kg=reading.co2e_kg, seconds=reading.seconds,
        inferences=count, method=reading.method, measured=reading.measured,
        country=reading.country,
    )  # fmt: skip
    journal.add_energy(entry)
    state.energy.append(entry)


def run_suite(
    tasks: Sequence[str],
    model: ModelBackend | str,
    out_dir: Path,
    *,
    sources: Mapping[str, Path | None] | None = None,
    limit: int | None = None,
    seed: int = 0,
    n_boot: int = 1000,
    country: str | None = None,
    energy: bool = True,
    min_group_n: int | None = None,
    progress: Progress | None = None,
    write_card: bool = True,
    model_options: Mapping[str, Any] | None = None,
) -> SuiteRun:
    """Run ``tasks`` on ``model`` into ``out_dir`` (resuming a run already there).

    ``sources`` maps a task name to its data file/folder (absent or None: the task's own
    synthetic samples). ``limit`` caps samples per task. A task that lacks a prerequisite
    on this machine (a trained measurement model, a dataset) is skipped with its reason and
    the others run. Returns what was computed and the report card paths
    (``report.json``/``report.html`` in ``out_dir``).
    """
    from mindcommons.models import load_model

    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be at least 1, got {limit}")
    if seed < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")
    chosen = get_tasks(tasks)
    sources = dict(sources or {})
    unknown = sorted(set(sources) - {t.name for t in chosen})
    if unknown:
        raise ConfigError(f"sources given for tasks not in the run: {', '.join(unknown)}")
    spec = model if isinstance(model, str) else f"{model.name}"
    journal = Journal(Path(out_dir))
    started = datetime.now(UTC).isoformat(timespec="seconds")
    state = journal.open(
        {
            "model": spec, "seed": seed, "limit": limit, "tasks": list(tasks),
            "sources": {k: str(v) for k, v in sources.items() if v is not None},
            "started": started,
        }
    )  # fmt: skip
    t0 = time.perf_counter()
    backend = load_model(model, **dict(model_options or {})) if isinstance(model, str) else model
    run = SuiteRun(out_dir=Path(out_dir))
    sample_ids: dict[str, set[str]] = {}
    try:
        for task in chosen:
            try:
                _run_task(
                    task, backend, journal, state, run, sources=sources, limit=limit,
                    seed=seed, energy=energy, country=country, progress=progress,
                    sample_ids=sample_ids,
                )  # fmt: skip
            except PrerequisiteError as err:  # this task cannot run here; the others can
                run.skipped[task.name] = str(err)
                if progress is not None:
                    progress(task.name, -1, -1)
        model_info = {"spec": spec, **backend.describe()}
    finally:
        if isinstance(model, str):
            backend.close()
    run.seconds = time.perf_counter() - t0
    if write_card:
        from mindcommons.suite.card import local_card
        from mindcommons.suite.card import write_card as write

        card = local_card(
            chosen, state, model=model_info, run_id=Path(out_dir).name, n_boot=n_boot,
            seed=seed, limit=limit, wall_seconds=run.seconds, started=started,
            min_group_n=min_group_n, sample_ids=sample_ids, skipped=run.skipped,
        )  # fmt: skip
        run.card_json, run.card_html = write(card, Path(out_dir))
    return run
