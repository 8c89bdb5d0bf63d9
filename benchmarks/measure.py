"""Measurement models on public data, each beside its published reference.

* EPITOME empathy on the 308-pair split of Gabriel et al. 2024 (train on the rest of
  EPITOME, the 308 test pairs excluded): accuracy / macro-F1 per mechanism, beside the
  released RoBERTa outputs (ER .808/.787, IP .847/.574, EX .912/.553), recomputed here
  with the same scorer and bootstrap;
* thinking traps: macro-F1 (mean positive-class F1 over 13 traps) on a held-out 10%
  split by thought (no published number: the first baseline);
* SAD stressor and CAMS cause: weighted-F1 on the IMHI test sentences/posts (the test
  texts are taken from the IMHI test files, their gold labels from the first sentence of
  the answers, and removed from training), beside the IMHI best (68.44, 47.62).

Each kind runs in its own process (time and peak memory per model). Embeddings are
cached (``--cache``); ``embed_seconds`` is the time spent encoding uncached texts.

``--finetune KINDS`` also fine-tunes the MiniLM encoder (``measure.finetune``: the top
``--ft-layers`` layers, 0 = all) for those kinds, each in a process of its own, on the same
train / validation / test split as the heads, and checks that the saved artifact predicts
the same through ``load_measurer``. ``MINDCOMMONS_MODEL_THREADS`` sets torch's threads.
``--ft-rationale-weight W`` adds EPITOME's rationale-extraction loss (empathy only).

Choosing among fine-tuning variants without looking at test: ``--ft-no-test --ft-home DIR``
trains and reports validation only, keeping the artifact in ``DIR``; ``--ft-score-home DIR``
later scores the chosen artifact on the test split (intervals, reference), no training.

    .venv/bin/python benchmarks/measure.py --data ../shared/data
    .venv/bin/python benchmarks/measure.py --data ../shared/data --finetune empathy,stressor
    .venv/bin/python benchmarks/measure.py --data ../shared/data --kinds "" --finetune empathy \
        --ft-rationale-weight 0.5 --ft-no-test --ft-home /tmp/ft-a
    .venv/bin/python benchmarks/measure.py --data ../shared/data --ft-score-home /tmp/ft-a
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from mindcommons.measure.kinds import MEASURES, Example, drop_overlap, text_key
from mindcommons.measure.model import features
from mindcommons.measure.scores import bootstrap, score_outputs
from mindcommons.measure.train import peak_rss_mb, split_examples, train_examples
from mindcommons.settings import load_settings

REFERENCE: dict[str, dict[str, Any]] = {
    "empathy": {"ER": (0.808, 0.787), "IP": (0.847, 0.574), "EX": (0.912, 0.553),
                "source": "RoBERTa (Sharma et al. 2020) outputs on the Gabriel et al. 2024 split"},
    "stressor": {"weighted_f1": 68.44, "source": "IMHI best fine-tuned discriminative model "
                 "(Yang et al. 2024, Table 2); MentaLLaMA-chat-13B 63.62, ChatGPT 54.05"},
    "cams": {"weighted_f1": 47.62, "source": "IMHI best fine-tuned discriminative model "
             "(Yang et al. 2024, Table 2); MentaLLaMA-chat-13B 45.52, ChatGPT 33.85"},
    "thinking-traps": {"source": "no published number; first baseline"},
}  # fmt: skip


ALIASES = {  # IMHI's wording of the gold labels -> the datasets' label names
    "no causes": "no reason",
    "jobs and career": "jobs and careers",
    "health issues": "health, fatigue, or physical pain",
    "other stress causes": "other",
    "emotion turmoil": "emotional turmoil",
}


def imhi_test(data: Path, name: str, labels: tuple[str, ...], key: str) -> list[Example]:
    """IMHI test items: the post from the query, the gold label from the answer's start."""
    out = []
    path = data / "imhi" / "test_instruction" / f"{name}.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        for n, row in enumerate(csv.DictReader(handle), start=2):
            m = re.search(r'post: "(.*)" Question', row["query"], re.S)
            first = row["gpt-3.5-turbo"].split(". Reasoning")[0].lower()
            for alias, label in ALIASES.items():
                first = first.replace(alias, label)
            found = [lab for lab in labels if lab.lower() in first]
            if m is None or not found:
                raise SystemExit(f"{path}: line {n}: cannot read the post or the gold label")
            best = max(found, key=len)  # "social relationships" before "relationship"
            out.append(Example((m.group(1).strip(),), {key: best}))
    return out


