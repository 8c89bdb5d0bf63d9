"""The report card: every task's metrics with intervals, by language and subgroup, paired
gaps, calibration, tokens, time and energy; as ``report.json`` and ``report.html``.

A card is built from blocks (``stats``): in a local run from the journal's rows, in a
federated run from the blocks the sites released, pooled. The dict is the JSON as written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mindcommons.suite.base import AuditTask, Sample
from mindcommons.suite.journal import EnergyEntry, JournalState, ScoredSample
from mindcommons.suite.stats import (
    Block,
    GapLayout,
    TaskLayout,
    task_blocks,
)

CARD_SCHEMA = "mindcommons-suite-card/1"
DEFAULT_MIN_GROUP_N = 30
METHOD = (
    "Percentile bootstrap (95%) over samples; in a federated run a stratified bootstrap: "
    "replicate b is summed across sites. Paired gaps resample pairs."
)
# Luccioni, Jernite & Strubell 2023, "Power Hungry Processing" (ACM FAccT 2024), mean
# energy per 1,000 inferences over the models they measured (approximate, read from the
# paper's figures); shown beside ours for scale, not as a like-for-like comparison.
LUCCIONI_2023_KWH_PER_1K = {
    "text classification": 0.002,
    "text generation": 0.047,
    "summarization": 0.049,
}


def _energy(entries: Sequence[EnergyEntry]) -> dict[str, Any] | None:
    if not entries:
        return None
    kwh = sum(e.kwh for e in entries)
    kg = sum(e.co2e_kg for e in entries)
    n = sum(e.inferences for e in entries)
    return {
        "kwh": kwh,
        "co2e_kg": kg,
        "seconds": round(sum(e.seconds for e in entries), 3),
        "inferences": n,
        "kwh_per_1k": kwh / n * 1000 if n else None,
        "co2e_kg_per_1k": kg / n * 1000 if n else None,
        "method": "; ".join(sorted({e.method for e in entries})),
        "measured": all(e.measured for e in entries),
        "estimated": not all(e.measured for e in entries),
        "country": ", ".join(sorted({e.country for e in entries})),
    }


def _group(layout: TaskLayout, block: Block, min_n: int) -> dict[str, Any]:
    est = layout.estimates(block)
    n = block.n
    return {
        "n": n,
        "metrics": {k: v.to_dict() for k, v in est.items() if k not in ("ece", "brier")},
        "warning": f"n = {n} < {min_n}: interpret with care" if n < min_n else "",
    }


def task_card(
    task: AuditTask,
    blocks: Mapping[str, Block],
    *,
    labels: Sequence[str],
    min_group_n: int,
    energy: Sequence[EnergyEntry] = (),
    suppressed: Mapping[str, str] | None = None,
    fairness: Mapping[str, Any] | None = None,
    by_site: Mapping[str, Block] | None = None,
    baseline: str = "",
) -> dict[str, Any]:
    """One task's part of the card (``baseline``: the variant paired gaps are against)."""
    layout = TaskLayout(tuple(task.aggregates), tuple(labels))
    gap_layout = GapLayout(tuple(task.aggregates))
    card: dict[str, Any] = {
        "description": task.description,
        "primary": task.primary,
        "aggregates": [
            {"name": a.name, "kind": a.kind, "value": a.value, "higher_is_better": higher}
            for a in task.aggregates
            for higher in (a.higher_is_better,)
        ],
        "labels": list(labels),
        "n": 0,
        "metrics": {},
        "tokens": {"input": 0, "output": 0},
        "model_seconds": 0.0,
        "calibration": None,
        "by_language": {},
        "by_attribute": {},
        "paired_gaps": {},
        "baseline_variant": baseline or Sample.baseline,
        "disparity": dict(fairness or {}),
        "by_site": {},
        "energy": _energy(energy),
        "suppressed": dict(suppressed or {}),
    }
    overall = blocks.get("all")
    if overall is None:
        card["note"] = "no samples"
        return card
    ix = layout.index
    est = layout.estimates(overall)
    card["n"] = overall.n
    card["metrics"] = {k: v.to_dict() for k, v in est.items() if k not in ("ece", "brier")}
    card["tokens"] = {
        "input": round(float(overall.totals[ix["input_tokens"]])),
        "output": round(float(overall.totals[ix["output_tokens"]])),
    }
    card["model_seconds"] = round(float(overall.totals[ix["seconds"]]), 3)
    if est["ece"].n > 0:
        card["calibration"] = {
            "ece": est["ece"].to_dict(),
            "brier": est["brier"].to_dict(),
            "bins": layout.reliability(overall.totals),
        }
    for key in sorted(blocks):
        block = blocks[key]
        if key.startswith("lang="):
            card["by_language"][key[5:]] = _group(layout, block, min_group_n)
        elif key.startswith("attr:"):
            name, _, value = key[5:].partition("=")
            card["by_attribute"].setdefault(name, {})[value] = _group(layout, block, min_group_n)
        elif key.startswith("gap:"):
            gaps = gap_layout.estimates(block)
            card["paired_gaps"][key[4:]] = {
                "pairs": block.n,
                "metrics": {k: v.to_dict() for k, v in gaps.items()},
                "warning": f"{block.n} pairs < {min_group_n}" if block.n < min_group_n else "",
            }
    for site, block in sorted((by_site or {}).items()):
        card["by_site"][site] = _group(layout, block, min_group_n)
    return card


