"""Parse a model's item-score JSON and check that its quoted evidence occurs in the text."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

_WS = re.compile(r"\s+")
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.IGNORECASE)


@dataclass(frozen=True)
class ParsedItems:
    """Per-item scores (None = unusable) and evidence ("" = none given)."""

    parsed: bool
    scores: tuple[int | None, ...]
    evidence: tuple[str, ...]


def normalise(text: str) -> str:
    """Collapse whitespace runs to one space, strip, lower-case (casefold)."""
    return _WS.sub(" ", text).strip().casefold()


def is_verbatim(evidence: str, score: int | None, document: str) -> bool:
    """True when the evidence is a whitespace-normalised, case-insensitive substring.

    Empty evidence claims nothing: it is verbatim when the score is 0 (or missing)
    and not verbatim when a positive score rests on it.
    """
    quote = normalise(evidence)
    if not quote:
        return not score
    return quote in normalise(document)


def _as_score(value: object, low: int, high: int) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, int) and low <= value <= high:
        return value
    return None


def _as_index(value: object, n_items: int) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and 1 <= value <= n_items:
        return value - 1
    return None


def _load(text: str) -> object:
    cleaned = _FENCE.sub("", text.strip())
    try:
        return json.loads(cleaned)
    except json.JSONDecodeError:
        start, end = cleaned.find("{"), cleaned.rfind("}")
        if start < 0 or end <= start:
            raise
        return json.loads(cleaned[start : end + 1])


def parse_items(text: str, n_items: int, low: int, high: int) -> ParsedItems:
    """Read ``{"items": [{"item", "score", "evidence"}, ...]}`` leniently.

    Items are placed by their ``item`` number; an entry without a valid number takes
    the first free slot in order. Duplicate numbers keep the first. Scores outside
    ``low..high`` (or not integers) become None. Not JSON, or no ``items`` list:
    ``parsed=False`` and every score None.
    """
    empty = ParsedItems(False, (None,) * n_items, ("",) * n_items)
    try:
        data = _load(text)
    except (json.JSONDecodeError, ValueError):
        return empty
    entries = data.get("items") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        return empty
    scores: list[int | None] = [None] * n_items
    evidence = [""] * n_items
    taken = [False] * n_items
    unplaced: list[dict[str, object]] = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        index = _as_index(entry.get("item"), n_items)
        if index is None:
            unplaced.append(entry)
        elif not taken[index]:
            taken[index] = True
            scores[index] = _as_score(entry.get("score"), low, high)
            quote = entry.get("evidence")
            evidence[index] = quote if isinstance(quote, str) else ""
    for entry in unplaced:
        free = next((i for i, used in enumerate(taken) if not used), None)
        if free is None:
            break
        taken[free] = True
        scores[free] = _as_score(entry.get("score"), low, high)
        quote = entry.get("evidence")
        evidence[free] = quote if isinstance(quote, str) else ""
    return ParsedItems(True, tuple(scores), tuple(evidence))


_LABEL = re.compile(r"^\s*[^\W\d_][^\W\d_ ]*(?: [^\W\d_]+){0,2}:\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


def _clip(sentence: str, max_chars: int) -> str:
    if len(sentence) <= max_chars:
        return sentence
    cut = sentence[:max_chars]
    space = cut.rfind(" ")
    return cut[:space] if space > max_chars // 2 else cut


def evidence_options(text: str, max_options: int = 24, max_chars: int = 120) -> list[str]:
    """The text's sentences a quote may be chosen from, in order, each one verbatim.

    Splits on line breaks and sentence punctuation; strips a leading speaker label or
    section header ("Client:", "Mood:"); drops questions (the interviewer's) and
    fragments under 8 characters; clips long sentences at a word; keeps the first
    ``max_options`` distinct ones. Every option occurs in ``text`` (``is_verbatim``).
    """
    options: list[str] = []
    seen: set[str] = set()
    for line in text.splitlines():
        body = _LABEL.sub("", line, count=1).strip()
        for piece in _SENTENCE_END.split(body):
            sentence = _clip(_WS.sub(" ", piece).strip(), max_chars).strip()
            key = sentence.casefold()
            if len(sentence) < 8 or sentence.endswith("?") or key in seen:
                continue
            if not is_verbatim(sentence, 1, text):
                continue
            seen.add(key)
            options.append(sentence)
            if len(options) >= max_options:
                return options
    return options
