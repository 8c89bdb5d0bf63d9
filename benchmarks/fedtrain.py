"""Federated versus centralized training of a measurement head on the same split.

The training pool of a public dataset (default: SAD stressor categories; the IMHI test
sentences are the test set, as in ``benchmarks/measure.py``) is dealt to 3 sites with skewed
label mixes (Dirichlet alpha over labels: non-IID). Centralized: one linear head on the
union with early stopping on a 10% validation split. Federated: the same head trained by the
coordinator flow of ``federation.server_app.run_training`` with every round going through
each site's own guard (``run_site_job``: policy, ``train`` job, numbers-only check) in this
process (``local_send``; Flower's transport is measured by ``tests/test_fedtrain.py`` and
reported per round there). Variants: FedAvg, FedProx (mu 0.01) and FedAvg with DP at epsilon
= 8 (delta 1e-5, exact Gaussian accountant). Reported: test F1 (the kind's primary metric)
and its ratio to centralized (goals >= 0.98; with DP >= 0.95), rounds, seconds, bytes
sent/received per round. Every variant runs once per ``--seeds`` seed (each site's
validation split, the DP noise) and reports each seed's ratio, their mean and minimum; the
centralized head is trained per seed too (its mean is a second denominator). FedAvg and
FedProx step from the sites' average with server momentum 0.5 (FedAvgM,
``--server-momentum``; ``fedavg-plain`` / ``fedprox-plain`` without), chosen with ``--dev
0.15``: a share of the training pool held out and scored instead of the test set, so recipes
are chosen without looking at test. ``dp`` clips at 2 with the embeddings scaled by 3 inside
the DP steps (``measure.heads.fit``, ``dp_feature_scale``) and its step size falls linearly
over the rounds (``measure.federated.lr_factor``: Adam moves every coordinate by about the
step size once the noise dominates the gradient, so the last rounds' step size sets the
noise left in the weights); its noise is set for ``--dp-rounds`` (10) x ``--dp-steps``. Clip
2 and the schedule were chosen on the sites' validation splits (``benchmarks/RESULTS.md``).
``dp-clip3`` clips at 3, ``dp-prev`` clips at 3 with a constant step size (the recipe
before), ``dp-clip1`` the one before that (clip 1, raw unit-norm embeddings, ``--rounds``).
Each run also reports the pooled validation metric the federation saw (no test set there).
``fedadam`` (``measure.federated.federated_params``): one full-batch gradient per site per
round and Adam at the coordinator, i.e. full-batch Adam on the union (50 rounds at 0.05,
last round kept); ``dp-fedadam`` the same with one clipped, noised gradient per round
(DP-FedSGD, 200 rounds at 0.03, clip 2, scale 3), both chosen with ``--dev 0.15``. A
second centralized reference runs full-batch Adam with fedadam's recipe on the pooled
training split; the stronger centralized mean over the seeds is ``reference`` and
``goal_met_on_every_seed`` compares every seed's ratio to it. ``--flower`` runs the chosen
variants through a real Flower federation (``launcher.up``) instead of in process.

    nice -n 10 .venv/bin/python benchmarks/fedtrain.py --data ../shared/data --kind stressor \
        --rounds 15 --local-epochs 3      # add --dev 0.15 to choose a recipe without test
    ... --variants fedadam --seeds 0 --flower     # seconds per round over Flower
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from measure import load_kind

from mindcommons.federation import launcher
from mindcommons.federation.server import JobOutcome
from mindcommons.federation.server_app import local_send, run_training
from mindcommons.measure import heads, load_measurer
from mindcommons.measure.federated import FEDADAM, federated_params
from mindcommons.measure.kinds import MEASURES, Example
from mindcommons.measure.model import (
    features,
    head_config,
)
from mindcommons.measure.scores import bootstrap, score_outputs
from mindcommons.measure.train import (
    encode_labels,
    fit_head,
    peak_rss_mb,
    predict_labels,
    split_examples,
)
from mindcommons.policy import DEFAULT_ALLOWED_JOBS, ensure_site_policy, set_allowed_jobs
from mindcommons.settings import load_settings

SITES = ("site-a", "site-b", "site-c")


def deal(examples: list[Example], key: str, alpha: float, seed: int) -> dict[str, list[Example]]:
    """Label-skewed partition: per label, site shares drawn from Dirichlet(alpha)."""
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[Example]] = {}
    for ex in examples:
        by_label.setdefault(ex.labels.get(key, ""), []).append(ex)
    out: dict[str, list[Example]] = {s: [] for s in SITES}
    for _, group in sorted(by_label.items()):
        share = rng.dirichlet([alpha] * len(SITES))
        cuts = (np.cumsum(share) * len(group)).astype(int)[:-1]
        for site, part in zip(SITES, np.split(np.array(group, dtype=object), cuts), strict=True):
            out[site].extend(part.tolist())
    return out


def write_sites(root: Path, kind: str, parts: dict[str, list[Example]], cache: Path) -> Any:
    settings = load_settings(root / "home")
    spec = MEASURES.get(kind)
    for site, examples in parts.items():
        site_dir = settings.site_dir(site)
        ensure_site_policy(site_dir)
        set_allowed_jobs(site_dir, [*DEFAULT_ALLOWED_JOBS, "train"])  # opt in
        lines = []
        for ex in examples:
            row: dict[str, Any] = {"labels": ex.labels}
            if spec.pair:
                row.update(post=ex.texts[0], response=ex.texts[1])
            else:
                row["text"] = ex.texts[0]
            if ex.group:
                row["group"] = ex.group
            lines.append(json.dumps(row))
        (site_dir / "train").mkdir(parents=True, exist_ok=True)
        (site_dir / "train" / f"{kind}.jsonl").write_text("\n".join(lines) + "\n", "utf-8")
        (site_dir / "cache").mkdir(exist_ok=True)
        shutil.copy(cache, site_dir / "cache" / "embeddings.sqlite")  # vectors only
    return settings


def federated(
    settings: Any, kind: str, params: dict[str, Any], timeout: float, flower: bool = False
) -> dict[str, Any]:
    if flower:  # the real transport: SuperLink + one SuperNode per site (launcher.up)
        from mindcommons.federation.runner import run_job

        t = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):
            result = run_job(settings, {"job": "train", "params": params}, sites=list(SITES),
                             timeout=timeout)  # fmt: skip
        out = dict(result["training"])
        out["wall_seconds"] = round(time.perf_counter() - t, 2)
        out["missing"] = result["missing"]
        return out
    job = {"job": "train", "run_id": f"bench-{int(time.time())}", "params": json.dumps(params)}
    outcome = JobOutcome(run_id=job["run_id"], job=job, mode="local")
    chosen = dict(enumerate(SITES))
    t = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # round progress lines; stdout is JSON
        summary = run_training(local_send(settings, job), settings, job, chosen, outcome, timeout)
    summary["wall_seconds"] = round(time.perf_counter() - t, 2)
    summary["missing"] = outcome.missing
    return summary


def full_batch_head(spec: Any, x: Any, y: Any, lr: float, steps: int, seed: int) -> Any:
    """Centralized full-batch Adam (the fedadam recipe on pooled data): last step kept."""
    cfg = head_config(spec)
    cw = heads.balanced_class_weights(cfg, heads.label_counts(cfg, y))
    opts = heads.FitOptions(epochs=steps, lr=lr, weight_decay=1e-4, batch_size=len(y),
                            class_weights=cw, seed=seed)  # fmt: skip
    return heads.fit(cfg, heads.init_weights(cfg, seed), x, y, opts)


def test_score(kind: str, artifact: str, x_te: Any, y_te: Any, seed: int) -> dict[str, Any]:
    m = load_measurer(artifact)
    pred = predict_labels(m.config, m.weights, x_te)
    spec = MEASURES.get(kind)
    return {"metrics": score_outputs(spec.outputs, y_te, pred),
            "intervals": bootstrap(spec.outputs, y_te, pred, n_boot=500, seed=seed)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--kind", default="stressor")
    ap.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "mindcommons-bench" / "embeddings.sqlite",
    )
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--local-epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=3e-3, help="Adam step size (FedAvg, FedProx)")
    ap.add_argument(
        "--lr-schedule", default="constant", help="FedAvg/FedProx step size over the rounds"
    )
    ap.add_argument("--batch-size", type=int, default=64, help="local minibatch (FedAvg/Prox)")
    ap.add_argument("--patience", type=int, default=5, help="rounds without improvement")
    ap.add_argument("--server-lr", type=float, default=1.0, help="FedAvgM server step size")
    ap.add_argument("--server-momentum", type=float, default=0.5, help="FedAvgM momentum")
    ap.add_argument("--dp-server-lr", type=float, default=1.0, help="the DP variants' server lr")
    ap.add_argument("--dp-server-momentum", type=float, default=0.0, help="their momentum")
    ap.add_argument(
        "--dev",
        type=float,
        default=0.0,
        help="> 0: hold this share of the training pool out as a development set and score "
        "on it instead of the test set (to choose a recipe without looking at test)",
    )
    ap.add_argument(
        "--fedadam-lr",
        type=float,
        default=FEDADAM["server_lr"],
        help="fedadam: the server Adam's step size",
    )
    ap.add_argument(
        "--fedadam-rounds",
        type=int,
        default=FEDADAM["rounds"],
        help="fedadam: rounds (one full-batch gradient per site each)",
    )
    ap.add_argument(
        "--dp-fedadam-lr",
        type=float,
        default=None,
        help="dp-fedadam: server step size (default: the library's recipe)",
    )
    ap.add_argument(
        "--dp-fedadam-rounds",
        type=int,
        default=None,
        help="dp-fedadam: rounds = DP steps (default: the library's recipe)",
    )
    ap.add_argument("--alpha", type=float, default=0.5, help="Dirichlet label skew")
    ap.add_argument("--dp-epsilon", type=float, default=8.0)
    ap.add_argument("--dp-steps", type=int, default=10, help="DP full-batch steps per round")
    ap.add_argument(
        "--dp-rounds",
        type=int,
        default=10,
        help="rounds of the DP variants (the noise is set for rounds x steps)",
    )
    ap.add_argument("--dp-lr", type=float, default=0.03, help="Adam step size with DP")
    ap.add_argument(
        "--dp-lr-schedule",
        default="linear",
        help="step size over the DP rounds: constant, linear, cosine (dp-prev: constant)",
    )
    ap.add_argument("--dp-clip", type=float, default=2.0, help="per-example L2 clip")
    ap.add_argument(
        "--dp-feature-scale",
        type=float,
        default=3.0,
        help="DP steps on s*x (bias share of the clip: 1/(s^2+1))",
    )
    ap.add_argument(
        "--seeds",
        "--dp-seeds",
        dest="seeds",
        default="0,1,2,3,4",
        help="every variant once per seed (site validation split, DP noise); mean and min",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--flower",
        action="store_true",
        help="run the variants through a real Flower federation (slower; seconds per round)",
    )
    ap.add_argument(
        "--variants",
        default="fedadam,dp-fedadam,fedavg,fedprox,fedavg-plain,fedprox-plain,dp",
    )
    args = ap.parse_args()
    spec = MEASURES.get(args.kind)
    metric = spec.primary_metric
    pool, test, _ = load_kind(args.kind, args.data, args.seed)
    scored_on = "test"
    if args.dev > 0:  # choose on training data only: the test set is not scored at all
        pool, test, _ = split_examples(pool, args.seed + 7, val=args.dev, test=0.0)
        scored_on = f"development set ({args.dev:.0%} of the training pool)"
    x_te = features(spec, [e.texts for e in test], cache=args.cache)
    y_te = encode_labels(spec, test)

    # centralized: the union of the sites' data, same head, 10% validation
    train, val, _ = split_examples(pool, args.seed + 1, val=0.1, test=0.0)
    t = time.perf_counter()
    x_tr = features(spec, [e.texts for e in train], cache=args.cache)
    x_val = features(spec, [e.texts for e in val], cache=args.cache)
    weights, best_epoch, _ = fit_head(spec, x_tr, encode_labels(spec, train), x_val,
                                      encode_labels(spec, val), seed=args.seed)  # fmt: skip
    pred = predict_labels(head_config(spec), weights, x_te)
    central: dict[str, Any] = {
        "metrics": score_outputs(spec.outputs, y_te, pred),
        "intervals": bootstrap(spec.outputs, y_te, pred, n_boot=500, seed=args.seed),
        "seconds": round(time.perf_counter() - t, 2),
        "best_epoch": best_epoch + 1,
    }
    base = central["metrics"][metric]
    # the centralized head once per seed too (its validation split and init): how much of a
    # ratio is the denominator's own seed-to-seed spread
    seeds = [int(x) for x in args.seeds.split(",")]
    central_by_seed: dict[int, float] = {args.seed: base}
    for seed in seeds:
        if seed not in central_by_seed:
            tr_s, val_s, _ = split_examples(pool, seed + 1, val=0.1, test=0.0)
            w_s, _, _ = fit_head(
                spec, features(spec, [e.texts for e in tr_s], cache=args.cache),
                encode_labels(spec, tr_s), features(spec, [e.texts for e in val_s],
                cache=args.cache), encode_labels(spec, val_s), seed=seed,
            )  # fmt: skip
            pred_s = predict_labels(head_config(spec), w_s, x_te)
            central_by_seed[seed] = score_outputs(spec.outputs, y_te, pred_s)[metric]
    central_mean = float(np.mean([central_by_seed[s] for s in seeds]))
    central["over_seeds"] = {"by_seed": central_by_seed, "mean": central_mean}
    # centralized full-batch Adam (the fedadam recipe on the pooled training split, last
    # step kept), per seed; the stronger centralized mean is the reference for the goals
    full_batch: dict[int, float] = {}
    t = time.perf_counter()
    for seed in seeds:
        tr_s, _, _ = split_examples(pool, seed + 1, val=0.1, test=0.0)
        w_s = full_batch_head(spec, features(spec, [e.texts for e in tr_s], cache=args.cache),
                              encode_labels(spec, tr_s), args.fedadam_lr, args.fedadam_rounds,
                              seed)  # fmt: skip
        full_batch[seed] = score_outputs(
            spec.outputs, y_te, predict_labels(head_config(spec), w_s, x_te)
        )[metric]
    full_batch_mean = float(np.mean(list(full_batch.values())))
    central["full_batch"] = {
        "by_seed": full_batch, "mean": full_batch_mean,
        "seconds_per_seed": round((time.perf_counter() - t) / len(seeds), 2),
        "recipe": f"Adam {args.fedadam_lr}, {args.fedadam_rounds} full-batch steps, last kept",
    }  # fmt: skip
    reference = max(central_mean, full_batch_mean)
    central["reference"] = {"mean": reference, "which": "minibatch, best on validation"
                            if reference == central_mean else "full-batch"}  # fmt: skip

    root = Path(tempfile.mkdtemp(prefix="mc-fedtrain-"))
    parts = deal(pool, spec.outputs[0].key, args.alpha, args.seed)
    settings = write_sites(root, args.kind, parts, args.cache)
    label_mix = {s: {lab: sum(1 for e in ex if e.labels.get(spec.outputs[0].key) == lab)
                     for lab in spec.outputs[0].labels} for s, ex in parts.items()}  # fmt: skip
    common = {"trainer": "measure", "kind": args.kind, "rounds": args.rounds, "seed": args.seed,
              "local_epochs": args.local_epochs, "lr": args.lr, "patience": args.patience,
              "lr_schedule": args.lr_schedule, "batch_size": args.batch_size,
              "server_lr": args.server_lr, "server_momentum": args.server_momentum,
              "val_fraction": 0.1, "hidden": 0, "stop_metric": metric}  # fmt: skip
    variants = {
        "fedavg": {**common, "strategy": "fedavg", "mu": 0.0},
        "fedprox": {**common, "strategy": "fedprox", "mu": 0.01},
        "dp": {**common, "strategy": "fedavg", "mu": 0.0, "lr": args.dp_lr,
               "rounds": args.dp_rounds, "lr_schedule": args.dp_lr_schedule,
               "server_lr": args.dp_server_lr, "server_momentum": args.dp_server_momentum,
               "dp": {"epsilon": args.dp_epsilon, "delta": 1e-5, "clip": args.dp_clip,
                      "feature_scale": args.dp_feature_scale, "steps": args.dp_steps}},
    }  # fmt: skip
    # plain FedAvg / FedProx (no server momentum): the recipes before, in the same run
    variants["fedavg-plain"] = {**variants["fedavg"], "server_lr": 1.0, "server_momentum": 0.0}
    variants["fedprox-plain"] = {**variants["fedprox"], "server_lr": 1.0, "server_momentum": 0.0}
    # the earlier recipes, for comparison in the same run: a constant step size; clip 1 on
    # the raw embeddings with the noise set for --rounds rounds
    variants["dp-clip3"] = {**variants["dp"], "dp": {**variants["dp"]["dp"], "clip": 3.0}}
    variants["dp-prev"] = {**variants["dp-clip3"], "lr_schedule": "constant"}
    variants["dp-clip1"] = {**variants["dp-prev"], "rounds": args.rounds,
                            "dp": {**variants["dp"]["dp"], "clip": 1.0,
                                   "feature_scale": 1.0}}  # fmt: skip
    # FedAdam: one full-batch gradient per site per round, Adam at the coordinator (the
    # library's recipe, measure.federated.federated_params); with DP: DP-FedSGD
    bench = {"val_fraction": 0.1, "stop_metric": metric, "seed": args.seed}
    variants["fedadam"] = {**federated_params(args.kind, strategy="fedadam",
                                              rounds=args.fedadam_rounds,
                                              server_lr=args.fedadam_lr), **bench}  # fmt: skip
    variants["dp-fedadam"] = {**federated_params(
        args.kind, strategy="fedadam", dp_epsilon=args.dp_epsilon, dp_clip=args.dp_clip,
        dp_feature_scale=args.dp_feature_scale, rounds=args.dp_fedadam_rounds,
        server_lr=args.dp_fedadam_lr), **bench}  # fmt: skip
    names = []
    families = args.variants.split(",")
    for name in families:
        for seed in seeds:
            key = name if seed == seeds[0] else f"{name}-seed{seed}"
            variants[key] = {**variants[name], "seed": seed}
            names.append(key)
    runs: dict[str, Any] = {}
    if args.flower:
        launcher.up(settings)
    try:
        for name in names:
            summary = federated(settings, args.kind, variants[name], timeout=7200,
                                flower=args.flower)  # fmt: skip
            scored = test_score(args.kind, summary["artifact"], x_te, y_te, args.seed)
            hist = summary["history"]
            runs[name] = {
                metric: scored["metrics"][metric], "interval": scored["intervals"][metric],
                "ratio_to_centralized": scored["metrics"][metric] / base if base else None,
                "ratio_to_centralized_mean": scored["metrics"][metric] / central_mean,
                "ratio_to_reference": scored["metrics"][metric] / reference,
                "validation": summary.get("best_validation", {}).get(metric),
                "goal": 0.95 if name.startswith("dp") else 0.98,
                "rounds_run": summary["rounds_run"], "best_round": summary["best_round"],
                "seconds": summary["wall_seconds"],
                "bytes_sent_per_round": float(np.mean([h["bytes_sent"] for h in hist])),
                "bytes_received_per_round": float(np.mean([h["bytes_received"] for h in hist])),
                "site_seconds_per_round": float(np.mean([sum(h.get("site_seconds", {}).values())
                                                          for h in hist])),
                "dp": summary.get("dp"), "stopped": summary.get("stopped"),
                "missing": summary["missing"],
            }  # fmt: skip
            print(f"{name}: {metric} {runs[name][metric]:.4f} vs centralized {base:.4f}",
                  file=sys.stderr)  # fmt: skip
    finally:
        if args.flower:
            launcher.down(settings)
    over_seeds = {}
    for family in families:
        rows = [r for k, r in runs.items() if k == family or k.startswith(family + "-seed")]
        if rows:
            ratios = [r["ratio_to_centralized"] for r in rows]
            over_seeds[family] = {
                "seeds": len(rows), metric: float(np.mean([r[metric] for r in rows])),
                "ratio_mean": float(np.mean(ratios)), "ratio_min": min(ratios),
                "ratio_max": max(ratios), "ratios": [round(x, 4) for x in ratios],
                "ratios_to_centralized_mean": [round(r["ratio_to_centralized_mean"], 4)
                                               for r in rows],
                "validation_mean": float(np.mean([r["validation"] or 0.0 for r in rows])),
                "ratios_to_reference": [round(r["ratio_to_reference"], 4) for r in rows],
                "ratio_to_reference_min": min(r["ratio_to_reference"] for r in rows),
                "goal_met_on_every_seed": all(r["ratio_to_reference"] >= r["goal"]
                                              for r in rows),
                "rounds_run": [r["rounds_run"] for r in rows],
                "seconds": [r["seconds"] for r in rows],
                "kb_sent_per_round": round(float(np.mean([r["bytes_sent_per_round"]
                                                          for r in rows])) / 1000, 1),
                "kb_received_per_round": round(float(np.mean(
                    [r["bytes_received_per_round"] for r in rows])) / 1000, 1),
            }  # fmt: skip
    print(json.dumps({
        "kind": args.kind, "scored_on": scored_on, "over_seeds": over_seeds, "metric": metric,
        "n_test": len(test), "n_pool": len(pool),
        "sites_label_mix": label_mix, "centralized": central, "federated": runs,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }, indent=2, default=str))  # fmt: skip
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
