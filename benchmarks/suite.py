"""Audit-suite throughput, overhead and energy with the embedded model.

On the same samples of every chosen task (default: the ``standard`` suite, i.e. every
registered task; each on its own source or its synthetic samples):

1. a plain ``run_suite`` end to end (load samples, generate, score, journal with fsync,
   CodeCarbon energy tracking), then the report card (bootstrap, Fairlearn, HTML) timed
   apart: samples/s and energy per 1,000 inferences per task (CodeCarbon offline; method
   and "estimated" flag printed), beside Luccioni, Jernite & Strubell 2023 ("Power Hungry
   Processing"), whose mean figures are roughly 0.002 kWh/1k for text classification and
   0.047 kWh/1k for text generation (approximate; different models and hardware);
2. the overhead versus raw generation of the same tokens, robust to a shared machine's
   changing load: ``--repeats`` more ``run_suite`` runs in which every sample's raw
   generation (the same messages and GenerateConfig, hence the same prompt, grammar and
   output tokens, straight through the backend: no scoring, journal or energy) runs
   right next to the suite's own generation of it: after it in even repeats, before it in
   odd ones (ABAB / BABA), so both sides see the same load. The raw side uses a second
   llama.cpp instance of the same model file, so each side keeps its own KV cache exactly
   as in a run of its own (prefix reuse between consecutive samples included). The time
   spent on the raw side is taken out of the suite's wall and CPU time. Reported per
   repeat and as the median: wall-clock and process CPU-time overhead, and the median of
   the per-sample ratios of generation time inside the suite to raw generation time.
   Goal: <= 5%.

Usage::

    python benchmarks/suite.py [--tasks standard|t1,t2] [--limit 1] [--repeats 4]
                               [--source TASK=PATH] [--country USA] [--out DIR]

Prints one JSON object. Sources are read where they are; nothing is copied.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

LUCCIONI = {"text classification": 0.002, "text generation": 0.047}


def _category(task: Any) -> str:
    kinds = {a.kind for a in task.aggregates}
    return (
        "text classification"
        if kinds & {"accuracy", "weighted_f1", "macro_f1"}
        else ("text generation")
    )


@dataclass
class _Raw:
    """Raw generations made beside the suite in one interleaved repeat."""

    seconds: dict[tuple[str, str], float] = field(default_factory=dict)
    tokens: dict[tuple[str, str], int] = field(default_factory=dict)
    cpu: float = 0.0  # process CPU time of the raw generations


class _Beside:
    """The suite's backend, with each sample's raw generation right before or after its own.

    The suite calls ``generate`` as usual; the raw generation of the same messages and
    config runs on ``raw_model`` next to it (so any after-effect of scoring or of the
    journal's fsync falls on the suite in one order and on the raw side in the other).
    """

    def __init__(self, model: Any, raw_model: Any, *, before: bool) -> None:
        self.model, self.raw_model, self.before = model, raw_model, before
        self.raw = _Raw()

    @property
    def name(self) -> str:
        return str(self.model.name)

    def describe(self) -> dict[str, str]:
        return dict(self.model.describe())

    def close(self) -> None:
        pass

    def _generate_raw(self, messages: list[Any], config: Any) -> None:
        from mindcommons.models.replay import _CURRENT

        c0, t0 = time.process_time(), time.perf_counter()
        gen = self.raw_model.generate(list(messages), config)
        key = _CURRENT.get()
        assert key is not None, "the runner names each sample it generates"
        self.raw.seconds[key] = time.perf_counter() - t0
        self.raw.cpu += time.process_time() - c0
        self.raw.tokens[key] = gen.usage.output_tokens

    def generate(self, messages: list[Any], config: Any) -> Any:
        if self.before:
            self._generate_raw(messages, config)
        generation = self.model.generate(messages, config)
        if not self.before:
            self._generate_raw(messages, config)
        return generation


def _interleaved(
    names: list[str], model: Any, raw_model: Any, out: Path, *,
    sources: Mapping[str, Path | None], limit: int, seed: int, country: str | None, before: bool,
) -> dict[str, Any]:  # fmt: skip
    """One ``run_suite`` with each sample's raw generation next to the suite's own."""
    from mindcommons.suite.journal import Journal
    from mindcommons.suite.runner import run_suite

    beside = _Beside(model, raw_model, before=before)
    raw = beside.raw
    c0, t0 = time.process_time(), time.perf_counter()
    run_suite(
        names, beside, out, sources=sources, limit=limit, seed=seed, country=country,
        write_card=False,
    )  # fmt: skip
    raw_wall = sum(raw.seconds.values())
    wall = time.perf_counter() - t0 - raw_wall
    cpu = time.process_time() - c0 - raw.cpu
    state = Journal(out).read()
    suite_seconds = {key: rec.seconds for key, rec in state.samples.items()}
    if set(suite_seconds) != set(raw.seconds):
        raise RuntimeError("the raw side did not generate the suite's samples")
    return {
        "order": "raw before suite" if before else "raw after suite",
        "suite_wall_seconds": round(wall, 3),
        "raw_wall_seconds": round(raw_wall, 3),
        "overhead_wall": round(wall / raw_wall - 1, 4),
        "suite_cpu_seconds": round(cpu, 3),
        "raw_cpu_seconds": round(raw.cpu, 3),
        "overhead_cpu": round(cpu / raw.cpu - 1, 4),
        "suite_generation_seconds": round(sum(suite_seconds.values()), 3),
        "per_sample_ratios": [suite_seconds[k] / raw.seconds[k] for k in sorted(raw.seconds)],
        "same_output_tokens": all(
            state.samples[k].output_tokens == raw.tokens[k] for k in raw.tokens
        ),
        "output_tokens": sum(raw.tokens.values()),
        "samples": len(raw.seconds),
    }


def main(argv: list[str] | None = None) -> int:
    from mindcommons.audit import parse_sources
    from mindcommons.models import load_model
    from mindcommons.suite.card import local_card, write_card
    from mindcommons.suite.energy import check_country, default_country, shared_tracker
    from mindcommons.suite.journal import Journal
    from mindcommons.suite.runner import get_tasks, load_samples, run_suite
    from mindcommons.suite.suites import resolve_suite

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default="standard")
    parser.add_argument("--limit", type=int, default=1, help="samples per task")
    parser.add_argument("--repeats", type=int, default=4, help="interleaved overhead runs")
    parser.add_argument("--source", action="append", default=[], help="TASK=PATH")
    parser.add_argument("--country", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="keep the run folders here")
    args = parser.parse_args(argv)

    names = resolve_suite(args.tasks)
    tasks = get_tasks(names)
    sources = parse_sources(args.source)
    model = load_model("embedded")
    # the raw side: the same model file in a second llama.cpp instance (its own KV cache);
    # the instance seed is unused at temperature 0 (each call passes the task's seed)
    raw_model = load_model("embedded", seed=1)
    out = args.out or Path(tempfile.mkdtemp(prefix="suite-bench-"))
    if out.exists() and any(out.iterdir()):
        print(f"{out} is not empty; give a new --out", file=sys.stderr)
        return 2
    load_start = os.getloadavg()

    # warm both instances (file mapping, first-call set-up) so no measured path pays for it
    first = load_samples(tasks[0], sources.get(tasks[0].name), limit=1, seed=args.seed)[0]
    for backend in (model, raw_model):
        backend.generate(list(first.messages), tasks[0].generate_config(first, args.seed))

    # start CodeCarbon's tracker once (a one-off hardware probe of seconds), reported apart
    te = time.perf_counter()
    shared_tracker(check_country(args.country or default_country()))
    tracker_start_seconds = time.perf_counter() - te

    # 1. a plain run: samples/s, energy per task, the report card
    plain = out / "plain"
    t0 = time.perf_counter()
    run = run_suite(
        names, model, plain, sources=sources, limit=args.limit, seed=args.seed,
        country=args.country, write_card=False,
    )  # fmt: skip
    plain_seconds = time.perf_counter() - t0
    print(f"plain run: {sum(run.computed.values())} samples in {plain_seconds:.0f} s",
          file=sys.stderr, flush=True)  # fmt: skip
    state = Journal(plain).read()
    t1 = time.perf_counter()
    card = local_card(
        tasks, state, model={"spec": "embedded", **model.describe()}, run_id=plain.name,
        n_boot=1000, seed=args.seed, limit=args.limit, wall_seconds=plain_seconds,
        started="", min_group_n=None, skipped=run.skipped,
    )  # fmt: skip
    write_card(card, plain)
    card_seconds = time.perf_counter() - t1

    # 2. interleaved repeats on the tasks that ran (skipped: a prerequisite is missing)
    ran = [t for t in tasks if t.name not in run.skipped]
    order = [
        (task, sample)
        for task in ran
        for sample in load_samples(task, sources.get(task.name), limit=args.limit, seed=args.seed)
    ]
    # both instances start every repeat with the last sample in their KV cache, as the
    # suite's instance has after the plain run (else one side gets a free prefix match)
    last_task, last_sample = order[-1]
    raw_model.generate(
        list(last_sample.messages), last_task.generate_config(last_sample, args.seed)
    )
    ran_sources = {k: v for k, v in sources.items() if k in {t.name for t in ran}}
    repeats = []
    for r in range(args.repeats):
        folder = out / f"repeat-{r}"
        one = _interleaved(
            [t.name for t in ran], model, raw_model, folder, sources=ran_sources,
            limit=args.limit, seed=args.seed, country=args.country, before=r % 2 == 1,
        )  # fmt: skip
        repeats.append(one)
        print(  # a long benchmark says where it is
            f"repeat {r + 1}/{args.repeats}: overhead wall {one['overhead_wall']:+.2%}, "
            f"cpu {one['overhead_cpu']:+.2%}",
            file=sys.stderr,
            flush=True,
        )
    ratios = [x for rep in repeats for x in rep.pop("per_sample_ratios")]

    n = sum(v for k, v in run.computed.items() if k not in run.skipped)
    per_task: dict[str, Any] = {}
    for task in ran:
        entry = card["tasks"][task.name]
        energy = entry["energy"] or {}
        category = _category(task)
        per_task[task.name] = {
            "samples": entry["n"],
            "primary": {task.primary: entry["metrics"].get(task.primary, {}).get("value")},
            "output_tokens": entry["tokens"]["output"],
            "model_seconds": entry["model_seconds"],
            "kwh_per_1k": energy.get("kwh_per_1k"),
            "co2e_kg_per_1k": energy.get("co2e_kg_per_1k"),
            "energy_estimated": energy.get("estimated"),
            "luccioni_2023_category": category,
            "luccioni_2023_kwh_per_1k": LUCCIONI[category],
        }
    gen = sum(r.seconds for r in state.samples.values() if r.task not in run.skipped)
    median = statistics.median
    suite_wall = median(r["suite_wall_seconds"] for r in repeats) if repeats else None
    raw_wall = median(r["raw_wall_seconds"] for r in repeats) if repeats else None
    print(
        json.dumps(
            {
                "benchmark": "suite",
                "tasks": [t.name for t in ran],
                "skipped": run.skipped,
                "limit_per_task": args.limit,
                "samples": n,
                "threads": model.n_threads if hasattr(model, "n_threads") else None,
                "plain_run": {
                    "seconds": round(plain_seconds, 3),
                    "samples_per_second": round(n / plain_seconds, 4),
                    "generation_seconds": round(gen, 3),
                    "in_run_overhead_vs_generation": round(plain_seconds / gen - 1, 4),
                    "scoring_seconds": round(
                        sum(r.score_seconds for r in state.samples.values()), 3
                    ),
                },
                "overhead_vs_raw": {
                    "repeats": repeats,
                    "median_overhead_wall": (
                        round(median(r["overhead_wall"] for r in repeats), 4) if repeats else None
                    ),
                    "median_overhead_cpu": (
                        round(median(r["overhead_cpu"] for r in repeats), 4) if repeats else None
                    ),
                    "median_per_sample_generation_ratio": (
                        round(median(ratios), 4) if ratios else None
                    ),
                    "suite_samples_per_second": (
                        round(len(order) / suite_wall, 4) if suite_wall else None
                    ),
                    "raw_samples_per_second": round(len(order) / raw_wall, 4) if raw_wall else None,
                    "same_output_tokens": all(r["same_output_tokens"] for r in repeats),
                    "goal": 0.05,
                },
                "card_seconds": round(card_seconds, 3),
                "energy_tracker_start_seconds": round(tracker_start_seconds, 3),
                "energy_method": sorted({e.method for e in state.energy}),
                "per_task": per_task,
                "reference": "Luccioni, Jernite & Strubell 2023, Power Hungry Processing "
                "(approximate means per 1,000 inferences)",
                "load_average_start": load_start,
                "load_average_end": os.getloadavg(),
                "run_folder": str(out),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