CAMS_SPLITS = ("train", "test", "extra")


def load_kind(kind: str, data: Path, seed: int) -> tuple[list[Example], list[Example], Any]:
    """(train pool, test, reference) for one kind."""
    from mindcommons.datasets import epitome

    spec = MEASURES.get(kind)
    if kind == "empathy":
        test_pairs = epitome.load_test_split(data / "epitome")
        test_ids = {p.pair_id for p in test_pairs}
        pool = [e for e in spec.load_public(data / "epitome") if e.group not in test_ids]  # type: ignore[misc]
        test = [Example((p.seeker_post, p.response), {k: str(v) for k, v in p.levels.items()},
                        group=p.pair_id) for p in test_pairs]  # fmt: skip
        return pool, test, reference_empathy(data, seed)
    if kind == "thinking-traps":
        examples = spec.load_public(data / "cognitive-reframing")  # type: ignore[misc]
        train, val, test = split_examples(examples, seed, val=0.0, test=0.1)
        return train + val, test, REFERENCE[kind]
    if kind == "stressor":  # trained on SAD's original_label, the label IMHI's gold follows
        test = imhi_test(data, "SAD", spec.outputs[0].labels, "category")
        pool = spec.load_public(data / "sad")  # type: ignore[misc]
    else:
        test = imhi_test(data, "CAMS", spec.outputs[0].labels, "cause")
        from mindcommons.datasets import cams

        pool = [Example((r.text,), {"cause": r.cause}, group=text_key(r.text))
                for r in cams.load_cams(data / "cams", CAMS_SPLITS)]  # fmt: skip
    # the IMHI test texts are in these files: drop them (by text_key, also cut-short copies)
    pool, dropped = drop_overlap(pool, test)
    return pool, test, {**REFERENCE[kind], "test_texts_dropped_from_training": dropped}


def reference_empathy(data: Path, seed: int) -> dict[str, Any]:
    from mindcommons.datasets import epitome
    from mindcommons.measure.heads import OutputSpec

    outs = epitome.load_reference_outputs(data / "epitome")
    ref: dict[str, Any] = {"source": REFERENCE["empathy"]["source"]}
    for mech, rows in outs.items():
        y = np.array([[g] for _, g in rows.values()], dtype=np.int64)
        p = np.array([[q] for q, _ in rows.values()], dtype=np.int64)
        spec = (OutputSpec(mech, ("0", "1", "2")),)
        m, ci = score_outputs(spec, y, p), bootstrap(spec, y, p, n_boot=1000, seed=seed)
        ref[mech] = {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
                     "accuracy_ci": ci["accuracy"], "macro_f1_ci": ci["macro_f1"],
                     "published": REFERENCE["empathy"][mech]}  # fmt: skip
    return ref


