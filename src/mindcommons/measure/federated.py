"""The ``train`` job: federated training of any registered Trainer, and the measure Trainer.

Site side (``train_job``, registered in ``JOB_TYPES``): the site's policy must list
``train`` in ``allowed_jobs`` (training is opt-in; the default allowlist does not hold
it). The job's ``params`` say which Trainer (``TRAINERS``), which phase and its settings:

* ``describe``: how many training / validation examples the site has and its label
  counts (a cell under the site's floor is suppressed, with every other cell of that
  output, so it cannot be derived from the total);
* ``fit``: validate the global weights it received (statistics only), then train from
  them on its own data and return new weights and its number of examples;
* ``evaluate``: validation statistics only.

Only weights and numbers leave the site; a site with fewer training examples than its
floor refuses. The coordinator flow is in ``federation.server_app`` (rounds, FedAvg /
FedProx, DP noise calibration, early stopping).

The measure Trainer (``TRAINERS["measure"]``) trains a measurement head (see
``measure.heads``) on the site's ``<site_dir>/train/<kind>.jsonl`` (format in
``docs/measurement.md``), or for ``phq9-items`` its repository's notes paired with PHQ-9
answers. Embeddings are cached in ``<site_dir>/cache/embeddings.sqlite`` (never sent).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mindcommons.errors import ConfigError, PolicyError
from mindcommons.federation.server import job_params
from mindcommons.federation.site import JOB_TYPES, release_floor
from mindcommons.federation.training import (
    TRAINERS,
    ArtifactWriter,
    Describer,
    FitResult,
    Weights,
    weights_from_job,
    weights_to_payload,
)
from mindcommons.measure import heads
from mindcommons.measure.kinds import MEASURES, MeasureKind, site_examples, split_of
from mindcommons.measure.model import features, head_config, save_artifact
from mindcommons.measure.scores import from_confusion
from mindcommons.settings import Settings

PHASES = ("describe", "fit", "evaluate")
LR_SCHEDULES = ("constant", "linear", "cosine")
STRATEGIES = ("fedavg", "fedprox", "fedadam")


def lr_factor(params: Mapping[str, Any]) -> float:
    """The step-size factor of this fit round under ``lr_schedule`` (rounds 1..``rounds``).

    ``linear`` falls from 1 in round 1 to ``1/rounds`` in the last round, ``cosine`` from 1
    towards 0 on a half cosine; ``constant`` (default) is 1. The schedule depends only on
    the round number, never on data, so with DP it costs no privacy. Why decay with DP:
    Adam divides each step by the gradient's running scale, so once the true gradient is
    small next to the noise every coordinate still moves by about ``lr`` per step, in a
    random direction; the noise left in the final weights scales with the last rounds'
    step size, not with the noise multiplier.
    """
    schedule = str(params.get("lr_schedule", "constant"))
    if schedule not in LR_SCHEDULES:
        raise ConfigError(f"unknown lr_schedule '{schedule}' (expected {', '.join(LR_SCHEDULES)})")
    rounds = max(1, int(params.get("rounds", 1)))
    done = (min(max(1, int(params.get("round", 1))), rounds) - 1) / rounds
    if schedule == "linear":
        return 1.0 - done
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * done))
    return 1.0


@contextlib.contextmanager
def _cpu_turn() -> Iterator[None]:
    """Co-located sites take turns on the CPU (see ``models.embedded.cpu_turn``)."""
    from mindcommons.models.embedded import cpu_turn

    with cpu_turn():
        yield


# ---------------------------------------------------------------- the site-side job


def _floor_counts(values: dict[str, float], floor: int) -> dict[str, float]:
    """Defence in depth: no ``count.*`` cell in (0, floor) leaves, whatever the Trainer did."""
    out: dict[str, float] = {}
    for k, v in values.items():
        if k.startswith("count.") and 0 < v < floor:
            out[k + ".suppressed"] = 1.0
        else:
            out[k] = v
    return out


@JOB_TYPES.register("train")
def train_job(site: str, settings: Settings, job: dict[str, Any]) -> dict[str, Any]:
    """One phase of federated training at ``site``: numbers and weights only."""
    params = job_params(job)
    phase = str(params.get("phase", "fit"))
    if phase not in PHASES:
        raise ConfigError(f"unknown training phase '{phase}' (expected {', '.join(PHASES)})")
    trainer = TRAINERS.get(str(params.get("trainer", "measure")))
    floor = release_floor(site, settings, job)
    params = {**params, "min_n": floor}
    weights = weights_from_job(job)
    out: dict[str, Any] = {}
    if phase == "describe":
        if not isinstance(trainer, Describer):
            return {"described": 0}
        described = trainer.describe(site, settings, params)
        if int(described.get("n_train", 0)) < floor:
            raise PolicyError(
                f"suppressed: {site} has {int(described.get('n_train', 0))} training examples, "
                f"under its minimum of {floor} for any release"
            )
        return _floor_counts(dict(described), floor)
    if weights:
        val = trainer.evaluate(site, settings, weights, params)
        if val.n_examples >= floor:  # validation statistics obey the same floor
            out["val.n_examples"] = val.n_examples
            out.update({f"val.{k}": float(v) for k, v in val.metrics.items()})
    if phase == "evaluate":
        return out
    if not weights:
        raise ConfigError("a fit round needs the global weights (none were sent)")
    fitted = trainer.fit(site, settings, weights, params)
    if fitted.n_examples < floor:
        raise PolicyError(
            f"suppressed: {site} trained on {fitted.n_examples} examples, under its minimum "
            f"of {floor}"
        )
    out["n_examples"] = fitted.n_examples
    out.update({f"fit.{k}": float(v) for k, v in fitted.metrics.items()})
    out.update(weights_to_payload(fitted.weights))
    return out


# ---------------------------------------------------------------- the measure Trainer


_DATA: dict[tuple[str, str, str, int, float], tuple[Any, ...]] = {}


def _site_data(
    kind: MeasureKind, site: str, settings: Settings, seed: int, val_fraction: float
) -> tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.float32], NDArray[np.int64]]:
    """The site's train / validation features and labels (cached for the process)."""
    from mindcommons.measure.train import encode_labels

    key = (str(settings.resolved_home()), site, kind.name, seed, val_fraction)
    if key not in _DATA:
        examples = site_examples(kind, settings, site)
        val = [e for e in examples if split_of(e, seed, (val_fraction,)) == 0]
        train = [e for e in examples if split_of(e, seed, (val_fraction,)) != 0]
        cache = settings.site_dir(site) / "cache" / "embeddings.sqlite"
        x_tr = features(kind, [e.texts for e in train], cache=cache)
        x_val = features(kind, [e.texts for e in val], cache=cache)
        _DATA[key] = (x_tr, encode_labels(kind, train), x_val, encode_labels(kind, val))
    x_tr, y_tr, x_val, y_val = _DATA[key]
    return x_tr, y_tr, x_val, y_val


