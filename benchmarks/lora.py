"""Federated LoRA fine-tuning of the embedded model: PHQ-9 item MAE, base vs adapted.

Three synthetic training sites (``mindcommons.synth``, ingested into their own
repositories) train a LoRA adapter by FedAvg rounds; each site's examples are built from
its own records only. ``--flower`` runs the rounds through a real Flower federation on
this machine (``launcher.up`` + ``train_federated``: the generic ``train`` job, trainer
``lora``, TLS and node authentication): each site trains on its training people and
validates every global adapter on its held-out people (``--val-fraction``); the
coordinator keeps the round with the lowest pooled validation loss. Without ``--flower``
the same math runs as a plain loop in this process (``lora.federated.run_rounds``, all
people trained on, the last round kept).

The base model and base + adapter (through llama.cpp, ``lora/<dir>``) then score the
same documents of HELD-OUT synthetic sites (never used for training or choices) with the
``phq9`` task (``run_task_direct``); the base model's pass runs while the sites train.
Item MAE, total MAE, QWK come with 95% bootstrap intervals, plus paired bootstrap
intervals of the per-document MAE differences against the base model and against a
reference that reads no text: each item's median score over the training sites'
questionnaires. Prints JSON with training time per round, bytes per round, peak memory,
and generation tokens/s with and without the adapter.

    .venv/bin/python benchmarks/lora.py --patients 6 --rounds 1 --steps 4 --eval-items 8
    .venv/bin/python benchmarks/lora.py --flower --rounds 3 --steps 8 --eval-items 0
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

TRAIN_SITES = (0, 1, 2)


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


def median_prior(items: list[Any]) -> tuple[int, ...]:
    """Each item's (low) median score over ``items``: a reference that reads no text."""
    width = len(items[0].true_items)
    return tuple(int(statistics.median_low(i.true_items[k] for i in items)) for k in range(width))


def prior_errors(prior: tuple[int, ...], items: list[Any]) -> list[float]:
    """Per-document mean absolute item error of always answering ``prior``."""
    return [sum(abs(p - t) for p, t in zip(prior, i.true_items, strict=True)) / len(prior)
            for i in items]  # fmt: skip