def finish_card(
    tasks_card: dict[str, dict[str, Any]],
    run: dict[str, Any],
    skipped: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The whole card: run facts, tasks (and those not run, with why), totals, method."""
    energies = [t["energy"] for t in tasks_card.values() if t.get("energy")]
    n = sum(int(t["n"]) for t in tasks_card.values())
    inferences = sum(int(e["inferences"]) for e in energies)
    kwh = sum(float(e["kwh"]) for e in energies)
    return {
        "schema": CARD_SCHEMA,
        "run": run,
        "tasks": tasks_card,
        "skipped": dict(sorted((skipped or {}).items())),
        "totals": {
            "n": n,
            "input_tokens": sum(t["tokens"]["input"] for t in tasks_card.values()),
            "output_tokens": sum(t["tokens"]["output"] for t in tasks_card.values()),
            "model_seconds": round(sum(t["model_seconds"] for t in tasks_card.values()), 3),
            "energy_kwh": kwh,
            "co2e_kg": sum(float(e["co2e_kg"]) for e in energies),
            "energy_kwh_per_1k": kwh / inferences * 1000 if inferences else None,
            "energy_estimated": any(e["estimated"] for e in energies),
        },
        "method": {
            "intervals": METHOD,
            "min_group_n": run.get("min_group_n", DEFAULT_MIN_GROUP_N),
            "energy_reference_kwh_per_1k": {
                "source": "Luccioni et al. 2023, Power Hungry Processing (approximate means)",
                **LUCCIONI_2023_KWH_PER_1K,
            },
            "notes": [
                "No text leaves a site or enters this card: only numbers and group names.",
                "An unparseable answer counts as wrong; a value a scorer did not give is "
                "left out of that metric's mean.",
                "Macro-F1 averages over labels that occur as gold or prediction; weighted-F1 "
                "weights each label by its gold count.",
                "Groups smaller than min_group_n carry a warning; groups under a site's "
                "release floor are not released by that site.",
            ],
        },
    }


def local_card(
    tasks: Sequence[AuditTask],
    state: JournalState,
    *,
    model: dict[str, str],
    run_id: str,
    n_boot: int,
    seed: int,
    limit: int | None,
    wall_seconds: float,
    started: str,
    min_group_n: int | None = None,
    sample_ids: Mapping[str, set[str]] | None = None,
    skipped: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A card from a local run's journal (with Fairlearn's by-group view); ``skipped``
    tasks (task -> reason) are listed, not scored."""
    from mindcommons.suite.fairness import disaggregate
    from mindcommons.suite.stats import baseline_of, task_labels

    min_n = DEFAULT_MIN_GROUP_N if min_group_n is None else min_group_n
    tasks_card: dict[str, dict[str, Any]] = {}
    for task in tasks:
        if skipped and task.name in skipped:
            continue
        records: list[ScoredSample] = state.records(task.name)
        if sample_ids is not None and task.name in sample_ids:
            records = [r for r in records if r.sample_id in sample_ids[task.name]]
        records.sort(key=lambda r: r.sample_id)
        labels = observed_labels(task_labels(task), records)
        blocks, _ = task_blocks(task, records, labels=labels, n_boot=n_boot, seed=seed)
        fairness = disaggregate(records, task.aggregates) if records else {}
        tasks_card[task.name] = task_card(
            task, blocks, labels=labels, min_group_n=min_n,
            energy=[e for e in state.energy if e.task == task.name], fairness=fairness,
            baseline=baseline_of(records),
        )  # fmt: skip
    run = {
        "run_id": run_id, "mode": "local", "model": model, "seed": seed, "limit": limit,
        "n_boot": n_boot, "min_group_n": min_n, "started": started,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_seconds": round(wall_seconds, 3), "sites": [], "sites_missing": {},
        "versions": _versions(),
    }  # fmt: skip
    return finish_card(tasks_card, run, skipped=skipped)


def observed_labels(base: Sequence[str], records: Sequence[ScoredSample]) -> tuple[str, ...]:
    """A local run's label set: the task's labels plus every gold/predicted label seen."""
    if not base and not any(r.label_true is not None for r in records):
        return tuple(base)
    seen = {r.label_true for r in records} | {r.label_pred for r in records}
    return tuple(sorted(set(base) | {x for x in seen if x is not None}))


def _versions() -> dict[str, str]:
    from mindcommons.report.runinfo import package_versions

    versions = package_versions()
    try:
        from importlib import metadata

        versions["codecarbon"] = metadata.version("codecarbon")
        versions["fairlearn"] = metadata.version("fairlearn")
    except Exception:  # versions are informative only
        pass
    return versions


def write_card(card: Mapping[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.html`` into ``out_dir``; return both paths."""
    from mindcommons.report.suite_card import write_suite_card

    return write_suite_card(card, out_dir)