def _kind(params: Mapping[str, Any]) -> MeasureKind:
    name = str(params.get("kind", ""))
    if name not in MEASURES:
        raise ConfigError(f"unknown measurement kind '{name}' ({', '.join(MEASURES.names())})")
    return MEASURES.get(name)


def _class_weights(kind: MeasureKind, cfg: heads.HeadConfig, params: Mapping[str, Any]) -> Any:
    counts = params.get("label_counts")
    if not isinstance(counts, dict) or not params.get("balanced", True):
        return None
    return heads.balanced_class_weights(cfg, {k: list(v) for k, v in counts.items()})


class MeasureTrainer:
    """Trains a measurement head; weights are the head's arrays (see ``measure.heads``)."""

    @property
    def name(self) -> str:
        return "measure"

    def _data(self, site: str, settings: Settings, params: Mapping[str, Any]) -> tuple[Any, ...]:
        return _site_data(
            _kind(params), site, settings, int(params.get("seed", 0)),
            float(params.get("val_fraction", 0.2)),
        )  # fmt: skip

    def initial_weights(self, params: Mapping[str, Any]) -> Weights:
        cfg = head_config(_kind(params), int(params.get("hidden", 0)))
        return heads.init_weights(cfg, int(params.get("seed", 0)))

    def describe(
        self, site: str, settings: Settings, params: Mapping[str, Any]
    ) -> dict[str, float]:
        kind = _kind(params)
        cfg = head_config(kind, int(params.get("hidden", 0)))
        _, y_tr, _, y_val = self._data(site, settings, params)
        floor = int(params.get("min_n", 1))
        out: dict[str, float] = {"n_train": float(len(y_tr)), "n_validation": float(len(y_val))}
        for key, counts in heads.label_counts(cfg, y_tr).items():
            labels = kind.output(key).labels
            if any(0 < c < floor for c in counts):  # complementary: suppress the whole output
                out[f"suppressed.{key}"] = 1.0
                continue
            for label, c in zip(labels, counts, strict=True):
                out[f"count.{key}={label}"] = float(c)
        return out

    def fit(
        self, site: str, settings: Settings, weights: Weights, params: Mapping[str, Any]
    ) -> FitResult:
        kind = _kind(params)
        cfg = head_config(kind, int(params.get("hidden", 0)))
        x_tr, y_tr, _, _ = self._data(site, settings, params)
        dp = params.get("dp") or {}
        batch = int(params.get("batch_size", 64))  # 0: all rows (full-batch steps)
        opts = heads.FitOptions(
            epochs=int(params.get("local_epochs", 2)),
            lr=float(params.get("lr", 3e-3)) * lr_factor(params),
            batch_size=batch if batch > 0 else max(1, len(y_tr)),
            optimizer=str(params.get("local_optimizer", "adam")),
            class_weights=_class_weights(kind, cfg, params),
            prox_mu=float(params.get("mu", 0.0)),
            global_weights=weights,
            dp_clip=float(dp.get("clip", 0.0)) if dp else 0.0,
            dp_noise_multiplier=float(dp.get("noise_multiplier", 0.0)) if dp else 0.0,
            dp_steps=int(dp.get("steps", 0)) if dp else 0,
            dp_feature_scale=float(dp.get("feature_scale", 1.0)) if dp else 1.0,
            seed=int(params.get("seed", 0)) * 1000 + int(params.get("round", 0)),
        )
        if opts.dp_clip > 0 and opts.dp_noise_multiplier <= 0:
            raise ConfigError("dp needs a positive noise multiplier (set by the coordinator)")
        if opts.optimizer not in heads.OPTIMIZERS:
            raise ConfigError(f"unknown local_optimizer '{opts.optimizer}' "
                              f"(expected {', '.join(heads.OPTIMIZERS)})")  # fmt: skip
        started = time.perf_counter()
        with _cpu_turn():
            new = heads.fit(cfg, weights, x_tr, y_tr, opts)
        metrics = {"seconds": time.perf_counter() - started}
        if opts.dp_clip > 0:
            metrics["dp_steps"] = float(opts.dp_steps)
        return FitResult(weights=new, n_examples=len(y_tr), metrics=metrics)

    def evaluate(
        self, site: str, settings: Settings, weights: Weights, params: Mapping[str, Any]
    ) -> FitResult:
        """Validation statistics: loss sum and per-output confusion counts (additive)."""
        kind = _kind(params)
        cfg = head_config(kind, int(params.get("hidden", 0)))
        _, _, x_val, y_val = self._data(site, settings, params)
        metrics: dict[str, float] = {}
        if len(y_val):
            cw = _class_weights(kind, cfg, params)
            metrics["loss_sum"] = heads.mean_loss(cfg, weights, x_val, y_val, cw) * len(y_val)
            probs = heads.predict_proba(cfg, weights, x_val)
            for j, (o, p) in enumerate(zip(cfg.outputs, probs, strict=True)):
                yt, yp = y_val[:, j], p.argmax(axis=1)
                k = len(o.labels)
                for t in range(k):
                    for q in range(k):
                        metrics[f"cm.{o.key}.{t}.{q}"] = float(((yt == t) & (yp == q)).sum())
        return FitResult(weights=[], n_examples=len(y_val), metrics=metrics)

    def summarize(self, pooled: Mapping[str, float], params: Mapping[str, Any]) -> dict[str, float]:
        """Pooled validation metrics from summed confusion counts (exact, no text)."""
        kind = _kind(params)
        out: dict[str, float] = {}
        heads_: list[float] = []
        for o in kind.outputs:
            k = len(o.labels)
            cm = np.array(
                [[pooled.get(f"cm.{o.key}.{t}.{q}", 0.0) for q in range(k)] for t in range(k)]
            ).astype(np.int64)
            m = from_confusion(cm, o.labels == ("0", "1"))
            for name, value in m.items():
                out[f"{o.key}.{name}"] = value
            heads_.append(m.get("f1", m["macro_f1"]) if o.labels == ("0", "1") else m["macro_f1"])
        out["macro_f1"] = float(np.mean(heads_)) if heads_ else 0.0
        for name in ("weighted_f1", "accuracy"):  # the kind's headline numbers, as scores.py
            values = [out[f"{o.key}.{name}"] for o in kind.outputs]
            out[name] = float(np.mean(values)) if values else 0.0
        return out

    def save_artifact(
        self,
        settings: Settings,
        weights: Weights,
        params: Mapping[str, Any],
        summary: Mapping[str, Any],
    ) -> str:
        kind = _kind(params)
        cfg = head_config(kind, int(params.get("hidden", 0)))
        path = save_artifact(
            kind, cfg, weights,
            {
                "training": {"mode": "federated", **{k: v for k, v in summary.items()
                                                      if k != "history"}},
                "history": summary.get("history", []),
                "metrics": {"validation_federated": summary.get("best_validation", {}),
                            "note": "pooled over the sites' validation splits; no test set "
                                    "at the coordinator"},
            },
            settings=settings,
            out=Path(str(params["out"])) if params.get("out") else None,
        )  # fmt: skip
        return str(path)


