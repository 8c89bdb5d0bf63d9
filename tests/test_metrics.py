"""Metrics: kappa, per-site statistics, payload, and the pooling identity."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from mindcommons.errors import InputError, PolicyError
from mindcommons.instruments import get_instrument
from mindcommons.metrics import (
    SiteStats,
    assert_numeric_payload,
    confusion_matrix,
    mean_absolute_error,
    pool,
    quadratic_weighted_kappa,
    site_seed,
    site_stats,
)
from mindcommons.tasks.base import SampleResult

PHQ9 = get_instrument("PHQ-9")


def make_results(n: int, seed: int, noise: float = 0.8, missing: float = 0.1) -> list[SampleResult]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        true = tuple(rnd.randint(0, 3) for _ in range(9))
        parsed = rnd.random() > 0.1
        pred: list[int | None] = []
        for t in true:
            if not parsed or rnd.random() < missing:
                pred.append(None)
            else:
                pred.append(min(3, max(0, t + round(rnd.gauss(0, noise)))))
        out.append(
            SampleResult(
                sample_id=f"doc-{seed}-{i}",
                language=rnd.choice(["en", "es"]),
                kind="clinical_note",
                instrument="PHQ-9",
                true_items=true,
                true_total=sum(true),
                predicted_items=tuple(pred),
                parsed=parsed,
                evidence_verbatim=tuple(rnd.random() < 0.7 for _ in range(9)) if parsed else (),
                input_tokens=rnd.randint(200, 600),
                output_tokens=rnd.randint(20, 120),
                seconds=rnd.uniform(0.5, 3.0),
            )
        )
    return out


def direct_metrics(results: list[SampleResult]) -> dict[str, float]:
    """The metrics computed straight from samples, independently of the statistics vector."""
    true_items = [t for r in results for t in r.true_items]
    pred_items = [0 if p is None else p for r in results for p in r.predicted_items]
    eligible = [
        j < len(r.evidence_verbatim) and r.evidence_verbatim[j]
        for r in results
        for j, p in enumerate(r.predicted_items)
        if p is not None and p > 0
    ]
    n = len(results)
    qwk = quadratic_weighted_kappa(confusion_matrix(true_items, pred_items, 4))
    assert qwk is not None
    return {
        "item_mae": float(np.mean(np.abs(np.array(pred_items) - np.array(true_items)))),
        "total_mae": sum(abs(r.predicted_total - r.true_total) for r in results) / n,
        "band_accuracy": sum(
            PHQ9.band(r.predicted_total) == PHQ9.band(r.true_total) for r in results
        )
        / n,
        "item_qwk": qwk,
        "parse_rate": sum(r.parsed for r in results) / n,
        "item_coverage": sum(p is not None for r in results for p in r.predicted_items)
        / len(true_items),
        "evidence_verbatim_rate": sum(eligible) / len(eligible),
        "mean_input_tokens": sum(r.input_tokens for r in results) / n,
        "mean_output_tokens": sum(r.output_tokens for r in results) / n,
    }


# --- agreement -------------------------------------------------------------------------


def test_qwk_perfect_agreement_is_one() -> None:
    assert quadratic_weighted_kappa(np.diag([5, 3, 7, 2])) == pytest.approx(1.0)


def test_qwk_worked_3x3_example() -> None:
    # rows/cols sums 3,4,3 (N=10); weights 0, 1/4, 1. Observed weighted disagreement:
    # 1*1/4 + 1*1/4 + 1*1 = 1.5; expected: (3*4/4 + 3*3 + 4*3/4 + 4*3/4 + 3*3 + 3*4/4)/10 = 3
    conf = [[2, 1, 0], [0, 3, 1], [1, 0, 2]]
    assert quadratic_weighted_kappa(conf) == pytest.approx(1 - 1.5 / 3)


def test_qwk_chance_level_is_near_zero() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 4, 20000), rng.integers(0, 4, 20000)
    kappa = quadratic_weighted_kappa(confusion_matrix(a.tolist(), b.tolist(), 4))
    assert kappa is not None and abs(kappa) < 0.03


def test_qwk_matches_pairwise_formula_on_random_data() -> None:
    rng = np.random.default_rng(7)
    for _ in range(5):
        a = rng.integers(0, 4, 300)
        b = np.clip(a + rng.integers(-2, 3, 300), 0, 3)
        # quadratic kappa = 1 - mean (a-b)^2 / mean over all pairs (a_i - b_j)^2
        expected = 1 - np.mean((a - b) ** 2) / np.mean((a[:, None] - b[None, :]) ** 2)
        got = quadratic_weighted_kappa(confusion_matrix(a.tolist(), b.tolist(), 4))
        assert got == pytest.approx(expected)


def test_qwk_undefined_and_bad_shape() -> None:
    assert quadratic_weighted_kappa(np.zeros((4, 4))) is None
    assert quadratic_weighted_kappa([[5, 0], [0, 0]]) is None  # one category only
    with pytest.raises(ValueError):
        quadratic_weighted_kappa([[1, 2, 3]])


def test_confusion_matrix_and_mae() -> None:
    conf = confusion_matrix([0, 1, 3, 3], [0, 2, 3, 1], 4)
    assert conf[0, 0] == 1 and conf[1, 2] == 1 and conf[3, 3] == 1 and conf[3, 1] == 1
    assert conf.sum() == 4
    with pytest.raises(ValueError):
        confusion_matrix([0, 4], [0, 0], 4)
    assert mean_absolute_error([0, 1, 3, 3], [0, 2, 3, 1]) == pytest.approx(0.75)
    assert mean_absolute_error([], []) is None


# --- site statistics and pooling --------------------------------------------------------


def test_pooling_identity_equals_concatenated_samples() -> None:
    sites = {"a": make_results(5, 1), "b": make_results(17, 2), "c": make_results(40, 3)}
    stats = {
        name: site_stats(rs, instrument="PHQ-9", n_boot=200, seed=i)
        for i, (name, rs) in enumerate(sites.items())
    }
    pooled = pool(stats).pooled
    everything = [r for rs in sites.values() for r in rs]
    expected = direct_metrics(everything)
    concat = pool({"all": site_stats(everything, instrument="PHQ-9", n_boot=0)}).sites["all"]
    assert pooled.n == concat.n == 62
    for key, value in expected.items():
        assert pooled.metrics[key].value == pytest.approx(value), key
        assert concat.metrics[key].value == pytest.approx(value), key
    assert pooled.input_tokens == sum(r.input_tokens for r in everything)
    assert pooled.output_tokens == sum(r.output_tokens for r in everything)
    assert pooled.seconds == pytest.approx(sum(r.seconds for r in everything), abs=0.05)
    # per-site results are each site's own metrics
    for name, rs in sites.items():
        site_expected = direct_metrics(rs)
        got = pool(stats).sites[name]
        assert got.metrics["item_mae"].value == pytest.approx(site_expected["item_mae"])


def test_interval_contains_point_and_narrows_with_more_data() -> None:
    small = pool({"s": site_stats(make_results(20, 4), instrument="PHQ-9", seed=1)}).sites["s"]
    large = pool({"l": site_stats(make_results(400, 5), instrument="PHQ-9", seed=2)}).sites["l"]
    for group in (small, large):
        for key, est in group.metrics.items():
            assert est.value is not None and est.low is not None and est.high is not None, key
            assert est.low <= est.value <= est.high, key
    for key in ("item_mae", "total_mae", "item_qwk", "band_accuracy"):
        s, big = small.metrics[key], large.metrics[key]
        assert s.high is not None and s.low is not None
        assert big.high is not None and big.low is not None
        assert big.high - big.low < s.high - s.low, key


def test_pooled_interval_narrower_than_typical_site() -> None:
    stats = {
        f"s{i}": site_stats(make_results(60, 10 + i), instrument="PHQ-9", seed=i) for i in range(3)
    }
    result = pool(stats)
    width = {
        k: (g.metrics["item_mae"].high or 0) - (g.metrics["item_mae"].low or 0)
        for k, g in result.sites.items()
    }
    pooled = result.pooled.metrics["item_mae"]
    assert pooled.low is not None and pooled.high is not None
    # three sites of equal size: pooled width ~ site width / sqrt(3)
    assert pooled.high - pooled.low < 0.8 * float(np.mean(list(width.values())))


def test_empty_and_single_sample_sites() -> None:
    one = make_results(1, 6)
    stats = {
        "empty": site_stats([], instrument="PHQ-9", n_boot=50),
        "one": site_stats(one, instrument="PHQ-9", n_boot=50),
        "many": site_stats(make_results(30, 7), instrument="PHQ-9", n_boot=50),
    }
    result = pool(stats)
    empty = result.sites["empty"]
    assert empty.n == 0 and "no samples" in empty.note
    assert all(m.value is None for m in empty.metrics.values())
    single = result.sites["one"].metrics["item_mae"]
    assert single.value == pytest.approx(direct_metrics(one)["item_mae"])
    assert single.low is None and single.high is None and "n < 2" in single.note
    assert result.pooled.n == 31
    assert pool({}).pooled.n == 0


def test_replicates_resample_n_samples_and_are_seeded() -> None:
    rs = make_results(25, 8)
    a = site_stats(rs, instrument="PHQ-9", n_boot=100, seed=3)
    b = site_stats(rs, instrument="PHQ-9", n_boot=100, seed=3)
    c = site_stats(rs, instrument="PHQ-9", n_boot=100, seed=4)
    assert a.replicates.shape == (100, a.k)
    assert np.all(a.replicates[:, 0] == 25)
    assert np.array_equal(a.replicates, b.replicates) and np.array_equal(a.totals, b.totals)
    assert not np.array_equal(a.replicates, c.replicates)
    # resample sums average to the totals
    assert np.allclose(a.replicates.mean(axis=0), a.totals, rtol=0.1, atol=2)
    assert pool({"x": a}).to_dict() == pool({"x": b}).to_dict()


def test_site_seed_differs_by_site_and_is_stable() -> None:
    assert site_seed(0, "a") == site_seed(0, "a")
    assert site_seed(0, "a") != site_seed(0, "b")
    assert site_seed(0, "a", b"secret") != site_seed(0, "a")
    assert site_seed(0, "a") >= 0


def test_site_stats_rejects_bad_results() -> None:
    good = make_results(2, 9)
    short = [
        *good,
        SampleResult("x", "en", "clinical_note", "PHQ-9", (1, 2), 3, (1, 2), True, (), 1, 1, 0.1),
    ]
    with pytest.raises(InputError, match="true_items"):
        site_stats(short, instrument="PHQ-9")
    gad = [
        SampleResult(
            "x", "en", "clinical_note", "GAD-7", (0,) * 7, 0, (0,) * 7, True, (), 1, 1, 0.1
        )
    ]
    with pytest.raises(InputError, match="instrument"):
        site_stats(gad, instrument="PHQ-9")
    bad = [
        SampleResult(
            "x", "en", "clinical_note", "PHQ-9", (0,) * 9, 0, (5,) + (0,) * 8, True, (), 1, 1, 0.1
        )
    ]
    with pytest.raises(InputError, match="predicted_items"):
        site_stats(bad, instrument="PHQ-9")


def test_gad7_uses_its_own_bands() -> None:
    rs = [
        SampleResult(
            "x",
            "en",
            "clinical_note",
            "GAD-7",
            (3,) * 7,
            21,
            (2,) * 7,
            True,
            (True,) * 7,
            10,
            5,
            1.0,
        )
    ]  # 14 vs 21: moderate vs severe
    g = pool({"s": site_stats(rs, instrument="gad7", n_boot=10)}).sites["s"]
    assert g.metrics["band_accuracy"].value == 0.0
    assert g.metrics["total_mae"].value == 7.0


# --- payload -----------------------------------------------------------------------------


def test_payload_round_trip_json_and_flower() -> None:
    stats = site_stats(make_results(30, 11), instrument="PHQ-9", n_boot=1000, seed=5)
    payload = stats.to_payload()
    assert_numeric_payload(payload)
    wire = json.dumps(payload)
    back = SiteStats.from_payload(json.loads(wire))
    assert np.array_equal(back.totals, stats.totals)
    assert np.array_equal(back.replicates, stats.replicates)
    assert back.n_levels == stats.n_levels and back.seed == stats.seed
    assert pool({"s": back}).to_dict() == pool({"s": stats}).to_dict()
    from flwr.app import MetricRecord
    from flwr.common.serde import metric_record_from_proto, metric_record_to_proto

    wire_bytes = metric_record_to_proto(MetricRecord(payload)).SerializeToString()
    proto = type(metric_record_to_proto(MetricRecord({})))()
    proto.ParseFromString(wire_bytes)
    received = SiteStats.from_payload(dict(metric_record_from_proto(proto).items()))
    assert np.array_equal(received.replicates, stats.replicates)
    assert received.n == 30


def test_payload_holds_no_text_or_ids() -> None:
    rs = make_results(10, 12)
    wire = json.dumps(site_stats(rs, instrument="PHQ-9", n_boot=20).to_payload())
    assert "doc-" not in wire and '"en"' not in wire and "PHQ" not in wire


def test_guard_rejects_text_and_non_numbers() -> None:
    for bad in (
        {"a": "x"},
        {"a": b"x"},
        {"a": [1, "x"]},
        {"a": {"b": 1}},
        {"a": None},
        {"a": True},
        {"a": float("nan")},
        {"a": [[1]]},
    ):
        with pytest.raises(PolicyError):
            assert_numeric_payload(bad)
    assert_numeric_payload({"a": 1, "b": 2.5, "c": [1, 2], "d": [0.5]})


def test_from_payload_rejects_malformed() -> None:
    good = site_stats(make_results(8, 13), instrument="PHQ-9", n_boot=10).to_payload()
    totals, reps = list(good["totals"]), list(good["replicates"])  # type: ignore[arg-type]
    cases = [
        {k: v for k, v in good.items() if k != "totals"},
        {**good, "note": 1},
        {**good, "totals": [1, 2, 3]},
        {**good, "replicates": reps[:-1]},
        {**good, "n_levels": "4"},
        {**good, "replicates_shape": [10, 5]},
        {**good, "totals": [*totals[:-1], -1]},
        {**good, "totals": [9, *totals[1:]]},  # n disagrees
    ]
    for case in cases:
        with pytest.raises(InputError):
            SiteStats.from_payload(case)
    with pytest.raises(InputError):
        SiteStats.from_payload(["not", "a", "dict"])


def test_pool_rejects_mismatched_sites() -> None:
    a = site_stats(make_results(5, 14), instrument="PHQ-9", n_boot=10)
    b = site_stats(make_results(5, 15), instrument="PHQ-9", n_boot=20)
    with pytest.raises(InputError):
        pool({"a": a, "b": b})
