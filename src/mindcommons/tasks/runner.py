"""Run a registered task over EvalItems: through inspect_ai (``run_local``) or a plain loop."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from mindcommons.errors import ConfigError, InputError
from mindcommons.instruments import get_instrument
from mindcommons.models.base import ModelBackend
from mindcommons.tasks.base import EvalItem, SampleResult
from mindcommons.tasks.spec import TaskSpec

Progress = Callable[[int, int], None]


def _key(name: str) -> str:
    try:
        return get_instrument(name).key
    except ConfigError:
        return name


def check_items(spec: TaskSpec, items: Sequence[EvalItem]) -> None:
    """Every item must be for the task's instrument and of a document kind it reads."""
    for item in items:
        if _key(item.instrument) != _key(spec.instrument):
            raise InputError(
                f"task '{spec.name}' cannot score a {item.instrument} item",
                record=item.document_id,
                field="instrument",
                expected=spec.instrument,
            )
        if item.kind not in spec.document_kinds:
            raise InputError(
                f"task '{spec.name}' does not read '{item.kind}' documents",
                record=item.document_id,
                field="kind",
                expected=" or ".join(spec.document_kinds),
            )


def _spec(task: str) -> TaskSpec:
    from mindcommons.tasks import TASKS

    return TASKS.get(task)


def run_task_direct(
    task: str,
    items: Sequence[EvalItem],
    model: ModelBackend,
    *,
    log_dir: Path,
    progress: Progress | None = None,
    seed: int = 0,
) -> list[SampleResult]:
    """Plain loop without inspect_ai (baseline and scoring-path tests); writes no log.

    ``log_dir`` is accepted for signature parity with ``run_local`` and is unused.
    """
    spec = _spec(task)
    check_items(spec, items)
    config = spec.generate_config(seed)
    results = []
    for done, item in enumerate(items, 1):
        per_item = replace(config, json_schema=spec.output_schema_for(item))
        generation = model.generate(spec.build_messages(item), per_item)
        results.append(spec.score(item, generation))
        if progress is not None:
            progress(done, len(items))
    return results


def run_local(
    task: str,
    items: Sequence[EvalItem],
    model: ModelBackend,
    *,
    log_dir: Path,
    progress: Progress | None = None,
    seed: int = 0,
) -> list[SampleResult]:
    """Evaluate ``items`` with inspect_ai, offline; the eval log (with text) goes to ``log_dir``.

    Returns one SampleResult per item, in input order.
    """
    spec = _spec(task)
    check_items(spec, items)
    if not items:
        return []
    from mindcommons.tasks.inspect_bridge import run_inspect

    return run_inspect(spec, items, model, log_dir=log_dir, progress=progress, seed=seed)
