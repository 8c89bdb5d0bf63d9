"""Empathy benchmark: the embedded model's replies to EPITOME seeker posts, scored on the
three EPITOME mechanisms by the trained measurement model, beside the human responses to
the same posts scored the same way (the in-run baseline).

Posts come from the 308-pair test split (``epitome/gabriel2024_split``). Unless
``--measurer`` names a trained artifact, a fresh ``empathy`` measurer is trained here on
every EPITOME pair whose seeker post is *not* among the benchmark posts (no leakage), into
a temporary folder. Also reported: the measurer's accuracy against the human responses'
gold levels (a check of the scorer itself).

    .venv/bin/python benchmarks/empathy.py --data /work/shared/data --n 40

Prints JSON: n, mean levels with 95% bootstrap intervals, the paired model - human gap.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


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


def default_cache() -> Path:
    """The embedding cache ``mindcommons train`` uses: ``<home>/cache/embeddings.sqlite``."""
    from mindcommons.settings import load_settings

    path = load_settings().resolved_home() / "cache" / "embeddings.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def epitome_dir(data: Path) -> Path:
    return data / "epitome" if (data / "epitome").is_dir() else data


def train_measurer(
    cache: Path | None, pairs: Sequence[Any], exclude_posts: set[str], out: Path, seed: int
) -> Any:
    """A fresh ``empathy`` measurer trained on pairs whose post is not benchmarked."""
    from mindcommons.measure import MEASURES, Example, load_measurer
    from mindcommons.measure.train import split_examples, train_examples
    from mindcommons.settings import load_settings

    kind = MEASURES.get("empathy")
    examples = [
        Example((p.seeker_post, p.response), {k: str(v) for k, v in p.levels.items()},
                group=p.seeker_post)
        for p in pairs
        if p.seeker_post not in exclude_posts
    ]  # fmt: skip
    train, val, test = split_examples(examples, seed)
    report = train_examples(
        kind, train, val, test, settings=load_settings(), out=out, seed=seed, cache=cache,
        data_note="EPITOME minus the benchmark posts",
    )  # fmt: skip
    return load_measurer(report.path), {"n_train": report.n_train, "metrics": report.metrics}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="shared data root or epitome/")
    parser.add_argument("--n", type=int, default=40, help="seeker posts to reply to")
    parser.add_argument("--model", default="embedded")
    parser.add_argument(
        "--measurer", default="", help="trained artifact name/path (default: train)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=None, help="embedding cache (sqlite)")
    args = parser.parse_args(argv)

    from mindcommons.datasets.epitome import MECHANISMS, load_epitome, load_test_split
    from mindcommons.models import load_model
    from mindcommons.suite.tasks.empathy import EmpathyTask, post_sample, score_reply

    folder = epitome_dir(args.data)
    split = load_test_split(folder)
    humans: dict[str, list[Any]] = defaultdict(list)
    for pair in split:
        humans[pair.seeker_post].append(pair)
    posts = sorted(humans)
    random.Random(args.seed).shuffle(posts)
    posts = posts[: args.n]

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if args.measurer:
            from mindcommons.measure import load_measurer

            measurer, training = load_measurer(args.measurer), {"artifact": args.measurer}
        else:
            measurer, training = train_measurer(
                args.cache or default_cache(), load_epitome(folder), set(posts),
                Path(tmp) / "empathy", args.seed,
            )  # fmt: skip
        train_seconds = time.perf_counter() - started
        task = EmpathyTask(measurer=measurer)
        model = load_model(args.model)
        model_scores, human_scores, gaps = [], [], []
        gold_hits: dict[str, list[float]] = {m: [] for m in MECHANISMS}
        gen_seconds, tokens = 0.0, 0
        for post in posts:
            sample = post_sample(post)
            generation = model.generate(list(sample.messages), task.generate_config(sample))
            gen_seconds += generation.seconds
            tokens += generation.usage.output_tokens
            mine = task.score(sample, generation).values
            model_scores.append(mine)
            theirs = []
            for pair in humans[post]:
                scored = score_reply(pair.pair_id, post, pair.response, measurer).values
                theirs.append(scored)
                human_scores.append(scored)
                for mech in MECHANISMS:
                    gold_hits[mech].append(float(scored[mech.lower()] == pair.levels[mech]))
            gaps.append(mine["empathy"] - float(np.mean([t["empathy"] for t in theirs])))
        model.close()

    keys = ["empathy", "er", "ip", "ex", "er_any", "ip_any", "ex_any"]
    result = {
        "benchmark": "empathy",
        "data": "EPITOME 308-pair test split (gabriel2024), seeker posts",
        "model": args.model,
        "n_posts": len(posts),
        "n_human_responses": len(human_scores),
        "measurer_training": training,
        "model_replies": {k: interval([s[k] for s in model_scores], args.seed) for k in keys},
        "human_responses": {k: interval([s[k] for s in human_scores], args.seed) for k in keys},
        "paired_gap_model_minus_human_empathy": interval(gaps, args.seed),
        "measurer_accuracy_on_human_gold": {
            m: interval(v, args.seed) for m, v in gold_hits.items()
        },
        "seconds": {
            "measurer_training": round(train_seconds, 1),
            "generation": round(gen_seconds, 1),
            "total": round(time.perf_counter() - started, 1),
        },
        "output_tokens": tokens,
    }
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
