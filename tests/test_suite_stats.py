"""Suite statistics: every metric from column sums equals the direct computation; pooled
blocks equal the concatenated samples; paired gaps; calibration; Fairlearn agreement."""

from __future__ import annotations

import random

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from mindcommons.metrics.site import bootstrap_sums
from mindcommons.suite.base import Aggregate
from mindcommons.suite.fairness import disaggregate
from mindcommons.suite.journal import ScoredSample
from mindcommons.suite.stats import (
    CAL_BINS,
    GapLayout,
    TaskLayout,
    make_block,
    pair_rows,
    pool_blocks,
    task_blocks,
)
from suite_toy import TOY

LABELS = ("anxiety", "depression", "none", "ptsd")
AGGS = (
    Aggregate("acc", "accuracy"),
    Aggregate("wf1", "weighted_f1"),
    Aggregate("mf1", "macro_f1"),
    Aggregate("score", "mean", "s"),
)


def records(n: int, seed: int) -> list[ScoredSample]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        true = rng.choice(LABELS)
        pred = true if rng.random() < 0.5 else rng.choice([*LABELS, None])
        values = {"s": rng.random()} if rng.random() < 0.8 else {}
        out.append(
            ScoredSample(
                task="t", sample_id=f"s{i}", language=rng.choice(["en", "es"]),
                attributes={"gender": rng.choice(["f", "m", "x"])}, values=values,
                label_true=true, label_pred=pred, confidence=rng.random(),
                input_tokens=10, output_tokens=3, seconds=0.5,
            )
        )  # fmt: skip
    return out


