"""Compare two suite runs on the same samples: paired bootstrap and a paired test.

For every task both runs journaled, the samples both scored are matched by id. For each
aggregate, the difference B - A (RUN_B the candidate, RUN_A the reference) gets a paired
bootstrap interval (the same resampled samples in both runs) and a two-sided p-value from a
paired permutation test (approximate randomisation: each sample's two results are swapped
at random). A regression is a change in the worse direction with p < alpha whose interval
excludes zero. Runs without journals (federated) are compared unpaired from their cards.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mindcommons.errors import ConfigError
from mindcommons.metrics.site import bootstrap_sums
from mindcommons.suite.journal import Journal, JournalState, ScoredSample
from mindcommons.suite.stats import CONFIDENCE, TaskLayout

DEFAULT_ALPHA = 0.05
N_PERMUTATIONS = 2000


def _run_dir(path: Path) -> Path:
    path = Path(path)
    if path.is_file():
        path = path.parent
    if not (path / "journal.jsonl").exists() and not (path / "report.json").exists():
        raise ConfigError(f"{path} is not a suite run folder (no journal.jsonl or report.json)")
    return path


def _card(path: Path) -> dict[str, Any]:
    file = path / "report.json"
    if not file.exists():
        raise ConfigError(f"{path} has no report.json")
    data: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
    return data


def _paired_task(
    task_name: str, a: Sequence[ScoredSample], b: Sequence[ScoredSample], *,
    n_boot: int, seed: int, alpha: float,
) -> dict[str, Any]:  # fmt: skip
    from mindcommons.suite import SUITE_TASKS
    from mindcommons.suite.card import observed_labels

    task = SUITE_TASKS.get(task_name)
    by_a = {r.sample_id: r for r in a}
    by_b = {r.sample_id: r for r in b}
    common = sorted(set(by_a) & set(by_b))
    labels = observed_labels((), [*a, *b])
    layout = TaskLayout(tuple(task.aggregates), labels)
    out: dict[str, Any] = {
        "paired": True, "n_pairs": len(common), "only_in_a": len(set(by_a) - set(by_b)),
        "only_in_b": len(set(by_b) - set(by_a)), "metrics": {},
    }  # fmt: skip
    if not common:
        out["note"] = "no sample scored in both runs"
        return out
    rows_a = np.stack([layout.row(by_a[s]) for s in common])
    rows_b = np.stack([layout.row(by_b[s]) for s in common])
    n = len(common)
    point_a = layout.compute(rows_a.sum(axis=0)[None, :])
    point_b = layout.compute(rows_b.sum(axis=0)[None, :])
    both = np.concatenate([rows_a, rows_b], axis=1)
    boot = bootstrap_sums(both, n_boot, seed)
    k = layout.k
    boot_a, boot_b = layout.compute(boot[:, :k]), layout.compute(boot[:, k:])
    rng = np.random.default_rng(seed + 1)
    swap = rng.integers(0, 2, size=(N_PERMUTATIONS, n)).astype(np.float64)
    perm_a = swap @ rows_b + (1 - swap) @ rows_a
    perm_b = swap @ rows_a + (1 - swap) @ rows_b
    null_a, null_b = layout.compute(perm_a), layout.compute(perm_b)
    tail = (1 - CONFIDENCE) / 2 * 100
    for agg in task.aggregates:
        va, vb = float(point_a[agg.name][0]), float(point_b[agg.name][0])
        entry: dict[str, Any] = {"a": _r(va), "b": _r(vb), "higher_is_better": agg.higher_is_better}
        if not (np.isfinite(va) and np.isfinite(vb)):
            entry.update(diff=None, low=None, high=None, p=None, regression=False,
                         note="undefined in a run")  # fmt: skip
            out["metrics"][agg.name] = entry
            continue
        diff = vb - va
        d_boot = boot_b[agg.name] - boot_a[agg.name]
        d_boot = d_boot[np.isfinite(d_boot)]
        low, high = np.percentile(d_boot, [tail, 100 - tail]) if d_boot.size else (np.nan,) * 2
        d_null = null_b[agg.name] - null_a[agg.name]
        d_null = d_null[np.isfinite(d_null)]
        p = float((1 + np.sum(np.abs(d_null) >= abs(diff) - 1e-12)) / (1 + d_null.size))
        worse = diff < 0 if agg.higher_is_better else diff > 0
        excludes_zero = bool(np.isfinite(low) and (low > 0 or high < 0))
        entry.update(
            diff=_r(diff), low=_r(float(low)), high=_r(float(high)), p=round(p, 6),
            regression=bool(worse and p < alpha and excludes_zero),
            improvement=bool(not worse and diff != 0 and p < alpha and excludes_zero),
        )  # fmt: skip
        out["metrics"][agg.name] = entry
    return out


def _r(x: float) -> float | None:
    return round(x, 6) if np.isfinite(x) else None


def _unpaired_task(ta: dict[str, Any], tb: dict[str, Any], alpha: float) -> dict[str, Any]:
    """From two cards only: differences, flagged when the 95% intervals do not overlap."""
    note = "unpaired: no per-sample journal (e.g. a federated run)"
    out: dict[str, Any] = {"paired": False, "metrics": {}, "note": note}
    higher = {a["name"]: a["higher_is_better"] for a in tb.get("aggregates", [])}
    for name, mb in tb.get("metrics", {}).items():
        ma = ta.get("metrics", {}).get(name)
        if not ma or ma.get("value") is None or mb.get("value") is None:
            continue
        diff = mb["value"] - ma["value"]
        hib = higher.get(name, True)
        worse = diff < 0 if hib else diff > 0
        apart = None not in (ma["low"], ma["high"], mb["low"], mb["high"]) and (
            mb["high"] < ma["low"] or mb["low"] > ma["high"]
        )
        out["metrics"][name] = {
            "a": ma["value"], "b": mb["value"], "diff": round(diff, 6), "low": None,
            "high": None, "p": None, "higher_is_better": hib,
            "regression": bool(worse and apart), "improvement": bool(not worse and apart),
        }  # fmt: skip
    return out


def compare_runs(
    run_a: Path,
    run_b: Path,
    *,
    alpha: float = DEFAULT_ALPHA,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Compare RUN_B against RUN_A task by task; ``regressions`` lists what got worse."""
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be between 0 and 1, got {alpha}")
    dir_a, dir_b = _run_dir(run_a), _run_dir(run_b)
    journal_a = Journal(dir_a).read() if (dir_a / "journal.jsonl").exists() else None
    journal_b = Journal(dir_b).read() if (dir_b / "journal.jsonl").exists() else None
    tasks: dict[str, Any] = {}
    if journal_a is not None and journal_b is not None:
        names = sorted(_names(journal_a) & _names(journal_b))
        for name in names:
            tasks[name] = _paired_task(
                name, journal_a.records(name), journal_b.records(name),
                n_boot=n_boot, seed=seed, alpha=alpha,
            )  # fmt: skip
    else:
        card_a, card_b = _card(dir_a), _card(dir_b)
        for name in sorted(set(card_a["tasks"]) & set(card_b["tasks"])):
            tasks[name] = _unpaired_task(card_a["tasks"][name], card_b["tasks"][name], alpha)
    regressions = [
        f"{task}.{metric}"
        for task, entry in tasks.items()
        for metric, m in entry["metrics"].items()
        if m.get("regression")
    ]
    return {
        "run_a": str(dir_a), "run_b": str(dir_b), "alpha": alpha, "n_boot": n_boot,
        "test": f"paired permutation test ({N_PERMUTATIONS} swaps), paired bootstrap interval",
        "tasks": tasks, "regressions": regressions,
    }  # fmt: skip


def _names(state: JournalState) -> set[str]:
    return {task for task, _ in state.samples}
