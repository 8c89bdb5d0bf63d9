"""Federated LoRA fine-tuning of the embedded model: PHQ-9 item MAE, base vs adapted.

Three synthetic training sites (``mindcommons.synth``, ingested into their own
repositories) train a LoRA adapter by FedAvg rounds (``lora.federated.run_rounds``: the
coordinator's math in one process; each site's examples are built from its own records
only). The base model and base + adapter (through llama.cpp, ``lora/<dir>``) then score
the same documents of HELD-OUT synthetic sites with the ``phq9`` task
(``run_task_direct``); item MAE, total MAE, QWK come with 95% bootstrap intervals, plus a
paired bootstrap interval of the MAE difference. Prints JSON with training time, peak
memory, and generation tokens/s with and without the adapter.

    .venv/bin/python benchmarks/lora.py --patients 6 --rounds 1 --steps 4 --eval-items 8
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

TRAIN_SITES = (0, 1, 2)
HELDOUT_SITES = (3, 4)


def make_sites(root: Path, indices: tuple[int, ...], patients: int, seed: int) -> list[str]:
    """Generate synthetic sites ``indices`` and ingest each into its own repository."""
    from mindcommons.ingest import ingest_path
    from mindcommons.settings import load_settings
    from mindcommons.synth import generate

    top = max(indices) + 1
    data = root / f"synth-{seed}-{top}"
    if not data.exists():
        generate(data, sites=top, patients=patients, seed=seed, formats=("jsonl",))
    settings = load_settings(root / "home")
    names = sorted(p.name for p in data.iterdir() if p.is_dir())
    chosen = [names[i] for i in indices]
    for name in chosen:
        if not settings.site_dir(name).exists():
            ingest_path(data / name / "jsonl", name, settings=settings)
    return chosen


def summarise(results: list[Any]) -> dict[str, Any]:
    from mindcommons.metrics import pool, site_stats

    stats = site_stats(results, instrument="PHQ-9", n_boot=1000, seed=1)
    group = pool({"all": stats}).pooled
    out: dict[str, Any] = {}
    for key in ("item_mae", "total_mae", "item_qwk", "band_accuracy", "evidence_verbatim_rate"):
        m = group.metrics[key]
        out[key] = None if m.value is None else [round(m.value, 3), _r(m.low), _r(m.high)]
    out["parse_rate"] = group.metrics["parse_rate"].value
    tokens = sum(r.output_tokens for r in results)
    seconds = sum(r.seconds for r in results)
    out["output_tokens_per_s"] = round(tokens / seconds, 2) if seconds else None
    out["seconds_per_text"] = round(seconds / max(len(results), 1), 2)
    out["distinct_predictions"] = len({r.predicted_items for r in results})
    return out


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def item_errors(results: list[Any]) -> list[float]:
    """Per-document mean absolute item error (a missing item counts as 0, as in the metrics)."""
    out = []
    for r in results:
        errs = [abs((p if p is not None else 0) - t) for p, t in zip(r.predicted_items,
                r.true_items, strict=True)]  # fmt: skip
        out.append(sum(errs) / len(errs))
    return out


def paired_difference(base: list[float], adapted: list[float], seed: int) -> list[float]:
    """MAE(base) - MAE(adapted) and its 95% paired bootstrap interval (positive: better)."""
    rng = random.Random(seed)
    n = len(base)
    diffs = [b - a for b, a in zip(base, adapted, strict=True)]
    boots = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(2000))
    return [round(sum(diffs) / n, 3), round(boots[49], 3), round(boots[1949], 3)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=6, help="per synthetic site")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps per site/round")
    parser.add_argument("--rank", type=int, default=4)
    parser.add_argument("--alpha", type=float, default=8.0)
    parser.add_argument("--layers", type=int, default=0, help="adapt the last N blocks (0 all)")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--targets", default="q,v", help="projections with adapters")
    parser.add_argument(
        "--score-weight",
        type=float,
        default=1.0,
        help="loss weight of the score-digit tokens (lora.train)",
    )
    parser.add_argument("--limit", type=int, default=0, help="training examples per site")
    parser.add_argument("--max-length", type=int, default=1400)
    parser.add_argument("--eval-items", type=int, default=8, help="held-out documents")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None, help="keep state here")
    args = parser.parse_args()
    os.environ.setdefault("MINDCOMMONS_MODEL_THREADS", str(args.threads))

    from mindcommons.lora.api import lora_params
    from mindcommons.lora.export import save_adapter
    from mindcommons.lora.federated import run_rounds
    from mindcommons.models import load_model
    from mindcommons.models.embedded import embedded_model_path
    from mindcommons.repository import SiteRepository
    from mindcommons.settings import load_settings
    from mindcommons.tasks import run_task_direct

    root = args.work or Path(tempfile.mkdtemp(prefix="lora-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    names = make_sites(root, TRAIN_SITES + HELDOUT_SITES, args.patients, args.seed)
    train_sites, held_sites = names[: len(TRAIN_SITES)], names[len(TRAIN_SITES) :]
    settings = load_settings(root / "home")

    params = lora_params(
        rank=args.rank, alpha=args.alpha, layers=args.layers, steps=args.steps, lr=args.lr,
        limit=args.limit or None, seed=args.seed, max_length=args.max_length,
        targets=args.targets, score_weight=args.score_weight,
    )  # fmt: skip
    params["train_split"] = "all"  # held-out sites, not held-out people, measure the result
    started = time.perf_counter()
    fed = run_rounds(settings, train_sites, params, rounds=args.rounds,
                     progress=lambda line: print(line, flush=True))  # fmt: skip
    adapter = save_adapter(
        root / "adapter", embedded_model_path(), _spec(params), fed.weights,
        {"training": {"mode": "benchmark-fedavg", "rounds": args.rounds,
                      "sites": len(train_sites), "history": fed.rounds}},
    )  # fmt: skip
    report["training"] = {
        "sites": train_sites, "rounds": args.rounds, "steps_per_site_round": args.steps,
        "examples_per_site": {r["site"]: r["n_examples"] for r in fed.rounds},
        "loss_first_last": [[r["site"], round(r["loss_first"], 3), round(r["loss_last"], 3)]
                            for r in fed.rounds],
        "seconds": round(time.perf_counter() - started, 1),
        "seconds_per_step": round(
            sum(r["train_seconds"] for r in fed.rounds) / sum(r["steps"] for r in fed.rounds), 2),
        "tokens_per_s_training": round(
            sum(r["tokens"] for r in fed.rounds) / sum(r["train_seconds"] for r in fed.rounds), 1),
        "peak_rss_mb": fed.peak_rss_mb,
        "adapter_bytes_per_site_round": fed.bytes_per_site_round,
    }  # fmt: skip
    print(json.dumps({"training": report["training"]}), flush=True)

    items = []
    for site in held_sites:
        with SiteRepository.for_site(settings, site) as repo:
            items += repo.eval_items(instrument="PHQ-9", seed=args.seed)
    random.Random(args.seed).shuffle(items)
    items = items[: args.eval_items]
    report["heldout"] = {"sites": held_sites, "documents": len(items)}
    results = {}
    for name, spec in (("base", "embedded"), ("adapted", f"lora/{adapter}")):
        model = load_model(spec, n_threads=args.threads)
        try:
            results[name] = run_task_direct("phq9", items, model, log_dir=root, seed=0)
        finally:
            model.close()
        report[name] = summarise(results[name])
        print(json.dumps({name: report[name]}), flush=True)
    report["item_mae_base_minus_adapted"] = paired_difference(
        item_errors(results["base"]), item_errors(results["adapted"]), args.seed
    )
    report["improves"] = report["item_mae_base_minus_adapted"][0] > 0
    print(json.dumps(report, indent=2))


def _spec(params: dict[str, Any]) -> Any:
    from mindcommons.lora.layout import LoraSpec

    return LoraSpec.from_params(params)


if __name__ == "__main__":
    main()
