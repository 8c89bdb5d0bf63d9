"""Federated training of measurement heads: the site's `train` job, then a real federation.

Site data is written by the test (thoughts with two thinking traps the words reveal);
one site's text carries a canary that must never cross the federation.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mindcommons.federation import launcher
from mindcommons.federation.site import run_site_job
from mindcommons.federation.training import (
    fedavg,
    server_step,
    split_weights,
    weights_from_job,
    weights_to_config,
    weights_to_payload,
)
from mindcommons.policy import DEFAULT_ALLOWED_JOBS, set_allowed_jobs
from mindcommons.settings import Settings
from test_federation import CANARY, make_home

KIND = "thinking-traps"


def test_weight_codecs_and_fedavg() -> None:
    w = [(np.arange(6).reshape(2, 3) / 7).astype(np.float32), np.ones(3, np.float32)]
    back = weights_from_job(weights_to_config(w))
    assert all(np.array_equal(a, b) for a, b in zip(w, back, strict=True))
    got, rest = split_weights({**weights_to_payload(w), "n_examples": 4})
    assert rest == {"n_examples": 4}
    assert all(np.allclose(a, b) for a, b in zip(w, got, strict=True))
    avg = fedavg([([np.zeros(2, np.float32)], 1), ([np.ones(2, np.float32)], 3)])
    assert np.allclose(avg[0], 0.75)
    with pytest.raises(ValueError):
        fedavg([])


def test_server_step_is_fedavg_by_default_and_fedavgm_otherwise() -> None:
    prev, avg = [np.ones(2, np.float32)], [np.zeros(2, np.float32)]
    same, v = server_step(prev, avg, None)  # lr 1, no momentum: the average itself
    assert same is avg and v is None
    w1, v1 = server_step(prev, avg, None, lr=1.0, momentum=0.5)  # first round: no history
    assert np.allclose(w1[0], 0.0) and v1 is not None and np.allclose(v1[0], 1.0)
    # second round: pseudo-gradient 0.5 (w1 - avg2) plus half of the last velocity
    w2, v2 = server_step(w1, [np.full(2, -0.5, np.float32)], v1, lr=1.0, momentum=0.5)
    assert v2 is not None and np.allclose(v2[0], 1.0) and np.allclose(w2[0], -1.0)
    w3, _ = server_step(prev, avg, None, lr=2.0)  # a server step size past the average
    assert np.allclose(w3[0], -1.0)
    with pytest.raises(ValueError, match="momentum"):
        server_step(prev, avg, None, momentum=1.0)


@pytest.mark.parametrize("hidden", [0, 6])
def test_fedadam_with_one_full_batch_step_is_centralized_full_batch_adam(hidden: int) -> None:
    """FedSGD sites + server Adam follow full-batch Adam on the union, step for step."""
    from mindcommons.federation.training import server_adam
    from mindcommons.measure import heads

    cfg = heads.HeadConfig(in_dim=10, hidden=hidden, outputs=(
        heads.OutputSpec("y", ("a", "b", "c")), heads.OutputSpec("z", ("0", "1"))))  # fmt: skip
    rng = np.random.default_rng(3)
    sizes, shift = (37, 90, 61), np.eye(10, dtype=np.float32)
    sites = []
    for i, n in enumerate(sizes):  # non-IID: each site leans to another label
        y = np.stack([rng.choice(3, n, p=np.roll([0.7, 0.2, 0.1], i)), rng.integers(0, 2, n)], 1)
        x = (rng.normal(size=(n, 10)) + 2 * shift[y[:, 0]] + shift[5 + y[:, 1]]).astype(np.float32)
        sites.append((x, y.astype(np.int64)))
    x_all = np.concatenate([x for x, _ in sites])
    y_all = np.concatenate([y for _, y in sites])
    cw = heads.balanced_class_weights(cfg, heads.label_counts(cfg, y_all))
    # a random start: from zeros, balanced weights make the first bias gradient exactly 0,
    # and Adam's first step g / sqrt(g^2) turns its rounding into +-lr on either side
    w0 = [(0.1 * rng.normal(size=w.shape)).astype(np.float32) for w in heads.init_weights(cfg)]
    steps, lr = 25, 0.05
    central = heads.fit(cfg, w0, x_all, y_all, heads.FitOptions(
        epochs=steps, lr=lr, weight_decay=1e-4, batch_size=len(y_all),
        class_weights=cw))  # fmt: skip
    w, state = w0, None
    for _ in range(steps):
        local = [(heads.fit(cfg, w, x, y, heads.FitOptions(
            epochs=1, lr=1.0, batch_size=len(y), optimizer="sgd", class_weights=cw)), len(y))
            for x, y in sites]  # fmt: skip
        w, state = server_adam(w, fedavg(local), state, lr, weight_decay=1e-4)
    assert state is not None and state.t == steps
    moved = max(float(np.abs(c - a).max()) for c, a in zip(central, w0, strict=True))
    gap = max(float(np.abs(c - f).max()) for c, f in zip(central, w, strict=True))
    assert moved > 0.3 and gap < 1e-5 * moved, (moved, gap)  # trained, and the same weights
    # local Adam epochs instead (FedAvg) do not follow it: the property is the strategy's
    w2 = fedavg([(heads.fit(cfg, w0, x, y, heads.FitOptions(
        epochs=steps, lr=lr, batch_size=len(y), class_weights=cw)), len(y))
        for x, y in sites])  # fmt: skip
    assert max(float(np.abs(c - f).max()) for c, f in zip(central, w2, strict=True)) > 1e-2
    with pytest.raises(ValueError, match="optimizer 'rmsprop'"):
        heads.fit(cfg, w0, x_all, y_all, heads.FitOptions(optimizer="rmsprop"))
    with pytest.raises(ValueError, match="server Adam"):
        server_adam(w0, w0, None, lr=0.0)


def test_dp_feature_scale_is_the_same_model_and_noise_follows_the_accountant() -> None:
    from mindcommons.measure import heads, privacy

    cfg = heads.HeadConfig(in_dim=8, outputs=(heads.OutputSpec("y", ("a", "b")),))
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    x = rng.normal(size=(400, 8)) + 1.5 * y[:, None] * np.eye(8)[0]
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    w0 = [rng.normal(size=(8, 2)).astype(np.float32), np.zeros(2, np.float32)]
    # zero steps: the reparametrisation (s x) @ (W / s) hands back the same weights
    same = heads.fit(cfg, w0, x, y[:, None], heads.FitOptions(
        dp_clip=3.0, dp_noise_multiplier=1.0, dp_steps=0, dp_feature_scale=3.0))  # fmt: skip
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(same, w0, strict=True))
    # the noise for T steps at epsilon 8 spends exactly 8; the scaled DP run learns
    sigma = privacy.noise_for(8.0, 40)
    assert privacy.epsilon_for(sigma, 40) == pytest.approx(8.0, rel=1e-3)
    assert privacy.epsilon_for(sigma, 80) > 8.0
    w = heads.fit(cfg, heads.init_weights(cfg), x, y[:, None], heads.FitOptions(
        lr=0.05, dp_clip=3.0, dp_noise_multiplier=sigma, dp_steps=40,
        dp_feature_scale=3.0))  # fmt: skip
    accuracy = float((heads.predict_proba(cfg, w, x)[0].argmax(1) == y).mean())
    assert accuracy > 0.7  # chance is 0.5
    with pytest.raises(ValueError, match="dp_feature_scale"):
        heads.fit(cfg, w0, x, y[:, None], heads.FitOptions(
            dp_clip=1.0, dp_noise_multiplier=1.0, dp_steps=1, dp_feature_scale=0.0))  # fmt: skip


def test_dp_step_size_schedule_and_the_recipes_accounting(tmp_path: Path) -> None:
    from mindcommons.errors import ConfigError
    from mindcommons.measure import privacy
    from mindcommons.measure.federated import lr_factor, run_federated
    from mindcommons.settings import load_settings

    def factors(schedule: str) -> list[float]:
        return [lr_factor({"lr_schedule": schedule, "rounds": 10, "round": r})
                for r in range(1, 11)]  # fmt: skip

    assert factors("constant") == [1.0] * 10 and lr_factor({}) == 1.0
    assert factors("linear") == pytest.approx([1 - i / 10 for i in range(10)])
    cosine = factors("cosine")
    assert cosine[0] == 1.0 and all(a > b for a, b in itertools.pairwise(cosine))
    assert cosine[-1] == pytest.approx(0.5 * (1 + np.cos(0.9 * np.pi)))
    # the schedule only rescales the step: the noise, hence the guarantee, is unchanged.
    # The benchmark's recipe, 10 rounds x 10 full-batch steps at epsilon 8, delta 1e-5:
    sigma = privacy.noise_for(8.0, 10 * 10, 1e-5)
    spent = privacy.epsilon_for(sigma, 100, 1e-5)
    assert 7.99 < spent <= 8.0 and privacy.rdp_epsilon(sigma, 100, 1e-5) >= spent
    assert privacy.epsilon_for(sigma, 110, 1e-5) > 8.0  # an 11th round would overspend
    with pytest.raises(ConfigError, match="lr_schedule 'steep'"):
        lr_factor({"lr_schedule": "steep"})
    # run_federated refuses an unknown schedule or strategy before asking any site
    with pytest.raises(ConfigError, match="lr_schedule 'steep'"):
        run_federated(load_settings(tmp_path), KIND, strategy="fedavg", dp_epsilon=8.0,
                      dp_lr_schedule="steep")  # fmt: skip
    with pytest.raises(ConfigError, match="fedadam"):
        run_federated(load_settings(tmp_path), KIND, strategy="scaffold")
    # fedadam's recipe: one full-batch SGD step at the sites, Adam at the coordinator; with
    # DP one noised gradient per round, so the noise is set for `rounds` steps
    from mindcommons.measure.federated import federated_params

    plain = federated_params(KIND, strategy="fedadam")
    assert (
        plain["local_optimizer"],
        plain["lr"],
        plain["batch_size"],
        plain["local_epochs"],
        plain["server_optimizer"],
        plain["keep"],
    ) == ("sgd", 1.0, 0, 1, "adam", "last")
    private = federated_params(KIND, strategy="fedadam", dp_epsilon=8.0)
    assert private["dp"]["steps"] == 1 and private["rounds"] > plain["rounds"]
    assert "lr_schedule" not in private  # the site's step stays 1: Adam is at the server
    # the defaults (chosen on a development set): FedAvgM, and fedadam with DP; the earlier
    # DP recipe (10 local DP steps per round) stays selectable
    assert federated_params(KIND)["strategy"] == "fedavg"
    assert federated_params(KIND, dp_epsilon=8.0)["strategy"] == "fedadam"
    assert federated_params(KIND, strategy="fedavg", dp_epsilon=8.0)["dp"]["steps"] == 10


def write_train_data(settings: Settings, site: str, n: int, canary: str = "") -> Path:
    """<site_dir>/train/thinking-traps.jsonl: non-IID (site-b sees mostly one trap)."""
    rows = []
    for i in range(n):
        mind = i % 3 != 0 if site == "site-b" else i % 2 == 0
        text = (f"Everyone at {site} work {i} surely thinks I am useless" if mind
                else f"If I fail exam {i} at {site} my whole life is ruined forever")  # fmt: skip
        if canary and i == 1:
            text += f" {canary}"
        rows.append({"text": text, "labels": ["mind reading" if mind else "catastrophizing"]})
    path = settings.site_dir(site) / "train" / f"{KIND}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    root = tmp_path_factory.mktemp("fedtrain")
    settings = make_home(root, {"site-a": 12, "site-b": 12}, canary_site="site-a")
    write_train_data(settings, "site-a", 40, CANARY)
    write_train_data(settings, "site-b", 40)
    try:
        yield settings
    finally:
        launcher.down(settings)


def _job(phase: str, min_n: int = 0, **extra: object) -> dict[str, object]:
    params = {"trainer": "measure", "kind": KIND, "phase": phase, "seed": 1, **extra}
    return {"job": "train", "run_id": "t", "min_n": min_n, "params": json.dumps(params)}


@pytest.mark.slow
def test_train_job_is_opt_in_and_releases_numbers_only(home: Settings) -> None:
    site_home = home.resolved_home()
    refused = run_site_job("site-a", site_home, _job("describe"))
    assert refused["status"] == "refused"  # not in the default allowlist: opt-in
    assert "train" not in DEFAULT_ALLOWED_JOBS
    for site in ("site-a", "site-b"):
        set_allowed_jobs(home.site_dir(site), [*DEFAULT_ALLOWED_JOBS, "train"])
    described = run_site_job("site-a", site_home, _job("describe", min_n=5))
    assert described["status"] == "ok", described
    p = described["payload"]
    assert p["n_train"] + p["n_validation"] == 40
    assert p["count.mind reading=1"] + p["count.mind reading=0"] == p["n_train"]
    assert p["count.blaming=1"] == 0  # an empty cell is no disclosure, but ...
    # ... a floor above a cell suppresses the whole output (complementary suppression)
    high = run_site_job("site-a", site_home, _job("describe", min_n=int(p["n_train"]) - 1))
    assert high["status"] == "ok" and "count.mind reading=1" not in high["payload"]
    assert high["payload"]["suppressed.mind reading"] == 1
    # a fit round: weights in (job record), weights + counts out, numbers only
    from mindcommons.measure.federated import MeasureTrainer

    w0 = MeasureTrainer().initial_weights({"kind": KIND})
    fit = run_site_job(
        "site-a", site_home, {**_job("fit", local_epochs=3), **weights_to_config(w0)}
    )
    assert fit["status"] == "ok", fit
    weights, rest = split_weights(fit["payload"])
    assert [w.shape for w in weights] == [w.shape for w in w0]
    assert rest["n_examples"] == p["n_train"] and rest["val.n_examples"] == p["n_validation"]
    assert all(isinstance(v, int | float) for v in rest.values())
    dp = {"clip": 1.0, "noise_multiplier": 2.0, "steps": 3}
    noisy = run_site_job("site-a", site_home, {**_job("fit", dp=dp), **weights_to_config(w0)})
    assert noisy["status"] == "ok" and noisy["payload"]["fit.dp_steps"] == 3
    # phq9-items trains on the site's own notes against its PHQ-9 (no JSONL needed)
    notes = run_site_job("site-b", site_home, {**_job("describe"), "params": json.dumps(
        {"trainer": "measure", "kind": "phq9-items", "phase": "describe"})})  # fmt: skip
    assert notes["status"] == "ok", notes
    assert notes["payload"]["n_train"] + notes["payload"]["n_validation"] == 12


@pytest.mark.slow
def test_federated_training_improves_and_sends_only_numbers(home: Settings) -> None:
    from mindcommons.measure import load_measurer
    from mindcommons.measure.federated import run_federated

    for site in ("site-a", "site-b"):
        set_allowed_jobs(home.site_dir(site), [*DEFAULT_ALLOWED_JOBS, "train"])
    launcher.up(home)
    dump = home.federation_dir() / "train-dump.jsonl"
    result = run_federated(
        home, KIND, sites=["site-a", "site-b"], rounds=2, strategy="fedprox", mu=0.01,
        local_epochs=3, lr=0.01, seed=1, timeout=900, debug_dump=dump, server_momentum=0.5,
    )  # fmt: skip
    summary = result["training"]
    assert result["missing"] == {}, result
    assert summary["sites"] == ["site-a", "site-b"] and summary["rounds_run"] == 2
    history = summary["history"]
    first, last = history[0]["validation"], history[-1]["validation"]
    assert first["n"] > 0 and last["loss"] < first["loss"]  # round 0 vs the final model
    assert summary["best_validation"]["macro_f1"] > first["macro_f1"]
    assert all(h["bytes_sent"] > 0 for h in history)
    # non-IID label counts per site (over the floor) reached the coordinator
    assert summary["site_data"]["site-b"]["count.mind reading=1"] > 0
    measurer = load_measurer(summary["artifact"])
    card = measurer.card
    assert card["training"]["mode"] == "federated" and card["training"]["strategy"] == "fedprox"
    assert card["training"]["server_optimizer"] == {
        "name": "sgd",
        "lr": 1.0,
        "momentum": 0.5,
    }  # FedAvgM (fmt: skip)
    pred = measurer.predict(["Everyone at the office surely thinks I am useless"])
    assert pred[0].labels["mind reading"] == "1"
    # CANARY: replies carried weights and numbers only; nothing of the site text crossed
    replies = dump.read_text(encoding="utf-8")
    assert '"weights.0"' in replies and "n_examples" in replies  # the dump saw the replies
    assert CANARY not in replies
    crossed = [
        *home.federation_dir().glob("superlink.db*"),
        *home.federation_dir().glob("logs/*"),
        *home.federation_dir().glob("runs/*"),
        *Path(summary["artifact"]).iterdir(),
    ]
    for path in crossed:
        assert CANARY.encode() not in path.read_bytes(), path
    assert CANARY in (home.site_dir("site-a") / "train" / f"{KIND}.jsonl").read_text()


@pytest.mark.slow
def test_fedadam_through_flower_equals_the_in_process_rounds(home: Settings) -> None:
    """The fedadam recipe over real Flower: the same weights as the same rounds in process."""
    from mindcommons.federation.server import JobOutcome
    from mindcommons.federation.server_app import local_send, run_training
    from mindcommons.measure import load_measurer
    from mindcommons.measure.federated import federated_params, run_federated

    for site in ("site-a", "site-b"):
        set_allowed_jobs(home.site_dir(site), [*DEFAULT_ALLOWED_JOBS, "train"])
    launcher.up(home)
    result = run_federated(home, KIND, sites=["site-a", "site-b"], strategy="fedadam",
                           rounds=1, seed=1, timeout=600,
                           out=home.resolved_home() / "fedadam-flower")  # fmt: skip
    summary = result["training"]
    assert result["missing"] == {}, result
    assert summary["rounds_run"] == 1 and summary["best_round"] == 1 and summary["keep"] == "last"
    assert summary["server_optimizer"] == {"name": "adam", "lr": 0.05, "weight_decay": 1e-4}
    history = summary["history"]
    assert history[-1]["validation"]["loss"] < history[0]["validation"]["loss"]
    assert history[0]["bytes_sent"] > 0 and history[0]["bytes_received"] > 0
    # the same job in process (each site's guard, no Flower): identical weights
    params = federated_params(KIND, strategy="fedadam", rounds=1, seed=1,
                              out=home.resolved_home() / "fedadam-local")  # fmt: skip
    job = {"job": "train", "run_id": "fedadam-local", "params": json.dumps(params)}
    outcome = JobOutcome(run_id="fedadam-local", job=job, mode="local")
    local = run_training(local_send(home, job), home, job, {0: "site-a", 1: "site-b"},
                         outcome, 300)  # fmt: skip
    flower_w = load_measurer(summary["artifact"]).weights
    local_w = load_measurer(local["artifact"]).weights
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(flower_w, local_w, strict=True))
    assert float(np.abs(flower_w[0]).max()) > 0.04  # Adam's first step: ~0.05 per weight