def paired_vs_reference(
    test: list[Example], pred: Any, data: Path, seed: int, n_boot: int
) -> dict[str, Any]:
    """EPITOME: our test predictions against RoBERTa's released ones on the same pairs,
    per mechanism: ``[ours - RoBERTa, low, high]`` (paired bootstrap) and a verdict."""
    from mindcommons.datasets import epitome
    from mindcommons.measure.scores import paired_bootstrap, verdict
    from mindcommons.measure.train import encode_labels

    spec = MEASURES.get("empathy")
    outs = epitome.load_reference_outputs(data / "epitome")
    theirs = np.zeros_like(pred)
    for j, o in enumerate(spec.outputs):
        rows = outs[o.key]
        missing = [e.group for e in test if e.group not in rows]
        if missing:
            raise SystemExit(f"RoBERTa outputs for {o.key} lack test pairs {missing[:3]}")
        theirs[:, j] = [rows[e.group][0] for e in test]
    diff = paired_bootstrap(spec.outputs, encode_labels(spec, test), pred, theirs,
                            n_boot=n_boot, seed=seed)  # fmt: skip
    method = ("paired bootstrap over the test pairs, 95%: beats if the interval of ours - "
              "RoBERTa is above 0, loses if below, else matches")  # fmt: skip
    out: dict[str, Any] = {"method": method}
    for o in spec.outputs:
        for metric in ("accuracy", "macro_f1"):
            d = diff[f"{o.key}.{metric}"]
            out[f"{o.key}.{metric}"] = {"difference": [round(x, 4) for x in d],
                                        "verdict": verdict(d)}  # fmt: skip
    return out


def run_one(kind: str, data: Path, cache: Path, hidden: list[int], seed: int, n_boot: int,
            epochs: int) -> dict[str, Any]:  # fmt: skip
    spec = MEASURES.get(kind)
    t0 = time.perf_counter()
    pool, test, reference = load_kind(kind, data, seed)
    train, val, _ = split_examples(pool, seed + 1, val=0.1, test=0.0)  # not the test split
    t1 = time.perf_counter()
    for part in (train, val, test):
        features(spec, [e.texts for e in part], cache=cache)
    embed_seconds = time.perf_counter() - t1
    rss_after_embed = peak_rss_mb()
    settings = load_settings(Path(tempfile.mkdtemp(prefix="mc-measure-")))
    variants: dict[str, Any] = {}
    for h in hidden:
        t2 = time.perf_counter()
        rep = train_examples(spec, train, val, test, settings=settings, save=False, hidden=h,
                             epochs=epochs, seed=seed, n_boot=n_boot, cache=cache)  # fmt: skip
        keep = ("accuracy", "macro_f1", "weighted_f1")
        per_key = {k: v for k, v in rep.metrics.items()
                   if k.split(".")[-1] in (*keep, "f1") and "." in k}  # fmt: skip
        variants["linear" if h == 0 else f"mlp{h}"] = {
            **{k: rep.metrics[k] for k in keep},
            "intervals": {k: v for k, v in rep.intervals.items() if k in keep or k in per_key},
            "per_output": per_key,
            "best_epoch": rep.best_epoch + 1,
            "train_seconds": round(time.perf_counter() - t2, 2),
        }
    return {
        "kind": kind, "cams_splits": list(CAMS_SPLITS) if kind == "cams" else None,
        "n_train": len(train), "n_val": len(val), "n_test": len(test),
        "data_seconds": round(t1 - t0, 2), "embed_seconds": round(embed_seconds, 2),
        "peak_rss_mb_after_embedding": round(rss_after_embed, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1), "variants": variants, "reference": reference,
    }  # fmt: skip


FT_MAX_LENGTH = {"empathy": 128, "thinking-traps": 64, "stressor": 64, "cams": 256}


