"""Repeats: a proper noun found once in a note is an identifier wherever else it appears there.

A ward, a surname or a town is often written once with context ("transferred to Hollis 3",
"Dr. Kessling") and again bare ("back on hollis", "kessling aware"). Only words that are no
ordinary word of the language (and no clinical shorthand) are carried over, case-insensitively,
so a detected "Grant" or "Will" never spreads to the ordinary words.
"""

from __future__ import annotations

import re

from mindcommons.deid.context import lexicon
from mindcommons.deid.resources import gazetteer, misspelt, ordinary
from mindcommons.deid.spans import Span

_CARRIED = frozenset({"NAME", "LOCATION", "HOSPITAL", "ORG"})
_WORD = re.compile(r"[^\W\d_]{4,}")


def repeat_spans(text: str, lang: str, found: list[Span]) -> list[Span]:
    """Spans for the other occurrences of the unusual words inside ``found``."""
    lex, gaz = lexicon(lang), gazetteer()
    kinds: dict[str, Span] = {}
    for span in found:
        if span.type not in _CARRIED:
            continue
        for m in _WORD.finditer(text, span.start, span.end):
            low = m.group().lower()
            if low in lex.stop or low in gaz.common or low in kinds:
                continue
            if ordinary(low, lang) or misspelt(low, lang):
                continue
            kinds[low] = span
    if not kinds:
        return []
    rx = re.compile(
        r"(?<![^\W\d_])(" + "|".join(sorted(map(re.escape, kinds), key=len, reverse=True))
        + r")(?![^\W_])",
        re.I,
    )  # fmt: skip
    out = []
    for m in rx.finditer(text):
        src = kinds[m.group(1).lower()]
        if src.start <= m.start() < src.end:
            continue
        out.append(Span(m.start(), m.end(), src.type, "repeat", "same-word-in-note",
                        text[src.start : src.end], 0.6))  # fmt: skip
    return out
