"""The reported metrics, each a function of summed statistics (so pooling is exact)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from mindcommons.metrics.agreement import quadratic_weighted_kappa_batch
from mindcommons.metrics.site import COL, CONF_START

Stats = NDArray[np.float64]  # (m, k): m statistics vectors
Values = NDArray[np.float64]  # (m,): NaN where undefined


@dataclass(frozen=True)
class MetricSpec:
    """One reported metric: how it is computed and how to show it."""

    key: str
    label: str
    description: str
    compute: Callable[[Stats, int], Values]
    higher_is_better: bool
    bounds: tuple[float | None, float | None] = (None, None)
    digits: int = 3


def _ratio(num: str, den: str) -> Callable[[Stats, int], Values]:
    def compute(s: Stats, n_levels: int) -> Values:
        d = s[:, COL[den]]
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(d > 0, s[:, COL[num]] / d, np.nan)
        return np.asarray(out, dtype=np.float64)

    return compute


def _qwk(s: Stats, n_levels: int) -> Values:
    conf = s[:, CONF_START : CONF_START + n_levels * n_levels].reshape(-1, n_levels, n_levels)
    return quadratic_weighted_kappa_batch(conf)


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "item_mae",
        "Item MAE",
        "Mean |predicted - true| over all items; a missing prediction counts as 0.",
        _ratio("item_abs_err", "items"),
        False,
        (0.0, None),
    ),
    MetricSpec(
        "total_mae",
        "Total-score MAE",
        "Mean |predicted total - true total| per sample (missing items as 0).",
        _ratio("total_abs_err", "n"),
        False,
        (0.0, None),
        2,
    ),
    MetricSpec(
        "band_accuracy",
        "Severity-band accuracy",
        "Share of samples whose predicted total falls in the true severity band.",
        _ratio("band_correct", "n"),
        True,
        (0.0, 1.0),
    ),
    MetricSpec(
        "item_qwk",
        "Item QWK",
        "Quadratic weighted kappa of item scores (missing prediction as 0).",
        _qwk,
        True,
        (-1.0, 1.0),
    ),
    MetricSpec(
        "parse_rate",
        "Parse rate",
        "Share of samples whose model output parsed as the expected structure.",
        _ratio("parsed", "n"),
        True,
        (0.0, 1.0),
    ),
    MetricSpec(
        "item_coverage",
        "Item coverage",
        "Share of items for which the model gave a usable score.",
        _ratio("items_predicted", "items"),
        True,
        (0.0, 1.0),
    ),
    MetricSpec(
        "evidence_verbatim_rate",
        "Evidence verbatim",
        "Share of items scored > 0 whose quoted evidence occurs verbatim in the text.",
        _ratio("evidence_verbatim", "evidence_eligible"),
        True,
        (0.0, 1.0),
    ),
    MetricSpec(
        "mean_input_tokens",
        "Mean input tokens",
        "Prompt tokens per sample.",
        _ratio("input_tokens", "n"),
        False,
        (0.0, None),
        1,
    ),
    MetricSpec(
        "mean_output_tokens",
        "Mean output tokens",
        "Generated tokens per sample.",
        _ratio("output_tokens", "n"),
        False,
        (0.0, None),
        1,
    ),
)
METRIC_KEYS: tuple[str, ...] = tuple(m.key for m in METRICS)


def get_metric(key: str) -> MetricSpec:
    for spec in METRICS:
        if spec.key == key:
            return spec
    raise KeyError(f"unknown metric '{key}'; known: {', '.join(METRIC_KEYS)}")


def compute_all(stats: NDArray[np.int64] | Stats, n_levels: int) -> dict[str, Values]:
    """Every metric on a stack of statistics vectors ``(m, k)`` (or one vector ``(k,)``)."""
    s = np.atleast_2d(np.asarray(stats, dtype=np.float64))
    return {spec.key: spec.compute(s, n_levels) for spec in METRICS}
