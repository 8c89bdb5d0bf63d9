"""F1 and bootstrap intervals on one sample of labels, for the ``detect`` and ``xling``
benchmarks (the suite runner has its own federated block statistics; these are for a
single local run over public data).

An unparsed answer (``None``) counts as wrong: it adds a false negative to its true class
and to no class a false positive.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray


def _encode(
    true: Sequence[str], pred: Sequence[str | None]
) -> tuple[NDArray[np.int64], NDArray[np.int64], int]:
    labels = sorted(set(true))
    index = {label: i for i, label in enumerate(labels)}
    t = np.array([index[x] for x in true], dtype=np.int64)
    p = np.array([index.get(x, -1) if x is not None else -1 for x in pred], dtype=np.int64)
    return t, p, len(labels)


def _f1_per_class(t: NDArray[np.int64], p: NDArray[np.int64], k: int) -> NDArray[np.float64]:
    out = np.zeros(k)
    for c in range(k):
        tp = np.sum((t == c) & (p == c))
        fp = np.sum((t != c) & (p == c))
        fn = np.sum((t == c) & (p != c))
        denom = 2 * tp + fp + fn
        out[c] = 2 * tp / denom if denom else 0.0
    return out


def f1(true: Sequence[str], pred: Sequence[str | None], average: str = "weighted") -> float:
    """Weighted (by true support) or macro F1 over the classes present in ``true``."""
    t, p, k = _encode(true, pred)
    return _average(t, p, k, average)


def _average(t: NDArray[np.int64], p: NDArray[np.int64], k: int, average: str) -> float:
    if len(t) == 0:
        return float("nan")
    per = _f1_per_class(t, p, k)
    if average == "macro":
        present = np.bincount(t, minlength=k) > 0
        return float(per[present].mean())
    support = np.bincount(t, minlength=k)
    return float((per * support).sum() / support.sum())


def bootstrap_f1(
    true: Sequence[str],
    pred: Sequence[str | None],
    average: str = "weighted",
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(point, 2.5th, 97.5th percentile) of F1 over samples resampled with replacement."""
    t, p, k = _encode(true, pred)
    point = _average(t, p, k, average)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(t), len(t))
        boots.append(_average(t[idx], p[idx], k, average))
    low, high = np.percentile(boots, [2.5, 97.5])
    return point, float(low), float(high)


def paired_gap(
    groups: Sequence[tuple[Sequence[str], Sequence[str | None]]],
    reference: tuple[Sequence[str], Sequence[str | None]],
    average: str = "macro",
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> list[tuple[float, float, float]]:
    """F1 gap (group - reference) with a paired bootstrap: the same item indices are
    resampled for every group and the reference (each item appears in all of them)."""
    ref_t, ref_p, k = _encode(reference[0], reference[1])
    encoded = []
    for true, pred in groups:
        t, p, _ = _encode(true, pred)
        if len(t) != len(ref_t):
            raise ValueError("paired groups must hold the same items as the reference")
        encoded.append((t, p))
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, len(ref_t), len(ref_t)) for _ in range(n_boot)]
    out = []
    for t, p in encoded:
        point = _average(t, p, k, average) - _average(ref_t, ref_p, k, average)
        boots = [
            _average(t[i], p[i], k, average) - _average(ref_t[i], ref_p[i], k, average)
            for i in draws
        ]
        low, high = np.percentile(boots, [2.5, 97.5])
        out.append((point, float(low), float(high)))
    return out
