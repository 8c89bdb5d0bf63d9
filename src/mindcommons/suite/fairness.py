"""Disaggregated metrics with Fairlearn's MetricFrame (local runs, where sample rows exist).

The report card's intervals come from the bootstrap blocks in ``stats`` (the same numbers a
federation pools); this module adds Fairlearn's view over the sample rows of a local run:
the metric per group and the largest between-group difference and ratio, per sensitive
feature (each sample attribute, and language).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mindcommons.suite.base import Aggregate
from mindcommons.suite.journal import ScoredSample

NONE_LABEL = "\x00none"  # an unparseable answer: a prediction no gold label equals


def _metric(agg: Aggregate) -> Callable[[Any, Any], float]:
    from sklearn.metrics import f1_score

    if agg.kind == "mean":
        return lambda y_true, y_pred: float(np.mean(np.asarray(y_true, dtype=float)))
    if agg.kind == "accuracy":
        return lambda y_true, y_pred: float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))
    average = "weighted" if agg.kind == "weighted_f1" else "macro"

    def f1(y_true: Any, y_pred: Any) -> float:
        present = sorted(({str(v) for v in y_true} | {str(v) for v in y_pred}) - {NONE_LABEL})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(
                f1_score(
                    list(y_true), list(y_pred), labels=present, average=average, zero_division=0
                )
            )

    return f1


def _features(records: Sequence[ScoredSample]) -> dict[str, list[str]]:
    names = sorted({k for r in records for k in r.attributes})
    features = {"language": [r.language for r in records]}
    for name in names:
        features[name] = [r.attributes.get(name, "(missing)") for r in records]
    return features


def disaggregate(
    records: Sequence[ScoredSample], aggregates: Sequence[Aggregate]
) -> dict[str, dict[str, dict[str, Any]]]:
    """feature -> aggregate -> {"by_group": {group: value}, "difference", "ratio"}."""
    from fairlearn.metrics import MetricFrame

    out: dict[str, dict[str, dict[str, Any]]] = {}
    for feature, column in _features(records).items():
        if len(set(column)) < 1:
            continue
        per_agg: dict[str, dict[str, Any]] = {}
        for agg in aggregates:
            if agg.kind == "mean":
                key = agg.value or agg.name
                keep = [
                    i for i, r in enumerate(records)
                    if r.values.get(key) is not None and math.isfinite(r.values[key])
                ]  # fmt: skip
                y_true: list[Any] = [records[i].values[key] for i in keep]
                y_pred: list[Any] = y_true
            else:
                keep = [i for i, r in enumerate(records) if r.label_true is not None]
                y_true = [str(records[i].label_true) for i in keep]
                y_pred = [
                    NONE_LABEL if records[i].label_pred is None else str(records[i].label_pred)
                    for i in keep
                ]
            if not keep:
                continue
            frame = MetricFrame(
                metrics=_metric(agg),
                y_true=np.asarray(y_true, dtype=object),
                y_pred=np.asarray(y_pred, dtype=object),
                # a list: Fairlearn misreads a one-element numpy array as 2-D
                sensitive_features=[column[i] for i in keep],
            )
            by_group = {str(g): _clean(v) for g, v in frame.by_group.items()}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ratio = _clean(frame.ratio()) if len(by_group) > 1 else None
            per_agg[agg.name] = {
                "by_group": by_group,
                "overall": _clean(frame.overall),
                "difference": _clean(frame.difference()) if len(by_group) > 1 else None,
                "ratio": ratio,
            }
        out[feature] = per_agg
    return out


def _clean(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return round(number, 6) if math.isfinite(number) else None
