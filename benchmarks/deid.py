"""De-identification benchmark: PHI token recall (overall, by type), precision and notes/s.

Usage: python benchmarks/deid.py --gold ../shared/data/deid [--split dev|test|all] [--limit N]
       [--misses K] [--comparators] [--sensitivity high,balanced]

Reads ``physionet-deid-1.1/notes.json`` and ``synthetic-psych/notes.json`` (both
``[{id, text, spans: [[start, end, type, phrase]]}]``). A token is a run of letters or digits;
a gold token is found when any detected span overlaps it. Timing is single-process:
``notes_per_s`` is wall time, ``notes_per_cpu_s`` this process's CPU time (one core; steadier
on a shared machine). Each sensitivity (``detect(..., sensitivity=...)``) is scored separately.
``--split dev|test`` takes a fixed random half of the PhysioNet notes (seed 2024): rules are
tuned on ``dev`` and reported on ``test`` too, to check that they generalise.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from collections import Counter
from pathlib import Path

from mindcommons.deid import SENSITIVITY_FLOOR, Sensitivity, detect

SPLIT_SEED = 2024
TOKEN = re.compile(r"[A-Za-z0-9]+")
# Not identifiers under HIPAA Safe Harbor, but marked in the gold sets: reported by type,
# left out of the Safe Harbor recall.
NOT_SAFE_HARBOR = {"AGEU90"}
REFERENCE = {
    "physionet-deid-1.1": {
        "philter-lite 0.6.0 (measured, offline fixes)": {
            "recall": 0.943,
            "precision": 0.059,
            "notes_per_s": 9,
        },
        "presidio 2.2 + small spaCy + 3 patterns (measured)": {
            "recall": 0.767,
            "precision": 0.039,
            "notes_per_s": 12,
        },
        "philter-lite | presidio union (measured)": {"recall": 0.962},
        "PhysioNet deid (published)": {"recall": 0.94, "precision": 0.75},
    }
}


def _tokens(text: str, spans: list[tuple[int, int]]) -> set[tuple[int, int]]:
    out = set()
    for m in TOKEN.finditer(text):
        if any(s < m.end() and m.start() < e for s, e in spans):
            out.add(m.span())
    return out


def score(
    notes: list[dict[str, object]], language: str, misses: int, sensitivity: Sensitivity = "high"
) -> dict[str, object]:
    by_type: Counter[str] = Counter()
    hit_type: Counter[str] = Counter()
    tp = pred_n = 0
    missed: list[str] = []
    elapsed = cpu = 0.0
    for note in notes:
        text = str(note["text"])
        gold = [(int(s), int(e), str(t)) for s, e, t, *_ in note["spans"]]  # type: ignore[attr-defined]
        t0, c0 = time.perf_counter(), time.process_time()
        found = detect(text, language, sensitivity=sensitivity)
        elapsed += time.perf_counter() - t0
        cpu += time.process_time() - c0
        pred = _tokens(text, [(s.start, s.end) for s in found])
        all_gold: set[tuple[int, int]] = set()
        for s, e, kind in gold:
            toks = _tokens(text, [(s, e)])
            all_gold |= toks
            by_type[kind] += len(toks)
            hit = toks & pred
            hit_type[kind] += len(hit)
            if len(hit) < len(toks) and len(missed) < misses:
                missed.append(f"{kind}: {text[s:e]!r} in {text[max(0, s - 40) : e + 20]!r}")
        pred_n += len(pred)
        tp += len(pred & all_gold)
    sh_total = sum(n for k, n in by_type.items() if k not in NOT_SAFE_HARBOR)
    sh_hit = sum(n for k, n in hit_type.items() if k not in NOT_SAFE_HARBOR)
    result: dict[str, object] = {
        "notes": len(notes),
        "gold_tokens": sum(by_type.values()),
        "recall": round(sh_hit / max(sh_total, 1), 4),
        "recall_all_marked": round(sum(hit_type.values()) / max(sum(by_type.values()), 1), 4),
        "precision": round(tp / max(pred_n, 1), 4),
        "notes_per_s": round(len(notes) / max(elapsed, 1e-9), 1),
        "notes_per_cpu_s": round(len(notes) / max(cpu, 1e-9), 1),
        "recall_by_type": {
            k: {"tokens": n, "recall": round(hit_type[k] / n, 4)}
            for k, n in sorted(by_type.items())
        },
    }
    if misses:
        result["missed_examples"] = missed
    return result


COMPARATORS = ("presidio", "philter-lite")


def _token_scores(
    notes: list[dict[str, object]], found: list[list[tuple[int, int]]]
) -> dict[str, float]:
    tp = pred_n = gold_n = 0
    for note, spans in zip(notes, found, strict=True):
        text = str(note["text"])
        gold = [(int(s), int(e)) for s, e, t, *_ in note["spans"] if t not in NOT_SAFE_HARBOR]  # type: ignore[attr-defined]
        g, p = _tokens(text, gold), _tokens(text, spans)
        tp, pred_n, gold_n = tp + len(g & p), pred_n + len(p), gold_n + len(g)
    return {"recall": round(tp / max(gold_n, 1), 4), "precision": round(tp / max(pred_n, 1), 4)}


def comparators(notes: list[dict[str, object]], ours: dict[str, object]) -> dict[str, object]:
    """Run philter-lite and Presidio in .venv-bench on the same notes; scores and our ratios."""
    import subprocess
    import tempfile

    py = Path(__file__).resolve().parent.parent / ".venv-bench" / "bin" / "python"
    if not py.is_file():
        return {"error": "run benchmarks/setup-comparators.sh first"}
    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "notes.json"
        path.write_text(json.dumps(notes), encoding="utf-8")
        runner = Path(__file__).with_name("deid_comparators.py")
        for tool in COMPARATORS:
            proc = subprocess.run([str(py), str(runner), tool, str(path)], capture_output=True,
                                  text=True, check=False)  # fmt: skip
            try:
                res = json.loads(proc.stdout.strip().splitlines()[-1])
            except (IndexError, json.JSONDecodeError):
                res = {"error": proc.stderr.strip()[-300:]}
            if "error" in res:
                out[tool] = res
                continue
            found = [[(int(s), int(e)) for s, e in spans] for spans in res["spans"]]
            scores: dict[str, object] = dict(_token_scores(notes, found))
            scores["notes_per_s"] = round(len(notes) / max(float(res["seconds"]), 1e-9), 1)
            cpu = float(res.get("cpu_seconds", res["seconds"]))
            scores["notes_per_cpu_s"] = round(len(notes) / max(cpu, 1e-9), 1)
            if "pos_tagger" in res:
                scores["pos_tagger"] = res["pos_tagger"]
            scores["ours_over_theirs"] = {
                k: round(float(ours[k]) / max(float(scores[k]), 1e-9), 2)  # type: ignore[arg-type]
                for k in ("recall", "precision", "notes_per_s", "notes_per_cpu_s")
            }
            out[tool] = scores
    return out


def split(notes: list[dict[str, object]], which: str) -> list[dict[str, object]]:
    """A fixed random half of ``notes`` (``dev`` or ``test``), or all of them."""
    if which == "all":
        return notes
    order = list(range(len(notes)))
    random.Random(SPLIT_SEED).shuffle(order)
    half = set(order[: len(order) // 2])
    return [n for i, n in enumerate(notes) if (i in half) == (which == "dev")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gold", type=Path, required=True, help="folder with the gold sets")
    parser.add_argument(
        "--split",
        choices=("dev", "test", "all"),
        default="all",
        help="PhysioNet half: dev (tuning), test (held out) or all",
    )
    parser.add_argument(
        "--sets",
        default="physionet-deid-1.1,synthetic-psych",
        help="comma-separated gold sets to score",
    )
    parser.add_argument("--limit", type=int, default=0, help="first N notes of each set")
    parser.add_argument(
        "--comparators",
        action="store_true",
        help="also run philter-lite and Presidio from .venv-bench",
    )
    parser.add_argument("--misses", type=int, default=0, help="print up to K missed spans")
    parser.add_argument(
        "--sensitivity",
        default="high,balanced",
        help="comma-separated detect() sensitivities to score; the first is compared with the "
        "comparators (default high,balanced)",
    )
    args = parser.parse_args()
    report: dict[str, object] = {}
    for name in args.sets.split(","):
        path = args.gold / name / "notes.json"
        if not path.is_file():
            continue
        notes = json.loads(path.read_text(encoding="utf-8"))
        if name.startswith("physionet"):
            notes = split(notes, args.split)
        if args.limit:
            notes = notes[: args.limit]
        detect("warm up the caches", "en")
        levels = [lv for lv in args.sensitivity.split(",") if lv]
        unknown = [lv for lv in levels if lv not in SENSITIVITY_FLOOR]
        if unknown:
            parser.error(f"unknown sensitivity {unknown}; use {','.join(SENSITIVITY_FLOOR)}")
        by_level = {lv: score(notes, "en", args.misses, lv) for lv in levels}
        ours = by_level[levels[0]]
        entry: dict[str, object] = {"mindcommons": ours, "reference": REFERENCE.get(name, {})}
        for lv in levels[1:]:
            entry[f"mindcommons_{lv}"] = by_level[lv]
        if args.comparators:
            entry["comparators"] = comparators(notes, ours)
        report[name] = entry
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
