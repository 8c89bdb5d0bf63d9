"""Every suite metric as a function of column sums, with bootstrap replicates of those sums.

One path for local and federated runs: a task's scored samples become rows of a fixed
layout (``TaskLayout``); a *block* holds the column totals of a group of rows (all samples,
one language, one subgroup, or the pairs of one variant) and the same totals over B
bootstrap resamples. A site releases blocks; the coordinator adds block totals and
replicate b across sites (a stratified bootstrap) and reads each metric and its percentile
interval from the sums. A local run is the same with one site.

Label metrics use a confusion matrix over the task's label set plus an ``other`` true row
(a gold label outside the set) and ``other``/``none`` predicted columns (outside the set /
unparseable answer, counted wrong). Accuracy uses exact ``label_correct``/``label_n``
counts. Macro-F1 averages over labels that occur as gold or prediction; weighted-F1 weights
each label's F1 by its gold support (both equal scikit-learn's with those labels).
Calibration (ECE over ``CAL_BINS`` equal-width bins, Brier) uses samples with a confidence.
Paired gaps (variant minus baseline, same ``pair``) are bootstrapped over pairs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from mindcommons.metrics.site import bootstrap_sums
from mindcommons.suite.base import Aggregate, AuditTask, Sample
from mindcommons.suite.journal import ScoredSample

Matrix = NDArray[np.float64]
CONFIDENCE = 0.95
CAL_BINS = 10
MAX_UNDEFINED_SHARE = 0.05
LABEL_KINDS = ("accuracy", "weighted_f1", "macro_f1")
BASE = ("n", "input_tokens", "output_tokens", "seconds", "label_n", "label_correct")


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its interval (None where not computable; ``note`` says why)."""

    value: float | None
    low: float | None = None
    high: float | None = None
    n: int = 0
    note: str = ""

    def to_dict(self) -> dict[str, object]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 6)

        return {
            "value": r(self.value), "low": r(self.low), "high": r(self.high),
            "n": self.n, "note": self.note,
        }  # fmt: skip


@dataclass(frozen=True)
class Block:
    """Column totals (k,) of a group of rows and their bootstrap replicates (B, k)."""

    totals: Matrix
    replicates: Matrix

    @property
    def n(self) -> int:
        return round(float(self.totals[0])) if self.totals.size else 0

    def __add__(self, other: Block) -> Block:
        if self.totals.shape != other.totals.shape:
            raise ValueError("blocks of different layouts cannot be added")
        b = min(self.replicates.shape[0], other.replicates.shape[0])
        return Block(self.totals + other.totals, self.replicates[:b] + other.replicates[:b])


def task_labels(task: AuditTask) -> tuple[str, ...]:
    """The label set of a task's label aggregates: declared, else its synthetic targets."""
    declared: list[str] = []
    for agg in task.aggregates:
        if agg.kind in LABEL_KINDS:
            declared.extend(getattr(agg, "labels", ()) or ())
    if declared:
        return tuple(sorted(set(declared)))
    if not any(a.kind in LABEL_KINDS for a in task.aggregates):
        return ()
    samples = task.load(None, limit=None, seed=0)
    return tuple(sorted({s.target for s in samples if s.target is not None}))


