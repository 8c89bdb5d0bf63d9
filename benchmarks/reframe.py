"""Cognitive-reframing benchmark (Sharma et al. 2023 data) for the embedded model.

1. Thinking-trap identification (task ``thinking-traps``): macro-F1 and accuracy over the
   13 traps + "not distorted" on a seeded sample of thoughts, beside the majority-class
   baseline (the most frequent label of the *other* thoughts, predicted for every one),
   with 95% bootstrap intervals.
2. Reframe generation (task ``reframe``) on (situation, thought) rows of
   ``reframing_dataset.csv``: trap addressed (the trained thinking-traps measurer),
   positivity and actionability (lexicon proxies), beside the human reframes of the same
   rows scored the same way (the in-run baseline). Unless ``--measurer`` names a trained
   artifact, a fresh measurer is trained here on ``thinking_traps.jsonl`` minus the
   benchmarked thoughts.

    .venv/bin/python benchmarks/reframe.py --data /work/shared/data --n-traps 120 --n-reframes 30
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
UNPARSED = "(unparsed)"


def interval(values: Sequence[float], seed: int = 0, n_boot: int = 2000) -> dict[str, Any]:
    """Mean and 95% percentile bootstrap interval."""
    arr = np.asarray(values, dtype=float)
    if not len(arr):
        return {"mean": None, "ci95": None, "n": 0}
    rng = np.random.default_rng(seed)
    means = arr[rng.integers(0, len(arr), (n_boot, len(arr)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {
        "mean": round(float(arr.mean()), 4),
        "ci95": [round(lo, 4), round(hi, 4)],
        "n": len(arr),
    }


def macro_f1_interval(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str], seed: int = 0,
    n_boot: int = 1000,
) -> dict[str, Any]:  # fmt: skip
    """Macro-F1 over ``labels`` (absent from both sides -> left out) with a bootstrap CI."""
    from sklearn.metrics import f1_score

    def f1(t: Sequence[str], p: Sequence[str]) -> float:
        present = [lab for lab in labels if lab in set(t) | set(p)]
        return float(f1_score(t, p, labels=present, average="macro", zero_division=0))

    t, p = np.asarray(y_true), np.asarray(y_pred)
    rng = np.random.default_rng(seed)
    boots = [f1(t[i], p[i]) for i in rng.integers(0, len(t), (n_boot, len(t)))]
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return {"value": round(f1(t, p), 4), "ci95": [round(lo, 4), round(hi, 4)], "n": len(t)}


def default_cache() -> Path:
    """The embedding cache ``mindcommons train`` uses: ``<home>/cache/embeddings.sqlite``."""
    from mindcommons.settings import load_settings

    path = load_settings().resolved_home() / "cache" / "embeddings.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def reframing_dir(data: Path) -> Path:
    return data / "cognitive-reframing" if (data / "cognitive-reframing").is_dir() else data


def identify(model: Any, folder: Path, n: int, seed: int) -> dict[str, Any]:
    from mindcommons.suite.tasks._traps import LABELS
    from mindcommons.suite.tasks.reframe import ThinkingTrapsTask

    task = ThinkingTrapsTask()
    samples = task.load(folder)
    random.Random(seed).shuffle(samples)
    chosen, rest = samples[:n], samples[n:]
    majority = Counter(s.data["gold"][0] for s in rest).most_common(1)[0][0]
    y_true, y_pred, base_true, base_pred, seconds = [], [], [], [], 0.0
    for sample in chosen:
        generation = model.generate(list(sample.messages), task.generate_config(sample, seed))
        seconds += generation.seconds
        score = task.score(sample, generation)
        y_true.append(score.label_true or "")
        y_pred.append(score.label_pred or UNPARSED)
        gold = sample.data["gold"]
        base_true.append(majority if majority in gold else gold[0])
        base_pred.append(majority)
    return {
        "n_thoughts": len(chosen),
        "labels": len(LABELS),
        "model": {
            "macro_f1": macro_f1_interval(y_true, y_pred, LABELS, seed),
            "accuracy": interval([float(t == p) for t, p in zip(y_true, y_pred, strict=True)]),
            "unparsed": y_pred.count(UNPARSED),
            "predicted_label_counts": dict(Counter(y_pred).most_common()),
        },
        "majority_baseline": {
            "label": majority,
            "macro_f1": macro_f1_interval(base_true, base_pred, LABELS, seed),
            "accuracy": interval(
                [float(t == p) for t, p in zip(base_true, base_pred, strict=True)]
            ),
        },
        "generation_seconds": round(seconds, 1),
    }


def train_traps_measurer(
    cache: Path | None, folder: Path, exclude: set[str], out: Path, seed: int
) -> Any:
    from mindcommons.datasets.thinking_traps import TRAPS, load_thinking_traps
    from mindcommons.measure import MEASURES, Example, load_measurer
    from mindcommons.measure.train import split_examples, train_examples
    from mindcommons.settings import load_settings

    kind = MEASURES.get("thinking-traps")
    examples = [
        Example((r.thought,), {t: "1" if t in r.traps else "0" for t in TRAPS})
        for r in load_thinking_traps(folder)
        if r.thought not in exclude
    ]
    train, val, test = split_examples(examples, seed)
    report = train_examples(
        kind, train, val, test, settings=load_settings(), out=out, seed=seed, cache=cache,
        data_note="thinking_traps.jsonl minus the benchmarked thoughts",
    )  # fmt: skip
    return load_measurer(report.path), {"n_train": report.n_train, "metrics": report.metrics}


def reframes(
    model: Any, folder: Path, n: int, seed: int, measurer_name: str, cache: Path
) -> dict[str, Any]:
    from mindcommons.datasets.thinking_traps import load_reframing
    from mindcommons.suite.tasks.reframe import ReframeTask, score_reframe

    rows = load_reframing(folder)
    task = ReframeTask()
    samples = [s for s in task.load(folder) if s.data["traps"]]
    random.Random(seed).shuffle(samples)
    chosen = samples[:n]
    keys = {(s.data["situation"], s.data["thought"]) for s in chosen}
    human = [r for r in rows if (r.situation, r.thought) in keys]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if measurer_name:
            from mindcommons.measure import load_measurer

            measurer, training = load_measurer(measurer_name), {"artifact": measurer_name}
        else:
            measurer, training = train_traps_measurer(
                cache, folder, {t for _, t in keys}, Path(tmp) / "thinking-traps", seed
            )
    train_seconds = time.perf_counter() - started
    task = ReframeTask(measurer=measurer)
    mine, seconds = [], 0.0
    for sample in chosen:
        generation = model.generate(list(sample.messages), task.generate_config(sample, seed))
        seconds += generation.seconds
        mine.append(task.score(sample, generation).values)
    theirs = [
        score_reframe("h", r.thought, sorted(r.traps), r.reframe, measurer).values
        for r in human
        if r.traps
    ]
    names = ["trap_addressed", "trap_reduction", "traps_in_reframe", "positivity", "actionability"]
    return {
        "n_rows": len(chosen),
        "n_human_reframes": len(theirs),
        "measurer_training": training,
        "model_reframes": {k: interval([s[k] for s in mine if k in s], seed) for k in names},
        "human_reframes": {k: interval([s[k] for s in theirs if k in s], seed) for k in names},
        "seconds": {"measurer_training": round(train_seconds, 1), "generation": round(seconds, 1)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--n-traps", type=int, default=120)
    parser.add_argument("--n-reframes", type=int, default=30)
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--measurer", default="", help="trained thinking-traps artifact")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=None, help="embedding cache (sqlite)")
    args = parser.parse_args(argv)

    from mindcommons.models import load_model

    folder = reframing_dir(args.data)
    model = load_model(args.model)
    started = time.perf_counter()
    result = {
        "benchmark": "reframe",
        "data": "Cognitive-Reframing (Sharma et al. 2023)",
        "model": args.model,
        "thinking_traps": identify(model, folder, args.n_traps, args.seed),
        "reframe": reframes(
            model,
            folder,
            args.n_reframes,
            args.seed,
            args.measurer,
            args.cache or default_cache(),
        ),
    }
    result["seconds_total"] = round(time.perf_counter() - started, 1)
    model.close()
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
