"""Secure aggregation (SecAgg+) versus plain FedAvg through a real Flower federation.

The fedtrain setup (``benchmarks/fedtrain.py``): a public dataset's training pool (default
SAD stressor categories) dealt to 3 label-skewed sites, the IMHI test sentences as the test
set, a centralized head on the union as the reference. Here both federated variants run
through Flower (SuperLink + 3 SuperNodes on 127.0.0.1, each site behind its gate, TLS and
node authentication on), with the same rounds and settings; the only difference is
``params["secure_aggregation"]``. Reported: test F1 of each and its ratio to centralized
(goal >= 0.98) and to plain FedAvg, seconds per fit round, bytes sent and received per fit
round, largest weight difference between the two final models.

    .venv/bin/python benchmarks/secagg.py --data ../shared/data
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
from fedtrain import SITES, deal, test_score, write_sites
from measure import load_kind

from mindcommons.federation import launcher
from mindcommons.federation.runner import run_job
from mindcommons.measure import load_measurer
from mindcommons.measure.kinds import MEASURES
from mindcommons.measure.model import features, head_config
from mindcommons.measure.train import encode_labels, fit_head, predict_labels, split_examples


def run(settings: Any, params: dict[str, Any], timeout: float) -> dict[str, Any]:
    t = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        result = run_job(settings, {"job": "train", "params": params}, sites=list(SITES),
                         timeout=timeout)  # fmt: skip
    summary = dict(result["training"])
    summary["wall_seconds"] = round(time.perf_counter() - t, 2)
    summary["missing"] = result["missing"]
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--kind", default="stressor")
    ap.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "mindcommons-bench" / "embeddings.sqlite",
    )
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--local-epochs", type=int, default=3)
    ap.add_argument("--alpha", type=float, default=0.5, help="Dirichlet label skew")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    spec = MEASURES.get(args.kind)
    metric = spec.primary_metric
    pool, test, _ = load_kind(args.kind, args.data, args.seed)
    x_te = features(spec, [e.texts for e in test], cache=args.cache)
    y_te = encode_labels(spec, test)

    train, val, _ = split_examples(pool, args.seed + 1, val=0.1, test=0.0)
    x_tr = features(spec, [e.texts for e in train], cache=args.cache)
    x_val = features(spec, [e.texts for e in val], cache=args.cache)
    weights, _, _ = fit_head(spec, x_tr, encode_labels(spec, train), x_val,
                             encode_labels(spec, val), seed=args.seed)  # fmt: skip
    base = test_score_weights(spec, weights, x_te, y_te)[metric]

    root = Path(tempfile.mkdtemp(prefix="mc-secagg-"))
    settings = write_sites(root, args.kind, deal(pool, spec.outputs[0].key, args.alpha,
                                                 args.seed), args.cache)  # fmt: skip
    common = {"trainer": "measure", "kind": args.kind, "rounds": args.rounds, "seed": args.seed,
              "local_epochs": args.local_epochs, "lr": 3e-3, "patience": 5,
              "val_fraction": 0.1, "hidden": 0, "stop_metric": metric, "strategy": "fedavg",
              "mu": 0.0}  # fmt: skip
    t = time.perf_counter()
    launcher.up(settings)
    up_seconds = round(time.perf_counter() - t, 1)
    runs: dict[str, Any] = {}
    models: dict[str, list[Any]] = {}
    try:
        for name, extra in (("fedavg", {}), ("fedavg+secagg", {"secure_aggregation": True})):
            params = {**common, **extra, "out": str(root / "models" / name)}
            summary = run(settings, params, timeout=7200)
            scored = test_score(args.kind, summary["artifact"], x_te, y_te, args.seed)
            models[name] = load_measurer(summary["artifact"]).weights
            fits = [h for h in summary["history"] if "site_seconds" in h]
            runs[name] = {
                metric: scored["metrics"][metric], "interval": scored["intervals"][metric],
                "ratio_to_centralized": scored["metrics"][metric] / base if base else None,
                "rounds_run": summary["rounds_run"], "best_round": summary["best_round"],
                "seconds": summary["wall_seconds"],
                "fit_round_seconds": float(np.mean([h["seconds"] for h in fits])),
                "bytes_sent_per_fit_round": float(np.mean([h["bytes_sent"] for h in fits])),
                "bytes_received_per_fit_round": float(np.mean([h["bytes_received"]
                                                               for h in fits])),
                "site_seconds_per_fit_round": float(np.mean([sum(h["site_seconds"].values())
                                                             for h in fits])),
                "secure_aggregation": summary.get("secure_aggregation"),
                "stopped": summary.get("stopped"), "missing": summary["missing"],
            }  # fmt: skip
            print(f"{name}: {metric} {runs[name][metric]:.4f} vs centralized {base:.4f}",
                  file=sys.stderr)  # fmt: skip
    finally:
        launcher.down(settings)
    plain, secure = runs["fedavg"], runs["fedavg+secagg"]
    same_rounds = plain["best_round"] == secure["best_round"]
    print(json.dumps({
        "kind": args.kind, "metric": metric, "n_test": len(test), "n_pool": len(pool),
        "centralized": base, "federated": runs,
        "secagg_over_plain": {
            "f1_ratio": secure[metric] / plain[metric] if plain[metric] else None,
            "fit_round_seconds_ratio": secure["fit_round_seconds"] / plain["fit_round_seconds"],
            "bytes_sent_ratio": secure["bytes_sent_per_fit_round"]
            / plain["bytes_sent_per_fit_round"],
            "bytes_received_ratio": secure["bytes_received_per_fit_round"]
            / plain["bytes_received_per_fit_round"],
            "max_abs_weight_difference": (
                max(float(np.max(np.abs(a - b))) for a, b in zip(
                    models["fedavg"], models["fedavg+secagg"], strict=True))
                if same_rounds else None),
        },
        "federation_up_seconds": up_seconds,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }, indent=2, default=str))  # fmt: skip
    shutil.rmtree(root, ignore_errors=True)


def test_score_weights(spec: Any, weights: Any, x_te: Any, y_te: Any) -> dict[str, float]:
    from mindcommons.measure.scores import score_outputs

    pred = predict_labels(head_config(spec), weights, x_te)
    return dict(score_outputs(spec.outputs, y_te, pred))


if __name__ == "__main__":
    main()