def fit_metrics(dump: Path) -> list[dict[str, float]]:
    """The ``fit.*`` numbers of every site reply in a Flower debug dump (one per site/round)."""
    out = []
    for line in dump.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        if entry.get("kind") != "train":
            continue
        for record in (entry.get("content") or {}).values():
            fit = {k[4:]: float(v) for k, v in record.items()
                   if k.startswith("fit.") and isinstance(v, int | float)}  # fmt: skip
            if fit:
                out.append(fit)
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
    parser.add_argument("--eval-items", type=int, default=8, help="held-out documents (0 all)")
    parser.add_argument("--flower", action="store_true", help="rounds through real Flower")
    parser.add_argument("--val-fraction", type=float, default=0.4,
                        help="--flower: share of each training site's people held out "
                        "for validation (model selection)")  # fmt: skip
    parser.add_argument("--val-limit", type=int, default=4, help="validation docs per site")
    parser.add_argument("--floor", type=int, default=4,
                        help="--flower: the bench sites' min_release_n")  # fmt: skip
    parser.add_argument("--heldout-sites", type=int, default=2,
                        help="held-out synthetic sites scored (site-d, site-e, ...; each "
                        "site is generated alone: the training sites stay the same)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None, help="keep state here")
    args = parser.parse_args()
    os.environ.setdefault("MINDCOMMONS_MODEL_THREADS", str(args.threads))

    from mindcommons.lora.api import lora_params
    from mindcommons.repository import SiteRepository
    from mindcommons.settings import load_settings

    root = args.work or Path(tempfile.mkdtemp(prefix="lora-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()},
                              "load_average_start": list(os.getloadavg())}  # fmt: skip
    if args.heldout_sites < 1:
        raise SystemExit("--heldout-sites must be at least 1")
    heldout = tuple(range(len(TRAIN_SITES), len(TRAIN_SITES) + args.heldout_sites))
    names = make_sites(root, TRAIN_SITES + heldout, args.patients, args.seed)
    train_sites, held_sites = names[: len(TRAIN_SITES)], names[len(TRAIN_SITES) :]
    settings = load_settings(root / "home")

    params = lora_params(
        rank=args.rank, alpha=args.alpha, layers=args.layers, steps=args.steps, lr=args.lr,
        limit=args.limit or None, seed=args.seed, max_length=args.max_length,
        targets=args.targets, score_weight=args.score_weight, val_limit=args.val_limit,
    )  # fmt: skip
    if args.flower:
        params["heldout_fraction"] = args.val_fraction
    else:
        params["train_split"] = "all"  # held-out sites, not held-out people, measure the result

    items = []
    for site in held_sites:
        with SiteRepository.for_site(settings, site) as repo:
            items += repo.eval_items(instrument="PHQ-9", seed=args.seed)
    random.Random(args.seed).shuffle(items)
    items = items[: args.eval_items] if args.eval_items > 0 else items
    report["heldout"] = {"sites": held_sites, "documents": len(items)}
    prior = median_prior(_training_items(settings, train_sites, params, args.seed))
    report["median_prior"] = {"items": list(prior)}

    # the base model does not depend on training: score it while the sites train
    results: dict[str, Any] = {}
    base_thread = threading.Thread(
        target=lambda: results.update(base=_score(root, items, "embedded", args.threads))
    )
    base_thread.start()
    started = time.perf_counter()
    if args.flower:
        adapter, training = _train_flower(root, settings, train_sites, params, args)
    else:
        adapter, training = _train_plain(root, settings, train_sites, params, args)
    training["seconds"] = round(time.perf_counter() - started, 1)
    training["load_average_end"] = list(os.getloadavg())
    report["training"] = training
    print(json.dumps({"training": training}), flush=True)
    base_thread.join()
    if "base" not in results:
        raise SystemExit("the base model's evaluation failed (see the traceback above)")
    results["adapted"] = _score(root, items, f"lora/{adapter}", args.threads)
    for name in ("base", "adapted"):
        report[name] = summarise(results[name])
        print(json.dumps({name: report[name]}), flush=True)
    with (root / "documents.jsonl").open("w", encoding="utf-8") as handle:  # for re-analysis
        for b, a in zip(results["base"], results["adapted"], strict=True):
            row = {"document": b.sample_id, "true": b.true_items,
                   "base": b.predicted_items, "adapted": a.predicted_items}  # fmt: skip
            handle.write(json.dumps(row) + "\n")
    base_err = item_errors(results["base"])
    adapted_err = item_errors(results["adapted"])
    prior_err = prior_errors(prior, items)
    report["median_prior"]["item_mae"] = round(sum(prior_err) / len(prior_err), 3)
    report["item_mae_base_minus_adapted"] = paired_difference(base_err, adapted_err, args.seed)
    report["item_mae_prior_minus_adapted"] = paired_difference(prior_err, adapted_err, args.seed)
    report["improves"] = report["item_mae_base_minus_adapted"][1] > 0  # interval above 0
    report["load_average_end"] = list(os.getloadavg())
    print(json.dumps(report, indent=2))


def _training_items(
    settings: Any, sites: list[str], params: dict[str, Any], seed: int
) -> list[Any]:
    """The training sites' documents that training may use (for the median reference)."""
    from mindcommons.lora.data import Split, split_items
    from mindcommons.repository import SiteRepository

    split: Split = "all" if params.get("train_split") == "all" else "train"
    out = []
    for site in sites:
        with SiteRepository.for_site(settings, site) as repo:
            found = repo.eval_items(instrument="PHQ-9", seed=seed)
        out += split_items(found, split, float(params.get("heldout_fraction", 0.2)), seed)
    return out


def _score(root: Path, items: list[Any], spec: str, threads: int) -> list[Any]:
    from mindcommons.models import load_model
    from mindcommons.tasks import run_task_direct

    model = load_model(spec, n_threads=threads)
    try:
        return run_task_direct("phq9", items, model, log_dir=root, seed=0)
    finally:
        model.close()


def _train_plain(
    root: Path, settings: Any, sites: list[str], params: dict[str, Any], args: Any
) -> tuple[Path, dict[str, Any]]:
    from mindcommons.lora.export import save_adapter
    from mindcommons.lora.federated import run_rounds
    from mindcommons.models.embedded import embedded_model_path

    fed = run_rounds(settings, sites, params, rounds=args.rounds,
                     progress=lambda line: print(line, flush=True))  # fmt: skip
    adapter = save_adapter(
        root / "adapter", embedded_model_path(), _spec(params), fed.weights,
        {"training": {"mode": "benchmark-fedavg", "rounds": args.rounds,
                      "sites": len(sites), "history": fed.rounds}},
    )  # fmt: skip
    return adapter, {
        "transport": "plain loop (run_rounds)", "sites": sites, "rounds": args.rounds,
        "steps_per_site_round": args.steps,
        "examples_per_site": {r["site"]: r["n_examples"] for r in fed.rounds},
        "loss_first_last": [[r["site"], round(r["loss_first"], 3), round(r["loss_last"], 3)]
                            for r in fed.rounds],
        "seconds_per_step": round(
            sum(r["train_seconds"] for r in fed.rounds) / sum(r["steps"] for r in fed.rounds), 2),
        "tokens_per_s_training": round(
            sum(r["tokens"] for r in fed.rounds) / sum(r["train_seconds"] for r in fed.rounds), 1),
        "peak_rss_mb": fed.peak_rss_mb,
        "adapter_bytes_per_site_round": fed.bytes_per_site_round,
    }  # fmt: skip


def _train_flower(
    root: Path, settings: Any, sites: list[str], params: dict[str, Any], args: Any
) -> tuple[Path, dict[str, Any]]:
    """Rounds through a real Flower federation of the training sites on this machine."""
    from mindcommons.federation import launcher
    from mindcommons.lora.api import train_federated
    from mindcommons.policy import DEFAULT_ALLOWED_JOBS, set_allowed_jobs, set_min_release_n

    for site in sites:  # the bench sites' stewards allow training and set their floor
        set_allowed_jobs(settings.site_dir(site), [*DEFAULT_ALLOWED_JOBS, "train"])
        set_min_release_n(settings.site_dir(site), args.floor)
    out, dump = root / "adapter", root / "dump.jsonl"
    dump.unlink(missing_ok=True)
    launcher.up(settings, sites)
    try:
        result = train_federated(settings, params, sites=sites, rounds=args.rounds, out=out,
                                 timeout=6 * 3600, debug_dump=dump,
                                 progress=lambda line: print(line, flush=True))  # fmt: skip
    finally:
        launcher.down(settings)
    if result.get("missing"):
        raise SystemExit(f"sites missing from the federated run: {result['missing']}")
    summary = result["training"]
    fits = fit_metrics(dump)
    rounds = [h for h in summary["history"] if h.get("site_seconds")]
    steps = sum(f["steps"] for f in fits)
    return Path(summary["artifact"]), {
        "transport": "Flower (train_federated, TLS, 1 SuperNode per site)",
        "sites": sites, "site_data": summary.get("site_data"),
        "rounds": summary.get("rounds_run"), "best_round": summary.get("best_round"),
        "steps_per_site_round": args.steps,
        "validation": [[h["validation_of_round"], {k: round(v, 4) for k, v in
                        h.get("validation", {}).items()}] for h in summary["history"]],
        "seconds_per_round": [round(h["seconds"], 1) for h in rounds],
        "bytes_sent_per_round": [int(h["bytes_sent"]) for h in rounds],
        "bytes_received_per_round": [int(h["bytes_received"]) for h in rounds],
        "loss_first_last": [[round(f["loss_first"], 3), round(f["loss_last"], 3)] for f in fits],
        "seconds_per_step": round(sum(f["train_seconds"] for f in fits) / steps, 2),
        "tokens_per_s_training": round(
            sum(f["tokens"] for f in fits) / sum(f["train_seconds"] for f in fits), 1),
        "peak_rss_mb_site": max(f["peak_rss_mb"] for f in fits),
        "coordinator_seconds": summary.get("seconds"),
    }  # fmt: skip


def _spec(params: dict[str, Any]) -> Any:
    from mindcommons.lora.layout import LoraSpec

    return LoraSpec.from_params(params)


if __name__ == "__main__":
    main()
