"""Pool per-site statistics: point estimates and stratified-bootstrap percentile intervals."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mindcommons.errors import InputError
from mindcommons.metrics.definitions import METRICS, compute_all
from mindcommons.metrics.site import COL, SiteStats, n_columns

CONFIDENCE = 0.95
MAX_UNDEFINED_SHARE = 0.10  # more undefined resamples than this: no interval
METHOD = (
    "stratified bootstrap: each site resamples its own samples B times; the coordinator "
    "adds resample b across sites and takes the 2.5th and 97.5th percentiles of the metric"
)


@dataclass(frozen=True)
class MetricEstimate:
    """A point estimate with its 95% interval; None where not computable (see note)."""

    value: float | None
    low: float | None = None
    high: float | None = None
    note: str = ""


@dataclass(frozen=True)
class GroupResult:
    """One site, or the pool of all sites."""

    n: int
    metrics: dict[str, MetricEstimate]
    input_tokens: int
    output_tokens: int
    seconds: float
    note: str = ""


@dataclass(frozen=True)
class PooledResult:
    """Per-site and pooled results; sites in name order."""

    sites: dict[str, GroupResult]
    pooled: GroupResult
    n_boot: int
    confidence: float = CONFIDENCE
    method: str = METHOD
    metric_keys: tuple[str, ...] = field(default_factory=lambda: tuple(m.key for m in METRICS))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _num(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def estimate(
    totals: NDArray[np.int64], replicates: NDArray[np.int64], n_levels: int
) -> GroupResult:
    """Metrics of one statistics vector, with intervals from its replicates."""
    n = int(totals[COL["n"]])
    tokens_in = int(totals[COL["input_tokens"]])
    tokens_out = int(totals[COL["output_tokens"]])
    seconds = int(totals[COL["milliseconds"]]) / 1000.0
    if n == 0:
        empty = {m.key: MetricEstimate(None, note="no samples") for m in METRICS}
        return GroupResult(
            0, empty, tokens_in, tokens_out, seconds, "no samples: metrics not computed"
        )
    points = compute_all(totals, n_levels)
    boot = compute_all(replicates, n_levels) if replicates.shape[0] else None
    group_note = "" if n >= 2 else "n < 2: no intervals"
    metrics: dict[str, MetricEstimate] = {}
    for spec in METRICS:
        value = _num(float(points[spec.key][0]))
        if value is None:
            metrics[spec.key] = MetricEstimate(None, note="undefined for these samples")
            continue
        if n < 2:
            metrics[spec.key] = MetricEstimate(value, note="n < 2: no interval")
            continue
        if boot is None:
            metrics[spec.key] = MetricEstimate(value, note="no bootstrap replicates")
            continue
        vals = boot[spec.key]
        ok = vals[~np.isnan(vals)]
        undefined = 1.0 - ok.size / vals.size
        if undefined > MAX_UNDEFINED_SHARE:
            note = f"undefined in {undefined:.0%} of resamples: no interval"
            metrics[spec.key] = MetricEstimate(value, note=note)
            continue
        tail = (1.0 - CONFIDENCE) / 2 * 100
        low, high = np.percentile(ok, [tail, 100 - tail])
        metrics[spec.key] = MetricEstimate(value, float(low), float(high))
    return GroupResult(n, metrics, tokens_in, tokens_out, seconds, group_note)


def pool(stats: Mapping[str, SiteStats]) -> PooledResult:
    """Per-site results and the pooled result (replicate b summed across sites)."""
    names = sorted(stats)
    levels = {stats[s].n_levels for s in names}
    boots = {stats[s].n_boot for s in names}
    if len(levels) > 1:
        raise InputError(
            f"sites disagree on answer levels: {sorted(levels)}",
            field="n_levels",
            expected="the same instrument at every site",
        )
    if len(boots) > 1:
        raise InputError(
            f"sites sent different numbers of resamples: {sorted(boots)}",
            field="replicates_shape",
            expected="the same B at every site",
        )
    n_levels = levels.pop() if levels else 4
    n_boot = boots.pop() if boots else 0
    k = n_columns(n_levels)
    total = np.zeros(k, dtype=np.int64)
    reps = np.zeros((n_boot, k), dtype=np.int64)
    sites: dict[str, GroupResult] = {}
    for name in names:
        s = stats[name]
        sites[name] = estimate(s.totals, s.replicates, n_levels)
        total += s.totals
        reps += s.replicates
    pooled = estimate(total, reps, n_levels)
    if not names:
        pooled = GroupResult(0, pooled.metrics, 0, 0, 0.0, "no sites reported")
    return PooledResult(sites=sites, pooled=pooled, n_boot=n_boot)