@dataclass(frozen=True)
class TaskLayout:
    """The columns of one task's rows: base counts, mean sums, confusion, calibration bins."""

    aggregates: tuple[Aggregate, ...]
    labels: tuple[str, ...] = ()
    columns: tuple[str, ...] = field(init=False)
    index: Mapping[str, int] = field(init=False)

    def __post_init__(self) -> None:
        cols = list(BASE)
        for agg in self.aggregates:
            if agg.kind == "mean":
                cols += [f"mean:{agg.name}:sum", f"mean:{agg.name}:n"]
        if self.has_labels:
            n_l = len(self.labels)
            cols += [f"conf:{t}:{p}" for t in range(n_l + 1) for p in range(n_l + 2)]
        cols += [f"cal:{b}:{what}" for b in range(CAL_BINS) for what in ("n", "conf", "hit")]
        cols += ["cal:sq"]
        object.__setattr__(self, "columns", tuple(cols))
        object.__setattr__(self, "index", {c: i for i, c in enumerate(cols)})

    @property
    def has_labels(self) -> bool:
        return any(a.kind in LABEL_KINDS for a in self.aggregates)

    @property
    def k(self) -> int:
        return len(self.columns)

    @classmethod
    def for_task(cls, task: AuditTask, labels: Sequence[str] | None = None) -> TaskLayout:
        chosen = tuple(labels) if labels is not None else task_labels(task)
        return cls(tuple(task.aggregates), chosen)

    def row(self, rec: ScoredSample) -> Matrix:
        """The statistics vector of one scored sample (never released on its own)."""
        out = np.zeros(self.k, dtype=np.float64)
        ix = self.index
        out[ix["n"]] = 1
        out[ix["input_tokens"]] = rec.input_tokens
        out[ix["output_tokens"]] = rec.output_tokens
        out[ix["seconds"]] = rec.seconds
        for agg in self.aggregates:
            if agg.kind == "mean":
                key = agg.value or agg.name
                value = rec.values.get(key)
                if value is not None and math.isfinite(value):
                    out[ix[f"mean:{agg.name}:sum"]] += value
                    out[ix[f"mean:{agg.name}:n"]] += 1
        if rec.label_true is not None:
            out[ix["label_n"]] = 1
            out[ix["label_correct"]] = float(rec.label_pred == rec.label_true)
            if self.has_labels:
                n_l = len(self.labels)
                pos = {label: i for i, label in enumerate(self.labels)}
                t = pos.get(rec.label_true, n_l)
                p = n_l + 1 if rec.label_pred is None else pos.get(rec.label_pred, n_l)
                out[ix[f"conf:{t}:{p}"]] += 1
            if rec.confidence is not None and math.isfinite(rec.confidence):
                conf = min(1.0, max(0.0, rec.confidence))
                hit = float(rec.label_pred == rec.label_true)
                b = min(CAL_BINS - 1, int(conf * CAL_BINS))
                out[ix[f"cal:{b}:n"]] += 1
                out[ix[f"cal:{b}:conf"]] += conf
                out[ix[f"cal:{b}:hit"]] += hit
                out[ix["cal:sq"]] += (conf - hit) ** 2
        return out

    # ------------------------------------------------------------------ metrics from sums

    def _ratio(self, s: Matrix, num: str, den: str) -> NDArray[np.float64]:
        d = s[:, self.index[den]]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(np.where(d > 0, s[:, self.index[num]] / d, np.nan), np.float64)

    def confusion(self, s: Matrix) -> NDArray[np.float64]:
        """(m, L+1, L+2) confusion counts: gold rows (+other), predicted cols (+other, none)."""
        n_l = len(self.labels)
        start = self.index["conf:0:0"]
        return s[:, start : start + (n_l + 1) * (n_l + 2)].reshape(-1, n_l + 1, n_l + 2)

    def _f1(self, s: Matrix, weighted: bool) -> NDArray[np.float64]:
        n_l = len(self.labels)
        if n_l == 0:
            return np.full(s.shape[0], np.nan)
        conf = self.confusion(s)
        tp = np.stack([conf[:, i, i] for i in range(n_l)], axis=1)
        gold = conf[:, :n_l, :].sum(axis=2)
        pred = conf[:, :, :n_l].sum(axis=1)
        denom = gold + pred
        with np.errstate(divide="ignore", invalid="ignore"):
            f1 = np.where(denom > 0, 2 * tp / denom, 0.0)
            if weighted:
                support = gold.sum(axis=1)
                out = np.where(support > 0, (f1 * gold).sum(axis=1) / support, np.nan)
            else:
                present = (denom > 0).sum(axis=1)
                out = np.where(present > 0, f1.sum(axis=1) / present, np.nan)
        return np.asarray(out, dtype=np.float64)

    def compute(self, s: Matrix) -> dict[str, NDArray[np.float64]]:
        """Every aggregate (and calibration) of ``s`` (m statistics vectors) -> (m,) values."""
        out: dict[str, NDArray[np.float64]] = {}
        for agg in self.aggregates:
            if agg.kind == "mean":
                out[agg.name] = self._ratio(s, f"mean:{agg.name}:sum", f"mean:{agg.name}:n")
            elif agg.kind == "accuracy":
                out[agg.name] = self._ratio(s, "label_correct", "label_n")
            else:
                out[agg.name] = self._f1(s, weighted=agg.kind == "weighted_f1")
        cal_n = sum(s[:, self.index[f"cal:{b}:n"]] for b in range(CAL_BINS))
        with np.errstate(divide="ignore", invalid="ignore"):
            gaps = sum(
                np.abs(s[:, self.index[f"cal:{b}:conf"]] - s[:, self.index[f"cal:{b}:hit"]])
                for b in range(CAL_BINS)
            )
            out["ece"] = np.asarray(np.where(cal_n > 0, gaps / cal_n, np.nan), np.float64)
            out["brier"] = np.asarray(
                np.where(cal_n > 0, s[:, self.index["cal:sq"]] / cal_n, np.nan), np.float64
            )
        return out

    def counts(self, totals: Matrix, name: str) -> int:
        """The sample count a metric is over (for the report's n)."""
        agg = next((a for a in self.aggregates if a.name == name), None)
        if agg is not None and agg.kind == "mean":
            return round(float(totals[self.index[f"mean:{agg.name}:n"]]))
        if name in ("ece", "brier"):
            return round(sum(float(totals[self.index[f"cal:{b}:n"]]) for b in range(CAL_BINS)))
        if agg is not None:
            return round(float(totals[self.index["label_n"]]))
        return round(float(totals[0]))

    def reliability(self, totals: Matrix) -> list[dict[str, float | int | None]]:
        """Reliability-diagram bins: count, mean confidence and accuracy per bin."""
        bins: list[dict[str, float | int | None]] = []
        for b in range(CAL_BINS):
            n = float(totals[self.index[f"cal:{b}:n"]])
            bins.append(
                {
                    "low": b / CAL_BINS,
                    "high": (b + 1) / CAL_BINS,
                    "n": round(n),
                    "confidence": float(totals[self.index[f"cal:{b}:conf"]]) / n if n else None,
                    "accuracy": float(totals[self.index[f"cal:{b}:hit"]]) / n if n else None,
                }
            )
        return bins

    def estimates(self, block: Block) -> dict[str, Estimate]:
        """Point estimate and percentile interval of every metric of a block."""
        points = self.compute(block.totals[None, :])
        boot = self.compute(block.replicates) if block.replicates.shape[0] else None
        return {
            name: interval(
                float(points[name][0]),
                None if boot is None else boot[name],
                self.counts(block.totals, name),
            )
            for name in points
        }


