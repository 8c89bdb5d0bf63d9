"""``xling`` on XLingHealth LiveQA: verifiability macro F1 per language (en/es/zh/hi) with a
95% bootstrap interval, the paired gap of each language to English (the same items,
resampled together), constant-answer baselines scored in the same run, and GPT-3.5's
published macro F1 beside them.

``--limit`` (question, candidate answer) items are drawn with a seed from the 1,220 usable
rows (1 true : 4 negatives, as in the data) and asked in every language. The published
numbers are on the full set: compare with the interval, not the point.

    .venv/bin/python benchmarks/xling.py --data /work/shared/data --limit 10
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

from mindcommons.models import load_model
from mindcommons.suite.tasks._detect_metrics import bootstrap_f1, paired_gap
from mindcommons.suite.tasks.xling import XlingTask

# Jin et al. 2024 (XLingEval), GPT-3.5 verifiability macro F1 on LiveQA.
PUBLISHED_GPT35 = {"en": 0.714, "es": 0.662, "zh": 0.626, "hi": 0.666}


def _rounded(values: tuple[float, float, float]) -> dict[str, float]:
    point, low, high = values
    return {"macro_f1": round(point, 3), "low": round(low, 3), "high": round(high, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder holding xlinghealth/")
    parser.add_argument("--limit", type=int, default=10, help="items (asked in every language)")
    parser.add_argument("--languages", nargs="*", default=["en", "es", "zh", "hi"])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--boot", type=int, default=1000)
    parser.add_argument(
        "--from-log", type=Path, default=None,
        help="no model: score the items a stopped run logged on stderr (complete items only)",
    )  # fmt: skip
    args = parser.parse_args()
    logged: dict[str, str | None] = {}
    if args.from_log is not None:
        for line in args.from_log.read_text(encoding="utf-8").splitlines():
            if line.startswith("{") and '"sample"' in line:
                entry = json.loads(line)
                logged[str(entry["sample"])] = entry["pred"]

    source = args.data / "xlinghealth" if (args.data / "xlinghealth").is_dir() else args.data
    task = XlingTask(languages=tuple(args.languages))
    samples = task.load(source, limit=args.limit * len(task.languages), seed=args.seed)
    model = load_model(args.model) if args.from_log is None else None
    started = time.perf_counter()
    true: dict[str, list[str]] = {lang: [] for lang in task.languages}
    pred: dict[str, list[str | None]] = {lang: [] for lang in task.languages}
    seconds: dict[str, float] = dict.fromkeys(task.languages, 0.0)
    tokens: Counter[str] = Counter()
    for sample in samples:
        if model is None:  # --from-log: the logged samples, in the seeded order
            if sample.id not in logged:
                break
            true[sample.language].append(str(sample.target))
            pred[sample.language].append(logged[sample.id])
            continue
        generation = model.generate(list(sample.messages), task.generate_config(sample))
        score = task.score(sample, generation)
        true[sample.language].append(str(score.label_true))
        pred[sample.language].append(score.label_pred)
        seconds[sample.language] += generation.seconds
        tokens[sample.language] += generation.usage.input_tokens
        progress = {"sample": sample.id, "true": score.label_true, "pred": score.label_pred}
        print(json.dumps(progress), file=sys.stderr, flush=True)  # partial runs stay usable
    wall = time.perf_counter() - started
    complete = min(len(v) for v in true.values())  # items asked in every language
    for lang in task.languages:
        true[lang], pred[lang] = true[lang][:complete], pred[lang][:complete]
    if complete == 0:
        raise SystemExit("no item was asked in every language")

    english = (true["en"], pred["en"])
    gaps = paired_gap(
        [(true[lang], pred[lang]) for lang in task.languages],
        english,
        "macro",
        n_boot=args.boot,
        seed=args.seed,
    )
    per_language: dict[str, Any] = {}
    for lang, gap in zip(task.languages, gaps, strict=True):
        n = len(true[lang])
        per_language[lang] = {
            "n": n,
            "positives": true[lang].count("yes"),
            "embedded": {
                **_rounded(bootstrap_f1(true[lang], pred[lang], "macro", n_boot=args.boot)),
                "gap_to_en": {
                    "point": round(gap[0], 3),
                    "low": round(gap[1], 3),
                    "high": round(gap[2], 3),
                },
                "parse_rate": round(sum(p is not None for p in pred[lang]) / n, 3),
                "predicted": dict(Counter(str(p) for p in pred[lang])),
            },
            "always_no_baseline": round(
                bootstrap_f1(true[lang], ["no"] * n, "macro", n_boot=1)[0], 3
            ),
            "always_yes_baseline": round(
                bootstrap_f1(true[lang], ["yes"] * n, "macro", n_boot=1)[0], 3
            ),
            "gpt35_published_full_set": {
                "macro_f1": PUBLISHED_GPT35[lang],
                "gap_to_en": round(PUBLISHED_GPT35[lang] - PUBLISHED_GPT35["en"], 3),
            },
            "model_seconds_per_item": round(seconds[lang] / n, 2) if model else None,
            "prompt_tokens_per_item": round(tokens[lang] / n, 1) if model else None,
        }
    print(
        json.dumps(
            {
                "benchmark": "xling (XLingHealth LiveQA verifiability)",
                "model": model.describe() if model else f"logged run {args.from_log}",
                "items": args.limit,
                "seed": args.seed,
                "wall_seconds": round(wall, 1),
                "load_average": os.getloadavg(),
                "languages": per_language,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
