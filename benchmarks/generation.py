"""Tokens/s of load_model("embedded").generate vs raw llama_cpp create_chat_completion.

Usage: python benchmarks/generation.py [--prompts N] [--max-tokens M] [--threads T]

Both paths use the same GGUF, n_ctx, threads, seed and sampling (temperature 0), each in
its own llama.cpp instance. After one warm-up call each, every prompt runs through both
paths, alternating which goes first. Rate = completion tokens / wall seconds per path,
summed over prompts. Prints one JSON object; the goal is ratio (wrapper/raw) >= 0.95.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time
from typing import Any

from mindcommons.models import GenerateConfig, Message, embedded_model_path, load_model

TOPICS = [
    "how to keep a regular sleep schedule",
    "what a balanced breakfast looks like",
    "why short walks help concentration",
    "how to prepare for a job interview",
    "ways to make a small garden on a balcony",
    "how to learn a new language as an adult",
    "what makes a good team meeting",
    "how to budget for a month",
    "the water cycle",
    "how bicycles stay upright",
    "why people keep journals",
    "how to cook rice well",
]


def prompts(n: int) -> list[str]:
    return [f"Write a short paragraph about {TOPICS[i % len(TOPICS)]}." for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--n-ctx", type=int, default=4096)
    args = parser.parse_args()

    import llama_cpp

    path = embedded_model_path()
    backend = load_model("embedded", n_ctx=args.n_ctx, n_threads=args.threads, seed=0)
    raw = llama_cpp.Llama(
        model_path=str(path), n_ctx=args.n_ctx, n_threads=args.threads, seed=0, verbose=False
    )
    config = GenerateConfig(max_tokens=args.max_tokens, temperature=0.0, seed=0)

    def run_wrapper(text: str) -> tuple[int, float, str]:
        start = time.perf_counter()
        gen = backend.generate([Message("user", text)], config)
        return gen.usage.output_tokens, time.perf_counter() - start, gen.text

    def run_raw(text: str) -> tuple[int, float, str]:
        start = time.perf_counter()
        out: Any = raw.create_chat_completion(
            messages=[{"role": "user", "content": text}],
            temperature=0.0,
            seed=0,
            max_tokens=args.max_tokens,
            stop=[],
        )
        seconds = time.perf_counter() - start
        return out["usage"]["completion_tokens"], seconds, out["choices"][0]["message"]["content"]

    run_wrapper("Say hello.")  # warm-up
    run_raw("Say hello.")
    totals = {"wrapper": [0, 0.0], "raw": [0, 0.0]}
    same_text = 0
    items = prompts(args.prompts)
    for i, text in enumerate(items):
        order = [("wrapper", run_wrapper), ("raw", run_raw)]
        if i % 2:
            order.reverse()
        texts = {}
        for name, fn in order:
            tokens, seconds, out = fn(text)
            totals[name][0] += tokens
            totals[name][1] += seconds
            texts[name] = out
        same_text += texts["wrapper"] == texts["raw"]

    wrapper_rate = totals["wrapper"][0] / totals["wrapper"][1]
    raw_rate = totals["raw"][0] / totals["raw"][1]
    result = {
        "benchmark": "generation",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "model": path.name,
        "llama_cpp": llama_cpp.__version__,
        "prompts": args.prompts,
        "max_tokens": args.max_tokens,
        "threads": args.threads,
        "wrapper_tokens": totals["wrapper"][0],
        "raw_tokens": totals["raw"][0],
        "wrapper_tokens_per_s": round(wrapper_rate, 2),
        "raw_tokens_per_s": round(raw_rate, 2),
        "ratio": round(wrapper_rate / raw_rate, 4),
        "goal_ratio": 0.95,
        "same_text": f"{same_text}/{args.prompts}",
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