def interval(point: float, boot: NDArray[np.float64] | None, n: int) -> Estimate:
    """A point value with the percentile interval of its bootstrap values."""
    if not math.isfinite(point):
        return Estimate(None, n=n, note="no samples" if n == 0 else "undefined")
    if n < 2:
        return Estimate(point, n=n, note="n < 2: no interval")
    if boot is None or boot.size == 0:
        return Estimate(point, n=n, note="no bootstrap replicates")
    ok = boot[np.isfinite(boot)]
    undefined = 1.0 - ok.size / boot.size
    if undefined > MAX_UNDEFINED_SHARE:
        return Estimate(point, n=n, note=f"undefined in {undefined:.0%} of resamples")
    tail = (1.0 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(ok, [tail, 100 - tail])
    return Estimate(point, float(low), float(high), n=n)


def make_block(rows: Matrix, n_boot: int, seed: int) -> Block:
    return Block(rows.sum(axis=0), bootstrap_sums(rows, n_boot, seed))


# ---------------------------------------------------------------------- paired gaps


@dataclass(frozen=True)
class GapLayout:
    """Columns of a pair row for one variant: per mean aggregate and for correctness,
    the sum of (variant - baseline) and the number of pairs that have both."""

    aggregates: tuple[Aggregate, ...]
    columns: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        cols = ["n"]
        for name in self.metric_names:
            cols += [f"{name}:diff", f"{name}:n"]
        object.__setattr__(self, "columns", tuple(cols))

    @property
    def metric_names(self) -> list[str]:
        names = [a.name for a in self.aggregates if a.kind == "mean"]
        if any(a.kind in LABEL_KINDS for a in self.aggregates):
            names.append("correct")
        return names

    def _value(self, rec: ScoredSample, name: str) -> float | None:
        if name == "correct":
            if rec.label_true is None:
                return None
            return float(rec.label_pred == rec.label_true)
        agg = next(a for a in self.aggregates if a.name == name)
        value = rec.values.get(agg.value or agg.name)
        return value if value is not None and math.isfinite(value) else None

    def row(self, base: ScoredSample, other: ScoredSample) -> Matrix:
        out = np.zeros(len(self.columns), dtype=np.float64)
        out[0] = 1
        for i, name in enumerate(self.metric_names):
            a, b = self._value(other, name), self._value(base, name)
            if a is not None and b is not None:
                out[1 + 2 * i] = a - b
                out[2 + 2 * i] = 1
        return out

    def estimates(self, block: Block) -> dict[str, Estimate]:
        out: dict[str, Estimate] = {}
        for i, name in enumerate(self.metric_names):

            def ratio(s: Matrix, i: int = i) -> NDArray[np.float64]:
                d = s[:, 2 + 2 * i]
                with np.errstate(divide="ignore", invalid="ignore"):
                    return np.asarray(np.where(d > 0, s[:, 1 + 2 * i] / d, np.nan), np.float64)

            point = float(ratio(block.totals[None, :])[0])
            boot = ratio(block.replicates) if block.replicates.shape[0] else None
            out[name] = interval(point, boot, round(float(block.totals[2 + 2 * i])))
        return out


def baseline_of(records: Iterable[ScoredSample]) -> str:
    """The baseline variant named by paired records (the most common, "baseline" if none)."""
    from collections import Counter

    counts = Counter(r.baseline for r in records if r.pair is not None)
    return counts.most_common(1)[0][0] if counts else Sample.baseline


def pair_rows(records: Iterable[ScoredSample], layout: GapLayout) -> dict[str, Matrix]:
    """variant -> pair rows (one per pair that has its baseline and the variant).

    Every sample names its pair's baseline variant (``Sample.baseline``)."""
    pairs: dict[str, dict[str, ScoredSample]] = {}
    for rec in records:
        if rec.pair is not None and rec.variant is not None:
            pairs.setdefault(rec.pair, {})[rec.variant] = rec
    rows: dict[str, list[Matrix]] = {}
    for pair in sorted(pairs):
        members = pairs[pair]
        baseline = next(iter(members.values())).baseline
        if baseline not in members:
            continue
        for variant in sorted(members):
            if variant != baseline:
                rows.setdefault(variant, []).append(layout.row(members[baseline], members[variant]))
    return {v: np.stack(r) for v, r in rows.items()}


# ---------------------------------------------------------------------- a task's blocks


def group_keys(rec: ScoredSample) -> list[str]:
    """Blocks a record belongs to: all, its language, each of its attributes."""
    keys = ["all", f"lang={rec.language}"]
    keys += [f"attr:{k}={v}" for k, v in sorted(rec.attributes.items())]
    return keys


def task_blocks(
    task: AuditTask,
    records: Sequence[ScoredSample],
    *,
    labels: Sequence[str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    floor: int = 0,
) -> tuple[dict[str, Block], dict[str, int]]:
    """The blocks of one task's records and the sizes of the groups held back (< floor).

    Keys: ``all``, ``lang=<code>``, ``attr:<name>=<value>``, ``gap:<variant>``. Each block
    is resampled with its own seed derived from ``seed`` so blocks are independent of
    which other groups exist.
    """
    layout = TaskLayout.for_task(task, labels)
    blocks: dict[str, Block] = {}
    suppressed: dict[str, int] = {}
    grouped: dict[str, list[Matrix]] = {}
    for rec in records:
        row = layout.row(rec)
        for key in group_keys(rec):
            grouped.setdefault(key, []).append(row)
    gap_layout = GapLayout(tuple(task.aggregates))
    for variant, rows in pair_rows(records, gap_layout).items():
        grouped[f"gap:{variant}"] = list(rows)
    for key in sorted(grouped):
        rows_list = grouped[key]
        if len(rows_list) < floor:
            suppressed[key] = len(rows_list)
            continue
        blocks[key] = make_block(np.stack(rows_list), n_boot, _block_seed(seed, key))
    return blocks, suppressed


def _block_seed(seed: int, key: str) -> int:
    import hashlib

    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def pool_blocks(per_site: Mapping[str, Mapping[str, Block]]) -> dict[str, Block]:
    """Add each block across the sites that released it."""
    pooled: dict[str, Block] = {}
    for site in sorted(per_site):
        for key, block in per_site[site].items():
            pooled[key] = pooled[key] + block if key in pooled else block
    return pooled
