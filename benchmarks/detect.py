"""``detect`` on the IMHI test sets: the embedded model's weighted F1 per set with a 95%
bootstrap interval, a majority-class baseline scored on the same posts in the same run,
and the published ChatGPT zero-shot and MentaLLaMA-chat-13B numbers beside them.

Each set contributes a seeded random sample of ``--limit`` posts (the full sets hold
405-2,441 posts; the embedded model needs ~1-10 s a post on 2 shared cores). The
published numbers are on the full test sets, so compare with the interval, not the point.

    .venv/bin/python benchmarks/detect.py --data /work/shared/data --limit 10
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from mindcommons.datasets.imhi import IMHI_SETS, imhi_set, load_imhi
from mindcommons.models import load_model
from mindcommons.suite.tasks._detect_metrics import bootstrap_f1
from mindcommons.suite.tasks.detect import DETECT

# Yang et al. 2024 (MentaLLaMA), Table 2, weighted F1 on the full IMHI test sets.
PUBLISHED: dict[str, dict[str, float]] = {
    "DR": {"chatgpt_zero_shot": 82.41, "mentallama_chat_13b": 85.68},
    "dreaddit": {"chatgpt_zero_shot": 71.79, "mentallama_chat_13b": 75.79},
    "SAD": {"chatgpt_zero_shot": 54.05, "mentallama_chat_13b": 63.62},
    "CAMS": {"chatgpt_zero_shot": 33.85, "mentallama_chat_13b": 45.52},
    "T-SID": {"chatgpt_zero_shot": 33.30, "mentallama_chat_13b": 75.31},
    "loneliness": {"chatgpt_zero_shot": 58.40, "mentallama_chat_13b": 85.10},
    "Irf": {"chatgpt_zero_shot": 41.33, "mentallama_chat_13b": 76.49},
    "MultiWD": {"chatgpt_zero_shot": 62.72, "mentallama_chat_13b": 75.11},
}


def _pct(values: tuple[float, float, float]) -> dict[str, float]:
    point, low, high = values
    return {"f1": round(100 * point, 2), "low": round(100 * low, 2), "high": round(100 * high, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder holding imhi/")
    parser.add_argument("--limit", type=int, default=10, help="posts per set")
    parser.add_argument("--sets", nargs="*", default=list(IMHI_SETS))
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--boot", type=int, default=1000)
    parser.add_argument(
        "--from-log", type=Path, default=None,
        help="no model: score the posts a stopped run logged on stderr (a prefix of each set)",
    )  # fmt: skip
    args = parser.parse_args()
    logged: dict[str, str | None] = {}
    if args.from_log is not None:
        for line in args.from_log.read_text(encoding="utf-8").splitlines():
            if line.startswith("{") and '"sample"' in line:
                entry = json.loads(line)
                logged[str(entry["sample"])] = entry["pred"]

    folder = args.data / "imhi" if (args.data / "imhi").is_dir() else args.data
    full = load_imhi(folder, args.sets)
    model = load_model(args.model) if args.from_log is None else None
    started = time.perf_counter()
    per_set: dict[str, Any] = {}
    for name in args.sets:
        spec = imhi_set(name)
        records = full[spec.name]
        majority = Counter(r.label for r in records).most_common(1)[0][0]
        root = folder / "test_instruction" if (folder / "test_instruction").is_dir() else folder
        csv_path = root / spec.filename
        samples = DETECT.load(csv_path, limit=args.limit, seed=args.seed)
        true: list[str] = []
        pred: list[str | None] = []
        seconds = 0.0
        tokens = 0
        for sample in samples:
            if model is None:  # --from-log: the logged posts, in the seeded order
                if sample.id not in logged:
                    break
                true.append(str(sample.target))
                pred.append(logged[sample.id])
                continue
            generation = model.generate(list(sample.messages), DETECT.generate_config(sample))
            score = DETECT.score(sample, generation)
            true.append(str(sample.target))
            pred.append(score.label_pred.split(":", 1)[1] if score.label_pred else None)
            seconds += generation.seconds
            tokens += generation.usage.total_tokens
            progress = {"set": spec.name, "sample": sample.id, "pred": pred[-1], "true": true[-1]}
            print(json.dumps(progress), file=sys.stderr, flush=True)  # partial runs stay usable
        n = len(true)
        if n == 0:
            continue
        per_set[spec.name] = {
            "n": n,
            "n_full_set": len(records),
            "embedded": {
                **_pct(bootstrap_f1(true, pred, "weighted", n_boot=args.boot, seed=args.seed)),
                "accuracy": round(sum(t == p for t, p in zip(true, pred, strict=True)) / n, 3),
                "parse_rate": round(sum(p is not None for p in pred) / n, 3),
                "predicted": dict(Counter(str(p) for p in pred)),
            },
            "majority_baseline": {
                "label": majority,
                **_pct(bootstrap_f1(true, [majority] * n, "weighted", n_boot=args.boot)),
            },
            "published_full_set": PUBLISHED[spec.name],
            "model_seconds_per_post": round(seconds / n, 2) if model else None,
            "tokens_per_post": round(tokens / n, 1) if model else None,
        }
        print(json.dumps({spec.name: per_set[spec.name]}), flush=True)
    wall = time.perf_counter() - started
    summary = {
        "benchmark": "detect (IMHI test sets, weighted F1 in %)",
        "model": model.describe() if model else f"logged run {args.from_log}",
        "limit_per_set": args.limit,
        "seed": args.seed,
        "wall_seconds": round(wall, 1),
        "load_average": os.getloadavg(),
        "sets": per_set,
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