def run_finetune(
    kind: str, data: Path, seed: int, n_boot: int, opts: dict[str, Any]
) -> dict[str, Any]:
    """Fine-tune on the same split as the heads; test metrics and an artifact round trip."""
    from mindcommons.measure import load_measurer
    from mindcommons.measure.finetune import FinetuneConfig, train_finetuned

    spec = MEASURES.get(kind)
    if opts["outputs"]:
        spec = spec.only(opts["outputs"].split(","))
    load0 = os.getloadavg()[0]
    pool, test, reference = load_kind(kind, data, seed)
    train, val, _ = split_examples(pool, seed + 1, val=0.1, test=0.0)
    if opts["no_test"]:
        test, reference = [], None
    config = FinetuneConfig(
        epochs=opts["epochs"], layers=opts["layers"], lr=opts["lr"], head_lr=opts["head_lr"],
        max_length=opts["max_length"] or FT_MAX_LENGTH[kind], batch_size=opts["batch_size"],
        max_seconds=opts["max_seconds"], class_weighting=opts["class_weighting"],
        seed=seed if opts["train_seed"] < 0 else opts["train_seed"],
        pair_truncation=opts["pair_truncation"], rationale_weight=opts["rationale_weight"],
        encoder=opts["encoder"], checkpointing=opts["checkpointing"],
    )  # fmt: skip
    home = Path(opts["home"]) if opts["home"] else Path(tempfile.mkdtemp(prefix="mc-finetune-"))
    settings = load_settings(home)
    rep = train_finetuned(spec, train, val, test, config, settings=settings, n_boot=n_boot,
                          progress=lambda m: print(m, file=sys.stderr, flush=True))  # fmt: skip
    assert rep.path is not None
    card = json.loads((rep.path / "card.json").read_text(encoding="utf-8"))
    if not test:  # validation only: the test split is scored later (--ft-score-home)
        return {
            "kind": kind, "n_train": len(train), "n_val": len(val), "artifact": str(rep.path),
            "best_validation": card["training"]["best_validation"],
            "config": card["training"]["finetune"], "steps": card["training"]["steps"],
            "best_step": card["training"]["best_step"],
            "best_epoch": card["training"]["best_epoch"], "stopped": card["training"]["stopped"],
            "validation_history": card["training"]["validation_history"],
            "train_seconds": rep.seconds, "peak_rss_mb": round(peak_rss_mb(), 1),
            "threads": card["training"]["threads"],
            "load_average_start_end": [round(load0, 2), round(os.getloadavg()[0], 2)],
        }  # fmt: skip
    # the artifact, loaded as any user would, must score the same on the test items
    from mindcommons.measure.train import encode_labels

    t = time.perf_counter()
    items = [e.texts if spec.pair else e.texts[0] for e in test]
    loaded = load_measurer(spec.name, settings).predict(items)
    pred = np.array([[o.labels.index(p.labels[o.key]) for o in spec.outputs] for p in loaded],
                    dtype=np.int64)  # fmt: skip
    again = score_outputs(spec.outputs, encode_labels(spec, test), pred)
    roundtrip = {"metrics_equal": all(abs(again[k] - v) < 1e-12 for k, v in rep.metrics.items()),
                 "predict_seconds": round(time.perf_counter() - t, 2),
                 "texts_per_second": round(len(items) / (time.perf_counter() - t), 1)}  # fmt: skip
    keep = ("accuracy", "macro_f1", "weighted_f1")
    per_key = {k: v for k, v in rep.metrics.items()
               if k.split(".")[-1] in (*keep, "f1") and "." in k}  # fmt: skip
    size = sum(f.stat().st_size for f in rep.path.iterdir())
    return {
        "kind": kind, "n_train": len(train), "n_val": len(val), "n_test": len(test),
        **{k: rep.metrics[k] for k in keep},
        "intervals": {k: v for k, v in rep.intervals.items() if k in keep or k in per_key},
        "per_output": per_key, "config": card["training"]["finetune"],
        "steps": card["training"]["steps"], "best_step": card["training"]["best_step"],
        "best_epoch": card["training"]["best_epoch"], "stopped": card["training"]["stopped"],
        "validation_history": card["training"]["validation_history"],
        "train_seconds": rep.seconds, "peak_rss_mb": round(peak_rss_mb(), 1),
        "threads": card["training"]["threads"], "artifact_mb": round(size / 2**20, 1),
        "artifact_roundtrip": roundtrip,
        "load_average_start_end": [round(load0, 2), round(os.getloadavg()[0], 2)],
        "reference": reference,
        **({"versus_reference": paired_vs_reference(test, pred, data, seed, n_boot)}
           if kind == "empathy" else {}),
    }  # fmt: skip


