"""Measurement models: heads, metrics, privacy accounting, JSONL input, artifacts, CLI."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score

from mindcommons.errors import InputError, PrerequisiteError
from mindcommons.measure import MEASURES, heads, load_measurer, privacy
from mindcommons.measure.kinds import read_jsonl
from mindcommons.measure.scores import bootstrap, paired_bootstrap, score_outputs, verdict

BIN = ("0", "1")


def _toy(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray, heads.HeadConfig]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype(np.float32)
    y = np.stack([(x[:, 0] > 0).astype(int), (x[:, 1] + x[:, 2] > 0.5).astype(int)], 1)
    cfg = heads.HeadConfig(8, (heads.OutputSpec("a", BIN), heads.OutputSpec("b", BIN)))
    return x, y.astype(np.int64), cfg


def _acc(cfg: heads.HeadConfig, w: heads.Weights, x: np.ndarray, y: np.ndarray) -> float:
    probs = heads.predict_proba(cfg, w, x)
    pred = np.stack([p.argmax(1) for p in probs], 1)
    return float((pred == y).mean())


def test_head_learns_and_masks_missing_labels() -> None:
    x, y, cfg = _toy()
    w0 = heads.init_weights(cfg)
    assert _acc(cfg, w0, x, y) < 0.8  # uniform start
    y_missing = y.copy()
    y_missing[::2, 1] = -1  # half the rows carry no label for output b
    w = heads.fit(cfg, w0, x, y_missing, heads.FitOptions(epochs=30, lr=0.05))
    assert _acc(cfg, w, x, y) > 0.9
    assert heads.mean_loss(cfg, w, x, y) < heads.mean_loss(cfg, w0, x, y)
    assert np.all(w0[0] == 0)  # inputs untouched
    hidden = heads.HeadConfig(8, cfg.outputs, hidden=16)
    wh = heads.fit(hidden, heads.init_weights(hidden), x, y, heads.FitOptions(epochs=30, lr=0.05))
    assert _acc(hidden, wh, x, y) > 0.9
    with pytest.raises(ValueError, match="shapes"):
        heads.predict_proba(hidden, w, x)


def test_fedprox_term_holds_weights_near_the_global_model() -> None:
    x, y, cfg = _toy()
    anchor = heads.init_weights(cfg)
    free = heads.fit(cfg, anchor, x, y, heads.FitOptions(epochs=5, lr=0.05))
    held = heads.fit(cfg, anchor, x, y, heads.FitOptions(epochs=5, lr=0.05, prox_mu=50.0,
                                                         global_weights=anchor))  # fmt: skip
    assert np.linalg.norm(held[0]) < 0.5 * np.linalg.norm(free[0])


def test_dp_gradient_descent_learns_and_noise_matters() -> None:
    x, y, cfg = _toy(n=2000)
    w0 = heads.init_weights(cfg)
    opts = dict(lr=0.1, dp_clip=1.0, dp_steps=40, seed=3)
    mild = heads.fit(cfg, w0, x, y, heads.FitOptions(dp_noise_multiplier=1.0, **opts))  # type: ignore[arg-type]
    loud = heads.fit(cfg, w0, x, y, heads.FitOptions(dp_noise_multiplier=200.0, **opts))  # type: ignore[arg-type]
    assert _acc(cfg, mild, x, y) > 0.85
    assert _acc(cfg, loud, x, y) < _acc(cfg, mild, x, y)


def test_privacy_accountant() -> None:
    # one step at the classic calibration sigma = sqrt(2 ln(1.25/delta)) / eps is eps-DP;
    # the exact curve must say so (and be tighter)
    delta, eps = 1e-5, 0.5
    sigma = math.sqrt(2 * math.log(1.25 / delta)) / eps
    assert privacy.epsilon_for(sigma, 1, delta) <= eps
    # T steps at sigma == one step at sigma / sqrt(T) (Gaussian composition)
    assert privacy.epsilon_for(4.0, 16, delta) == pytest.approx(privacy.epsilon_for(1.0, 1, delta))
    # the exact value at mu = 1: delta(eps) holds, and RDP is a looser upper bound
    e = privacy.epsilon_for(1.0, 1, delta)
    assert privacy.delta_for(e, 1.0) == pytest.approx(delta, rel=1e-3)
    assert 4.0 < e < privacy.rdp_epsilon(1.0, 1, delta)
    # calibration inverts accounting; more steps or less noise spend more
    s = privacy.noise_for(8.0, 100, delta)
    assert privacy.epsilon_for(s, 100, delta) == pytest.approx(8.0, rel=1e-3)
    assert privacy.epsilon_for(s, 200, delta) > 8.0 > privacy.epsilon_for(2 * s, 100, delta)
    assert privacy.epsilon_for(1.0, 0) == 0.0 and math.isinf(privacy.epsilon_for(0.0, 3))


def test_scores_match_sklearn_and_intervals_cover() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, size=(300, 1))
    pred = np.where(rng.random((300, 1)) < 0.7, y, rng.integers(0, 3, size=(300, 1)))
    out = (heads.OutputSpec("ER", ("0", "1", "2")),)
    m = score_outputs(out, y, pred)
    assert m["ER.macro_f1"] == pytest.approx(f1_score(y[:, 0], pred[:, 0], average="macro"))
    assert m["ER.weighted_f1"] == pytest.approx(f1_score(y[:, 0], pred[:, 0], average="weighted"))
    ci = bootstrap(out, y, pred, n_boot=200)
    assert ci["macro_f1"][0] < m["macro_f1"] < ci["macro_f1"][1]
    binary = (heads.OutputSpec("t", BIN),)
    yb, pb = (y > 0).astype(np.int64), (pred > 0).astype(np.int64)
    assert score_outputs(binary, yb, pb)["macro_f1"] == pytest.approx(f1_score(yb[:, 0], pb[:, 0]))


def test_paired_bootstrap_separates_a_better_model_from_an_equal_one() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, size=(400, 1))
    noise = rng.integers(0, 3, size=(400, 1))
    good = np.where(rng.random((400, 1)) < 0.9, y, noise)
    weak = np.where(rng.random((400, 1)) < 0.6, y, noise)
    out = (heads.OutputSpec("ER", ("0", "1", "2")),)
    diff = paired_bootstrap(out, y, good, weak, n_boot=300, seed=1)
    acc = diff["ER.accuracy"]
    point = score_outputs(out, y, good)["ER.accuracy"] - score_outputs(out, y, weak)["ER.accuracy"]
    assert acc[0] == pytest.approx(point) and acc[1] <= point <= acc[2]
    assert (
        verdict(acc) == "beats"
        and verdict(paired_bootstrap(out, y, weak, good)["ER.accuracy"]) == "loses"
    )
    same = paired_bootstrap(out, y, good, good.copy(), n_boot=50)
    assert same["macro_f1"] == [0.0, 0.0, 0.0] and verdict(same["macro_f1"]) == "matches"
    # a model that differs from the other on 8 of 400 rows, right on 4 of them and wrong
    # on 4, is not different; one always wrong where they differ is worse (pairing)
    right, wrong = (
        np.flatnonzero(good[:, 0] != y[:, 0])[:4],
        np.flatnonzero(good[:, 0] == y[:, 0])[:4],
    )
    close = good.copy()
    close[right], close[wrong] = y[right], (y[wrong] + 1) % 3
    worse = good.copy()
    worse[wrong] = (y[wrong] + 1) % 3
    assert verdict(paired_bootstrap(out, y, worse, good, n_boot=300)["ER.accuracy"]) == "loses"
    assert verdict(paired_bootstrap(out, y, close, good, n_boot=300)["ER.accuracy"]) == "matches"
    with pytest.raises(ValueError, match="400 truths, 399 and 400 predictions"):
        paired_bootstrap(out, y, good[:399], weak)


def test_jsonl_format_and_errors(tmp_path: Path) -> None:
    traps = MEASURES.get("thinking-traps")
    good = tmp_path / "traps.jsonl"
    good.write_text(
        json.dumps({"text": "They all hate me", "labels": ["mind reading"]}) + "\n"
        + json.dumps({"text": "I walked", "labels": {"blaming": 0}}) + "\n"
    )  # fmt: skip
    ex = read_jsonl(traps, good)
    assert ex[0].labels["mind reading"] == "1" and ex[0].labels["blaming"] == "0"
    assert ex[1].labels == {"blaming": "0"}
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "x", "labels": {"blaming": 3}}) + "\n")
    with pytest.raises(InputError) as err:
        read_jsonl(traps, bad)
    assert err.value.record == 1 and err.value.field == "labels.blaming"
    empathy = MEASURES.get("empathy")
    bad.write_text('{"post": "hi", "labels": {"ER": 1}}\n')
    with pytest.raises(InputError) as err:
        read_jsonl(empathy, bad)
    assert err.value.field == "response"


def test_missing_model_says_how_to_train(tmp_path: Path) -> None:
    from mindcommons.settings import load_settings

    with pytest.raises(PrerequisiteError, match="mindcommons train empathy"):
        load_measurer("empathy", load_settings(tmp_path))


def _traps_jsonl(path: Path) -> Path:
    """Project-written thoughts (not from any dataset): two traps that words reveal."""
    rows = []
    for i in range(24):
        rows.append({"text": f"Everyone at work {i} surely thinks I am useless",
                     "labels": ["mind reading"]})  # fmt: skip
        rows.append({"text": f"If I fail test {i} my whole life is ruined forever",
                     "labels": ["catastrophizing"]})  # fmt: skip
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


@pytest.mark.slow
def test_cli_train_saves_versioned_artifact_that_predicts(tmp_path: Path) -> None:
    data = _traps_jsonl(tmp_path / "traps.jsonl")
    env = {**os.environ, "MINDCOMMONS_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "mindcommons", "train", "thinking-traps", "--data", str(data),
         "--epochs", "15", "--json"],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout.strip().splitlines()[-1])
    path = Path(shown["artifact"])
    assert path == tmp_path / "home" / "models" / "thinking-traps" / "v1"
    assert {p.name for p in path.iterdir()} == {"weights.npz", "card.json", "card.md"}
    card = json.loads((path / "card.json").read_text())
    assert card["kind"] == "thinking-traps" and card["encoder"]["dim"] == 384
    assert "macro_f1" in card["metrics"]["intervals"] and card["intended_use"]
    assert "Intended use" in (path / "card.md").read_text()
    from mindcommons.settings import load_settings

    m = load_measurer("thinking-traps", load_settings(tmp_path / "home"))
    assert m.version == "v1"
    preds = m.predict(["Everyone at the meeting surely thinks I am useless",
                       "If I fail this my whole life is ruined forever"])  # fmt: skip
    assert preds[0].labels["mind reading"] == "1" and preds[0].labels["catastrophizing"] == "0"
    assert preds[1].labels["catastrophizing"] == "1"
    assert set(preds[0].probs["blaming"]) == {"0", "1"}
    assert sum(preds[0].probs["mind reading"].values()) == pytest.approx(1.0)
    bad = subprocess.run(
        [sys.executable, "-m", "mindcommons", "train", "empathy", "--data", str(data)],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert bad.returncode == InputError.exit_code and "Traceback" not in bad.stderr
    assert "record 1" in bad.stderr or "line 1" in bad.stderr


@pytest.mark.parametrize("hidden", [0, 5])
def test_gradients_and_per_example_norms_are_exact(hidden: int) -> None:
    rng = np.random.default_rng(2)
    cfg = heads.HeadConfig(4, (heads.OutputSpec("a", ("0", "1", "2")), heads.OutputSpec("b", BIN)),
                           hidden=hidden)  # fmt: skip
    w = [rng.normal(size=s).astype(np.float64) for s in cfg.shapes()]
    x = rng.normal(size=(6, 4))
    y = np.array([[0, 1], [2, -1], [1, 0], [0, 0], [-1, 1], [2, 1]])
    cw = [np.array([1.0, 2.0, 0.5]), np.array([1.0, 3.0])]

    def loss(ws: list[np.ndarray], rows: slice | list[int]) -> float:
        z, _, _ = heads._forward(cfg, ws, x[rows])
        return heads._dlogits(cfg, z, y[rows], cw, per_example=False)[1]

    z, a, h = heads._forward(cfg, w, x)
    dz, _ = heads._dlogits(cfg, z, y, cw, per_example=False)
    grads, _ = heads._backward(cfg, w, x, a, h, dz)
    eps = 1e-6
    for layer, g in enumerate(grads):
        flat = w[layer].reshape(-1)
        for k in range(0, flat.size, max(1, flat.size // 7)):
            up = [v.copy() for v in w]
            up[layer].reshape(-1)[k] += eps
            down = [v.copy() for v in w]
            down[layer].reshape(-1)[k] -= eps
            num = (loss(up, slice(None)) - loss(down, slice(None))) / (2 * eps)
            assert g.reshape(-1)[k] == pytest.approx(num, rel=1e-3, abs=1e-5)
    # per-example squared gradient norms equal the brute-force ones
    dz1, _ = heads._dlogits(cfg, z, y, cw, per_example=True)
    _, sq = heads._backward(cfg, w, x, a, h, dz1)
    for i in range(len(x)):
        gi, _ = heads._backward(cfg, w, x[i : i + 1], None if a is None else a[i : i + 1],
                                None if h is None else h[i : i + 1], dz1[i : i + 1])  # fmt: skip
        assert sq[i] == pytest.approx(sum(float((g**2).sum()) for g in gi), rel=1e-4)
