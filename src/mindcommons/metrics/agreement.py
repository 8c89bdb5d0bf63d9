"""Agreement measures: confusion matrices, quadratic weighted kappa, mean absolute error."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray


def confusion_matrix(
    true: Sequence[int], pred: Sequence[int], n_levels: int, *, min_value: int = 0
) -> NDArray[np.int64]:
    """Counts ``C[t, p]`` of (true, predicted) pairs on an ordinal scale of ``n_levels`` values.

    Values are shifted by ``min_value``; anything outside the scale raises ValueError.
    """
    if len(true) != len(pred):
        raise ValueError(f"true and pred differ in length ({len(true)} vs {len(pred)})")
    t = np.asarray(true, dtype=np.int64) - min_value
    p = np.asarray(pred, dtype=np.int64) - min_value
    for name, arr in (("true", t), ("pred", p)):
        if arr.size and (arr.min() < 0 or arr.max() >= n_levels):
            top = min_value + n_levels - 1
            raise ValueError(f"{name} has a value outside {min_value}-{top}")
    conf = np.zeros((n_levels, n_levels), dtype=np.int64)
    np.add.at(conf, (t, p), 1)
    return conf


def quadratic_weights(n_levels: int) -> NDArray[np.float64]:
    """Disagreement weights ``(i - j)^2 / (K - 1)^2``."""
    idx = np.arange(n_levels, dtype=np.float64)
    diff = idx[:, None] - idx[None, :]
    return (diff**2) / float(max(n_levels - 1, 1) ** 2)


def quadratic_weighted_kappa_batch(conf: ArrayLike) -> NDArray[np.float64]:
    """Kappa for a stack of confusion matrices of shape ``(..., K, K)``; NaN where undefined.

    kappa = 1 - sum(w * O) / sum(w * E), with O the observed counts and
    E = outer(row totals, column totals) / N the counts expected by chance.
    Undefined (NaN) when N = 0 or when chance disagreement is 0 (both raters
    used a single, identical category).
    """
    c = np.asarray(conf, dtype=np.float64)
    if c.ndim < 2 or c.shape[-1] != c.shape[-2]:
        raise ValueError(f"confusion matrix must be square, got shape {c.shape}")
    w = quadratic_weights(c.shape[-1])
    total = c.sum(axis=(-2, -1))
    rows = c.sum(axis=-1)
    cols = c.sum(axis=-2)
    observed = (w * c).sum(axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.einsum("...i,ij,...j->...", rows, w, cols) / total
        kappa = 1.0 - observed / expected
    kappa = np.where((total > 0) & (expected > 0), kappa, np.nan)
    return np.asarray(kappa, dtype=np.float64)


def quadratic_weighted_kappa(conf: ArrayLike) -> float | None:
    """Quadratic weighted kappa of one K x K confusion matrix (rows true, columns predicted).

    Returns None when undefined (no pairs, or no chance disagreement possible).
    """
    c = np.asarray(conf, dtype=np.float64)
    if c.ndim != 2:
        raise ValueError(f"expected one K x K confusion matrix, got shape {c.shape}")
    value = float(quadratic_weighted_kappa_batch(c))
    return None if np.isnan(value) else value


def absolute_error_sum(true: Sequence[int], pred: Sequence[int]) -> int:
    """Sum of |pred - true| over paired values (the sufficient statistic for MAE)."""
    if len(true) != len(pred):
        raise ValueError(f"true and pred differ in length ({len(true)} vs {len(pred)})")
    return int(sum(abs(int(p) - int(t)) for t, p in zip(true, pred, strict=True)))


def mean_absolute_error(true: Sequence[int], pred: Sequence[int]) -> float | None:
    """Mean of |pred - true|; None for empty input."""
    if not true:
        return None
    return absolute_error_sum(true, pred) / len(true)