TRAINERS.add("measure", MeasureTrainer())
assert isinstance(TRAINERS.get("measure"), ArtifactWriter)


# ---------------------------------------------------------------- coordinator entry point


# FedAdam (strategy "fedadam"): each site takes one full-batch gradient step per round
# (FedSGD), the coordinator steps with Adam; chosen on a development set cut from the
# training pool (benchmarks/RESULTS.md): server step size, rounds, keep the last round
FEDADAM = {"server_lr": 0.05, "rounds": 50}
DP_FEDADAM = {"server_lr": 0.03, "rounds": 200}


def federated_params(
    kind: str,
    *,
    rounds: int | None = None,
    strategy: str | None = None,
    mu: float = 0.01,
    local_epochs: int = 2,
    lr: float = 3e-3,
    dp_epsilon: float = 0.0,
    dp_delta: float = 1e-5,
    dp_clip: float = 2.0,
    dp_steps: int = 10,
    dp_feature_scale: float = 3.0,
    dp_lr: float = 0.03,
    dp_lr_schedule: str = "linear",
    patience: int = 3,
    server_lr: float | None = None,
    server_momentum: float = 0.5,
    dp_server_momentum: float = 0.0,
    seed: int = 0,
    secure_aggregation: bool = False,
    out: Path | None = None,
) -> dict[str, Any]:
    """The ``train`` job's params for ``run_federated``: the strategies' recipes.

    ``strategy`` (default ``fedavg``, with DP ``fedadam``: chosen on a development set,
    ``benchmarks/RESULTS.md``) ``fedavg`` / ``fedprox`` (``mu``): each site runs ``local_epochs`` of
    minibatch Adam at ``lr`` per round (``rounds`` default 5); the coordinator steps from
    the sites' average with server momentum (``server_momentum``, ``server_lr`` default
    1: FedAvgM, ``federation.training.server_step``; 0.5 and 1 chosen on a development
    set, ``benchmarks/RESULTS.md``; 0 and 1 is plain FedAvg); with DP
    ``dp_server_momentum`` (0: momentum did not pay there). With ``dp_epsilon`` each site
    runs ``dp_steps`` full-batch DP steps per round at step size ``dp_lr`` on embeddings
    scaled by ``dp_feature_scale`` with per-example clip ``dp_clip``, the step size falling
    over the rounds by ``dp_lr_schedule`` (``lr_factor``); the coordinator sets the noise
    for ``rounds`` x ``dp_steps`` steps.

    ``fedadam``: each site takes one full-batch step of plain gradient descent at step
    size 1 per round and the coordinator runs Adam on the example-weighted average
    (``federation.training.server_adam``, weight decay 1e-4 as the centralized head):
    exactly full-batch Adam on the union of the sites' data, at the cost of more rounds
    (default 50 at server step size 0.05; each round is one gradient per site, the same
    bytes). All rounds run and the last weights are kept (validation is reported, not
    used to choose). With ``dp_epsilon`` it is DP-FedSGD: one clipped, noised full-batch
    gradient per site per round (``dp_clip``, ``dp_feature_scale``; noise set for
    ``rounds`` steps; default 200 rounds at server step size 0.03). ``server_lr``
    overrides the strategy's server step size.

    With ``secure_aggregation`` every fit round runs Flower's SecAgg+
    (``federation.secagg``): the coordinator sees only the masked sum of the sites'
    updates.
    """
    if kind not in MEASURES:
        raise ConfigError(f"unknown measurement kind '{kind}' ({', '.join(MEASURES.names())})")
    if strategy is None:  # the defaults chosen on a development set (benchmarks/RESULTS.md)
        strategy = "fedadam" if dp_epsilon > 0 else "fedavg"
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy '{strategy}' (expected {', '.join(STRATEGIES)})")
    params: dict[str, Any] = {
        "trainer": "measure", "kind": kind, "rounds": rounds or 5, "strategy": strategy,
        "mu": mu if strategy == "fedprox" else 0.0, "local_epochs": local_epochs, "lr": lr,
        "patience": patience, "seed": seed, "hidden": 0,
        "server_lr": 1.0 if server_lr is None else server_lr,
        "server_momentum": server_momentum,
    }  # fmt: skip
    if strategy == "fedadam":
        recipe = DP_FEDADAM if dp_epsilon > 0 else FEDADAM
        params.update(
            rounds=rounds or recipe["rounds"], local_optimizer="sgd", lr=1.0, local_epochs=1,
            batch_size=0, server_optimizer="adam", server_weight_decay=1e-4, keep="last",
            server_lr=recipe["server_lr"] if server_lr is None else server_lr,
        )  # fmt: skip
        params.pop("server_momentum")
        if dp_epsilon > 0:
            params["dp"] = {"epsilon": dp_epsilon, "delta": dp_delta, "clip": dp_clip,
                            "steps": 1, "feature_scale": dp_feature_scale}  # fmt: skip
    elif dp_epsilon > 0:
        params["lr"] = dp_lr
        params["lr_schedule"] = dp_lr_schedule
        params["server_momentum"] = dp_server_momentum
        lr_factor(params)  # an unknown schedule fails here, before any site is asked
        params["dp"] = {"epsilon": dp_epsilon, "delta": dp_delta, "clip": dp_clip,
                        "steps": dp_steps, "feature_scale": dp_feature_scale}  # fmt: skip
    if secure_aggregation:
        params["secure_aggregation"] = True
    if out is not None:
        params["out"] = str(out.resolve())
    return params


def run_federated(
    settings: Settings,
    kind: str,
    *,
    sites: list[str] | None = None,
    timeout: float = 900.0,
    debug_dump: Path | None = None,
    progress: Callable[[str], None] | None = None,
    **recipe: Any,
) -> dict[str, Any]:
    """Train ``kind`` across the running federation; return the run's result (with path).

    ``recipe``: the keyword arguments of ``federated_params`` (strategy, rounds, DP, secure
    aggregation, ...), whose defaults are the recipes chosen in ``benchmarks/RESULTS.md``;
    an unknown one is a ``TypeError`` before any site is asked.
    """
    from mindcommons.federation.runner import run_job

    params = federated_params(kind, **recipe)
    return run_job(
        settings, {"job": "train", "params": params}, sites=sites, timeout=timeout,
        debug_dump=debug_dump, progress=progress,
    )  # fmt: skip