def test_label_and_mean_metrics_equal_direct_computation() -> None:
    recs = records(60, seed=1)
    layout = TaskLayout(AGGS, LABELS)
    sums = np.stack([layout.row(r) for r in recs]).sum(axis=0)[None, :]
    got = {k: float(v[0]) for k, v in layout.compute(sums).items()}
    y_true = [r.label_true for r in recs]
    y_pred = ["<none>" if r.label_pred is None else r.label_pred for r in recs]
    present = sorted(set(y_true) | ({p for p in y_pred} - {"<none>"}))
    assert got["acc"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert got["wf1"] == pytest.approx(f1_score(y_true, y_pred, labels=present, average="weighted"))
    assert got["mf1"] == pytest.approx(f1_score(y_true, y_pred, labels=present, average="macro"))
    have = [r.values["s"] for r in recs if "s" in r.values]
    assert len(have) < len(recs)  # some samples lack the value: left out of the mean
    assert got["score"] == pytest.approx(np.mean(have))
    # calibration: ECE over equal-width bins and Brier, computed directly
    conf = np.array([r.confidence for r in recs], dtype=float)
    hit = np.array([r.label_pred == r.label_true for r in recs], dtype=float)
    bins = np.minimum((conf * CAL_BINS).astype(int), CAL_BINS - 1)
    ece = sum(
        abs(conf[bins == b].mean() - hit[bins == b].mean()) * (bins == b).sum()
        for b in range(CAL_BINS) if (bins == b).any()
    ) / len(recs)  # fmt: skip
    assert got["ece"] == pytest.approx(ece)
    assert got["brier"] == pytest.approx(np.mean((conf - hit) ** 2))


def test_labels_outside_the_set_count_as_errors() -> None:
    # a federated layout knows only some labels: others go to the 'other' row/column
    recs = records(40, seed=2)
    layout = TaskLayout(AGGS, ("depression", "none"))
    sums = np.stack([layout.row(r) for r in recs]).sum(axis=0)[None, :]
    got = layout.compute(sums)
    assert float(got["acc"][0]) == pytest.approx(
        np.mean([r.label_pred == r.label_true for r in recs])
    )  # accuracy is exact whatever the label set
    assert layout.confusion(sums).sum() == len(recs)


def test_pooled_blocks_equal_concatenated_samples() -> None:
    recs = records(50, seed=3)
    a, b = recs[:20], recs[20:]
    blocks_a, _ = task_blocks(_task(), a, labels=LABELS, n_boot=50, seed=1)
    blocks_b, _ = task_blocks(_task(), b, labels=LABELS, n_boot=50, seed=2)
    whole, _ = task_blocks(_task(), recs, labels=LABELS, n_boot=50, seed=3)
    pooled = pool_blocks({"a": blocks_a, "b": blocks_b})
    layout = TaskLayout(AGGS, LABELS)
    for key in ("all", "lang=en", "attr:gender=f"):
        np.testing.assert_allclose(pooled[key].totals, whole[key].totals)
        est_pooled, est_whole = layout.estimates(pooled[key]), layout.estimates(whole[key])
        for name in ("acc", "wf1", "mf1", "score"):
            assert est_pooled[name].value == pytest.approx(est_whole[name].value)
            low, high = est_pooled[name].low, est_pooled[name].high
            assert low is not None and high is not None
            assert low <= est_pooled[name].value <= high  # type: ignore[operator]
    assert pooled["all"].replicates.shape == (50, layout.k)


def test_groups_under_the_floor_are_held_back() -> None:
    recs = records(30, seed=4)
    blocks, held = task_blocks(_task(), recs, labels=LABELS, n_boot=10, seed=0, floor=12)
    assert "all" in blocks
    sizes = {k: v for k, v in held.items()}
    assert sizes and all(n < 12 for n in sizes.values())
    assert all(block.n >= 12 for block in blocks.values())


def test_paired_gaps_resample_pairs() -> None:
    recs = []
    for i in range(30):
        for variant, score in (("baseline", 0.5), ("cue", 0.5 - 0.1 * (i % 3))):
            recs.append(
                ScoredSample(task="t", sample_id=f"{i}-{variant}", pair=f"p{i}", variant=variant,
                             values={"s": score}, label_true="none",
                             label_pred="none" if variant == "baseline" or i % 2 else "ptsd")
            )  # fmt: skip
    layout = GapLayout(AGGS)
    rows = pair_rows(recs, layout)
    assert set(rows) == {"cue"} and rows["cue"].shape[0] == 30
    est = layout.estimates(make_block(rows["cue"], 200, 0))
    assert est["score"].value == pytest.approx(-0.1)
    assert est["correct"].value == pytest.approx(-0.5)
    assert est["score"].high is not None and est["score"].high < 0


def test_bootstrap_is_seeded_and_resamples_n_rows() -> None:
    rows = np.arange(12, dtype=float).reshape(6, 2)
    rows[:, 0] = 1
    one, two = bootstrap_sums(rows, 30, 7), bootstrap_sums(rows, 30, 7)
    np.testing.assert_array_equal(one, two)
    assert np.all(one[:, 0] == 6)
    assert not np.array_equal(one, bootstrap_sums(rows, 30, 8))
    # one resampler for float suite rows and integer site counts: same draws, own dtype
    counts = bootstrap_sums(rows.astype(np.int64), 30, 7)
    assert one.dtype == np.float64 and counts.dtype == np.int64
    np.testing.assert_array_equal(one, counts)


def test_fairlearn_metricframe_agrees_with_blocks() -> None:
    recs = records(80, seed=5)
    frame = disaggregate(recs, AGGS)
    blocks, _ = task_blocks(_task(), recs, labels=LABELS, n_boot=0, seed=0)
    layout = TaskLayout(AGGS, LABELS)
    for gender in ("f", "m", "x"):
        est = layout.estimates(blocks[f"attr:gender={gender}"])
        for name in ("acc", "wf1", "mf1", "score"):
            assert frame["gender"][name]["by_group"][gender] == pytest.approx(
                est[name].value, abs=1e-6
            )
    by_lang = frame["language"]["acc"]["by_group"]
    assert by_lang["en"] == pytest.approx(layout.estimates(blocks["lang=en"])["acc"].value)
    assert frame["gender"]["acc"]["difference"] == pytest.approx(
        max(frame["gender"]["acc"]["by_group"].values())
        - min(frame["gender"]["acc"]["by_group"].values())
    )


def test_toy_task_declares_its_labels() -> None:
    layout = TaskLayout.for_task(TOY)
    assert layout.labels == ("no", "yes")


class _Task:
    name = "t"
    description = "stats test"
    aggregates = AGGS
    primary = "acc"


def _task() -> _Task:
    return _Task()


def test_fairlearn_view_of_a_single_sample() -> None:
    # Fairlearn misreads a one-element numpy feature array as 2-D; one sample must work
    frame = disaggregate(records(1, seed=6), AGGS)
    assert frame["language"]["acc"]["difference"] is None  # one group: no difference
    assert len(frame["gender"]["acc"]["by_group"]) == 1
