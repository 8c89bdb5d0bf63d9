"""Context around a matched phrase: negation scope (NegEx-style), grammatical subject, language."""

from __future__ import annotations

import re

from mindcommons.safety.rules import LANGUAGES, RuleSet, rule_set

_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})
_SENTENCE_END = re.compile(r"[.!?\n]+")
_CLAUSE_END = re.compile(r"[.!?;,:\n()\u2014]+|\s-\s")
_WORD = re.compile(r"[\w']+", re.UNICODE)
_LANG_CHARS = {"es": "ñ¿¡", "pt": "ãõç"}


def normalise(text: str) -> str:
    """Same-length copy with typographic apostrophes made plain (offsets stay valid)."""
    return text.translate(_QUOTES)


def _last_boundary(pattern: re.Pattern[str], text: str, end: int) -> int:
    start = 0
    for m in pattern.finditer(text, 0, end):
        start = m.end()
    return start


def sentence_before(text: str, start: int) -> tuple[int, str]:
    """Offset and text of the sentence up to ``start``."""
    begin = _last_boundary(_SENTENCE_END, text, start)
    return begin, text[begin:start]


def negation_before(text: str, start: int, rs: RuleSet) -> str | None:
    """The negation cue that scopes over a phrase starting at ``start``, if any.

    The scope is the clause before the phrase, cut at scope terminators ("but",
    "porque"), limited to the language's window of words; pseudo-negations ("can't
    stop", "no sé por qué") are blanked out first so they do not count.
    """
    begin = _last_boundary(_CLAUSE_END, text, start)
    for term in rs.scope_terminators:
        for m in term.finditer(text, begin, start):
            begin = max(begin, m.end())
    window = text[begin:start]
    for pseudo in rs.pseudo_negations:
        window = pseudo.sub(lambda m: " " * len(m.group(0)), window)
    words = list(_WORD.finditer(window))
    if not words:
        return None
    cut = words[-rs.negation_window].start() if len(words) >= rs.negation_window else 0
    window = window[cut:]
    found: tuple[int, str] | None = None
    for cue in rs.negation_cues:
        for m in cue.finditer(window):
            if found is None or m.start() > found[0]:
                found = (m.start(), m.group(0))
    return found[1] if found else None


def subject_is_other(text: str, start: int, rs: RuleSet) -> tuple[bool, str | None]:
    """Whether the nearest subject before the phrase in its sentence is someone else.

    Returns (about_other, the cue that decided it). With no cue the speaker is assumed.
    """
    _, sentence = sentence_before(text, start)
    best: tuple[int, bool, str] | None = None
    for other, cues in ((True, rs.other_subject), (False, rs.self_subject)):
        for cue in cues:
            for m in cue.finditer(sentence):
                if best is None or m.end() > best[0]:
                    best = (m.end(), other, m.group(0))
    if best is None:
        return False, None
    return best[1], best[2]


def detect_language(text: str, default: str = "en") -> str:
    """Best guess among the supported languages from function words and letters."""
    words = [w.lower() for w in _WORD.findall(text)]
    scores: dict[str, float] = {}
    for lang in LANGUAGES:
        cues = rule_set(lang).language_cues
        score = float(sum(1 for w in words if w in cues))
        score += 2.0 * sum(text.lower().count(c) for c in _LANG_CHARS.get(lang, ""))
        scores[lang] = score
    best = max(scores.values())
    if best == 0:
        return default
    winners = [lang for lang in LANGUAGES if scores[lang] == best]
    return default if default in winners else winners[0]
