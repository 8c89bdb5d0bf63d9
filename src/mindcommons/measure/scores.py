"""Classification metrics for measurement models, from confusion matrices, with bootstrap.

For an output with labels ``("0", "1")`` (a multi-label key) the score is the F1 of "1";
for other outputs it is accuracy, macro-F1 (mean over labels, as scikit-learn's
``average="macro"``) and weighted-F1 (weighted by support, as ``average="weighted"``).
A kind's headline ``macro_f1`` is the mean over outputs of their macro-F1 (multi-class) or
positive-class F1 (binary keys). Percentile intervals come from resampling examples;
``paired_bootstrap`` compares two models' predictions on the same examples (the same
resampled rows for both), which is what "matches" or "beats" a reference means.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from mindcommons.measure.heads import OutputSpec

BINARY = ("0", "1")


def confusion(y_true: NDArray[np.int64], y_pred: NDArray[np.int64], k: int) -> NDArray[np.int64]:
    """``k x k`` counts (rows: truth, columns: prediction); rows with truth -1 are skipped."""
    mask = y_true >= 0
    idx = y_true[mask] * k + y_pred[mask]
    return np.bincount(idx, minlength=k * k).reshape(k, k).astype(np.int64)


def from_confusion(cm: NDArray[np.int64], binary: bool) -> dict[str, float]:
    """accuracy, macro_f1, weighted_f1 (and f1 of label 1 for a binary output)."""
    cm = cm.astype(np.float64)
    total = cm.sum()
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    denom = support + predicted
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1e-12), 0.0)
    present = support > 0
    out = {
        "accuracy": float(tp.sum() / total) if total else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "weighted_f1": float((f1 * support).sum() / total) if total else 0.0,
        "n": float(total),
    }
    if binary:
        out["f1"] = float(f1[1])
    return out


def score_outputs(
    outputs: Sequence[OutputSpec], y_true: NDArray[np.int64], y_pred: NDArray[np.int64]
) -> dict[str, float]:
    """Flat metrics: ``<key>.<metric>`` per output and the kind's headline numbers."""
    out: dict[str, float] = {}
    heads: list[float] = []
    weighted: list[float] = []
    accs: list[float] = []
    for j, o in enumerate(outputs):
        binary = o.labels == BINARY
        m = from_confusion(confusion(y_true[:, j], y_pred[:, j], len(o.labels)), binary)
        for name, value in m.items():
            out[f"{o.key}.{name}"] = value
        heads.append(m["f1"] if binary else m["macro_f1"])
        weighted.append(m["weighted_f1"])
        accs.append(m["accuracy"])
    out["macro_f1"] = float(np.mean(heads)) if heads else 0.0
    out["weighted_f1"] = float(np.mean(weighted)) if weighted else 0.0
    out["accuracy"] = float(np.mean(accs)) if accs else 0.0
    return out


def _intervals(
    n: int, stat: Callable[[NDArray[np.int64]], dict[str, float]], n_boot: int, seed: int,
    level: float,
) -> dict[str, list[float]]:  # fmt: skip
    """Percentile intervals of ``stat(rows)`` over ``n_boot`` resamples of ``n`` rows."""
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {}
    for _ in range(n_boot):
        for name, value in stat(rng.integers(0, n, n)).items():
            samples.setdefault(name, []).append(value)
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    return {
        name: [float(np.percentile(v, lo)), float(np.percentile(v, hi))]
        for name, v in samples.items()
        if not name.endswith(".n")
    }


def bootstrap(
    outputs: Sequence[OutputSpec],
    y_true: NDArray[np.int64],
    y_pred: NDArray[np.int64],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, list[float]]:
    """Percentile intervals ``{metric: [low, high]}`` for every metric of ``score_outputs``."""
    if len(y_true) == 0:
        return {}
    return _intervals(len(y_true), lambda idx: score_outputs(outputs, y_true[idx], y_pred[idx]),
                      n_boot, seed, level)  # fmt: skip


def paired_bootstrap(
    outputs: Sequence[OutputSpec],
    y_true: NDArray[np.int64],
    pred_a: NDArray[np.int64],
    pred_b: NDArray[np.int64],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, list[float]]:
    """``{metric: [a - b, low, high]}``: each metric of ``score_outputs`` for predictions
    ``a`` minus ``b`` on the same examples, with a percentile interval from resampling
    the examples (both scored on the same rows, so their shared difficulty cancels)."""
    if not (len(y_true) == len(pred_a) == len(pred_b)):
        raise ValueError(f"{len(y_true)} truths, {len(pred_a)} and {len(pred_b)} predictions")
    if len(y_true) == 0:
        return {}

    def difference(idx: NDArray[np.int64]) -> dict[str, float]:
        a = score_outputs(outputs, y_true[idx], pred_a[idx])
        b = score_outputs(outputs, y_true[idx], pred_b[idx])
        return {name: a[name] - b[name] for name in a}

    point = difference(np.arange(len(y_true)))
    ci = _intervals(len(y_true), difference, n_boot, seed, level)
    return {name: [point[name], *ci[name]] for name in ci}


def verdict(difference: Sequence[float]) -> str:
    """``beats`` / ``matches`` / ``loses`` from ``[a - b, low, high]`` (interval vs 0)."""
    _, low, high = difference
    return "beats" if low > 0 else "loses" if high < 0 else "matches"