def score_home(kind: str, data: Path, seed: int, n_boot: int, home: Path) -> dict[str, Any]:
    """Score the newest ``kind`` artifact of ``home`` on the test split (no training)."""
    from mindcommons.measure import load_measurer
    from mindcommons.measure.train import encode_labels

    spec = MEASURES.get(kind)
    _, test, reference = load_kind(kind, data, seed)
    measurer = load_measurer(spec.name, load_settings(home))
    t = time.perf_counter()
    items = [e.texts if spec.pair else e.texts[0] for e in test]
    got = measurer.predict(items)
    seconds = time.perf_counter() - t
    pred = np.array([[o.labels.index(p.labels[o.key]) for o in spec.outputs] for p in got],
                    dtype=np.int64)  # fmt: skip
    y = encode_labels(spec, test)
    metrics = score_outputs(spec.outputs, y, pred)
    intervals = bootstrap(spec.outputs, y, pred, n_boot=n_boot, seed=seed)
    keep = ("accuracy", "macro_f1", "weighted_f1")
    per_key = {k: v for k, v in metrics.items()
               if k.split(".")[-1] in (*keep, "f1") and "." in k}  # fmt: skip
    return {
        "kind": kind, "home": str(home), "n_test": len(test),
        **{k: metrics[k] for k in keep},
        "intervals": {k: v for k, v in intervals.items() if k in keep or k in per_key},
        "per_output": per_key, "predict_seconds": round(seconds, 2),
        "texts_per_second": round(len(items) / seconds, 1), "reference": reference,
        **({"versus_reference": paired_vs_reference(test, pred, data, seed, n_boot)}
           if kind == "empathy" else {}),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="the shared data folder")
    ap.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "mindcommons-bench" / "embeddings.sqlite",
    )
    ap.add_argument("--kinds", default="empathy,thinking-traps,stressor,cams")
    ap.add_argument("--hidden", default="0,64", help="head variants: 0 = linear, N = MLP")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--cams-splits",
        default="train,test,extra",
        help="CAMS files to train on (the IMHI test posts are always removed)",
    )
    ap.add_argument("--finetune", default="", help="kinds to also fine-tune (comma-separated)")
    ap.add_argument("--ft-layers", type=int, default=2, help="top layers to train (0: all)")
    ap.add_argument("--ft-epochs", type=int, default=3)
    ap.add_argument("--ft-lr", type=float, default=1e-4)
    ap.add_argument("--ft-head-lr", type=float, default=5e-4)
    ap.add_argument("--ft-batch-size", type=int, default=16)
    ap.add_argument("--ft-max-length", type=int, default=0, help="0: per kind (128 pairs)")
    ap.add_argument("--ft-max-seconds", type=float, default=2100.0, help="time budget per kind")
    ap.add_argument("--ft-class-weighting", default="sqrt")
    ap.add_argument(
        "--ft-pair-truncation",
        default="longest_first",
        help="pairs: longest_first or post_first (the response is cut last)",
    )
    ap.add_argument(
        "--ft-rationale-weight",
        type=float,
        default=0.0,
        help="weight of the rationale-extraction loss (EPITOME; 0: off)",
    )
    ap.add_argument(
        "--ft-no-test",
        action="store_true",
        help="report validation only (choose a variant without test)",
    )
    ap.add_argument(
        "--ft-encoder",
        default="minilm",
        help="base encoder to fine-tune: minilm, or mpnet (all-mpnet-base-v2; large-encoder extra)",
    )
    ap.add_argument(
        "--ft-train-seed",
        type=int,
        default=-1,
        help="fine-tuning's own seed (weights, batches) on the same split (-1: --seed)",
    )
    ap.add_argument(
        "--ft-checkpointing",
        action="store_true",
        help="activation checkpointing: about half the peak memory, ~40%% slower steps",
    )
    ap.add_argument(
        "--ft-outputs",
        default="",
        help="train only these outputs (comma list, e.g. IP: one model per mechanism)",
    )
    ap.add_argument("--ft-home", default="", help="keep the fine-tuned artifact in this home")
    ap.add_argument(
        "--ft-score-home",
        type=Path,
        help="score this home's artifact on the test split (--kinds: the kind)",
    )
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--ft-one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    global CAMS_SPLITS
    CAMS_SPLITS = tuple(args.cams_splits.split(","))
    hidden = [int(h) for h in args.hidden.split(",")]
    ft_opts = {"layers": args.ft_layers, "epochs": args.ft_epochs, "lr": args.ft_lr,
               "head_lr": args.ft_head_lr, "batch_size": args.ft_batch_size,
               "max_length": args.ft_max_length, "max_seconds": args.ft_max_seconds,
               "class_weighting": args.ft_class_weighting,
               "pair_truncation": args.ft_pair_truncation,
               "rationale_weight": args.ft_rationale_weight, "no_test": args.ft_no_test,
               "encoder": args.ft_encoder, "checkpointing": args.ft_checkpointing,
               "train_seed": args.ft_train_seed, "outputs": args.ft_outputs,
               "home": args.ft_home}  # fmt: skip
    if args.ft_score_home:
        kind = args.kinds.split(",")[0] or "empathy"
        out = score_home(kind, args.data, args.seed, args.n_boot, args.ft_score_home)
        print(json.dumps({"load_average": [round(x, 2) for x in os.getloadavg()],
                          "results": {kind: {"finetune_test": out}}}, indent=2))  # fmt: skip
        return
    if args.ft_one:
        out = run_finetune(args.ft_one, args.data, args.seed, args.n_boot, ft_opts)
        print(json.dumps(out))
        return
    if args.one:
        out = run_one(args.one, args.data, args.cache, hidden, args.seed, args.n_boot, args.epochs)
        print(json.dumps(out))
        return
    results: dict[str, Any] = {}
    for kind in [k for k in args.kinds.split(",") if k]:
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, __file__, "--one", kind, "--data", str(args.data),
             "--cams-splits", args.cams_splits, "--cache",
             str(args.cache), "--hidden", args.hidden, "--epochs", str(args.epochs),
             "--n-boot", str(args.n_boot), "--seed", str(args.seed)],
            capture_output=True, text=True, check=False, env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )  # fmt: skip
        if proc.returncode != 0:
            results[kind] = {"error": proc.stderr.strip().splitlines()[-1:]}
            continue
        results[kind] = json.loads(proc.stdout.strip().splitlines()[-1])
        results[kind]["process_seconds"] = round(time.perf_counter() - t, 2)
        print(f"{kind}: done in {results[kind]['process_seconds']} s", file=sys.stderr)
    for kind in [k for k in args.finetune.split(",") if k]:
        t = time.perf_counter()
        cmd = [sys.executable, __file__, "--ft-one", kind, "--data", str(args.data),
               "--cams-splits", args.cams_splits, "--n-boot", str(args.n_boot),
               "--seed", str(args.seed)]  # fmt: skip
        for flag in ("layers", "epochs", "lr", "head_lr", "batch_size", "max_length",
                     "max_seconds", "class_weighting", "pair_truncation",
                     "rationale_weight", "encoder", "train_seed", "outputs", "home"):  # fmt: skip
            cmd += [f"--ft-{flag.replace('_', '-')}", str(ft_opts[flag])]
        if args.ft_no_test:
            cmd.append("--ft-no-test")
        if args.ft_checkpointing:
            cmd.append("--ft-checkpointing")
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"})  # fmt: skip
        entry = results.setdefault(kind, {})
        if proc.returncode != 0:
            entry["finetune"] = {"error": f"exit {proc.returncode}"}
            continue
        entry["finetune"] = json.loads(proc.stdout.strip().splitlines()[-1])
        entry["finetune"]["process_seconds"] = round(time.perf_counter() - t, 2)
        print(f"{kind} fine-tuned: done in {entry['finetune']['process_seconds']} s",
              file=sys.stderr)  # fmt: skip
    load = os.getloadavg()
    print(json.dumps({"load_average": [round(x, 2) for x in load], "cpus": os.cpu_count(),
                      "results": results}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
