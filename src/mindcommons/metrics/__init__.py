"""Federated-ready metrics: per-site sufficient statistics with bootstrap replicates, pooling."""

from mindcommons.metrics.agreement import (
    confusion_matrix,
    mean_absolute_error,
    quadratic_weighted_kappa,
)
from mindcommons.metrics.definitions import METRIC_KEYS, METRICS, MetricSpec, get_metric
from mindcommons.metrics.payload import assert_numeric_payload
from mindcommons.metrics.pooling import (
    CONFIDENCE,
    GroupResult,
    MetricEstimate,
    PooledResult,
    pool,
)
from mindcommons.metrics.site import SiteStats, site_seed, site_stats

__all__ = [
    "CONFIDENCE",
    "METRICS",
    "METRIC_KEYS",
    "GroupResult",
    "MetricEstimate",
    "MetricSpec",
    "PooledResult",
    "SiteStats",
    "assert_numeric_payload",
    "confusion_matrix",
    "get_metric",
    "mean_absolute_error",
    "pool",
    "quadratic_weighted_kappa",
    "site_seed",
    "site_stats",
]
