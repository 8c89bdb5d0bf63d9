"""Per-language detector data (patterns, context words, gazetteers) loaded from data files."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any

from mindcommons.errors import ConfigError

LANGUAGES = ("en", "es", "pt")
_DATA = resources.files("mindcommons.deid") / "data"


def _read_list(lang: str, name: str) -> list[str]:
    path = _DATA / lang / name
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def _read_json(lang: str, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((_DATA / lang / name).read_text(encoding="utf-8"))
    return data


@dataclass(frozen=True)
class NameLists:
    """Given names (by gender) and surnames of one language, for detection and surrogates."""

    female: tuple[str, ...]
    male: tuple[str, ...]
    unisex: tuple[str, ...]
    surnames: tuple[str, ...]


@cache
def name_lists(lang: str) -> NameLists:
    return NameLists(
        tuple(_read_list(lang, "first_names_female.txt")),
        tuple(_read_list(lang, "first_names_male.txt")),
        tuple(_read_list(lang, "first_names_unisex.txt")),
        tuple(_read_list(lang, "surnames.txt")),
    )


@dataclass(frozen=True)
class Gazetteer:
    """Lower-cased lookup sets shared by all languages (a Spanish name in an English note)."""

    first: frozenset[str]
    female: frozenset[str]
    male: frozenset[str]
    surnames: frozenset[str]
    ambiguous: frozenset[str]
    common: frozenset[str]


@lru_cache(maxsize=1)
def gazetteer() -> Gazetteer:
    first: set[str] = set()
    female: set[str] = set()
    male: set[str] = set()
    sur: set[str] = set()
    common: set[str] = set()
    for lang in LANGUAGES:
        lists = name_lists(lang)
        female.update(n.lower() for n in lists.female)
        male.update(n.lower() for n in lists.male)
        first.update(n.lower() for n in lists.female + lists.male + lists.unisex)
        sur.update(n.lower() for n in lists.surnames)
        common.update(w.lower() for w in _read_list(lang, "common_words_lorem.txt"))
        common.update(w.lower() for w in _read_list(lang, "common_words.txt"))
    # US Census 1990 names (benchmarks/deid_gazetteers.py): detection only, not surrogates
    first.update(n.lower() for n in _read_list("en", "first_names_census.txt"))
    sur.update(n.lower() for n in _read_list("en", "surnames_census.txt"))
    ambiguous = {w.lower() for w in _read_list("en", "names_that_are_words.txt")} | common
    return Gazetteer(
        frozenset(first), frozenset(female - male), frozenset(male - female),
        frozenset(sur), frozenset(ambiguous), frozenset(common),
    )  # fmt: skip


@cache
def dictionary(lang: str) -> frozenset[str]:
    """Ordinary lower-case words of ``lang`` (empty when the language ships no word list)."""
    return frozenset(_read_list(lang, "dictionary.txt"))


_MED_SUFFIX = re.compile(
    r"(?:itis|a?emia|osis|ectomy|otomy|ostomy|plasty|scopy|graphy|pathy|algia|olol|pril|sartan"
    r"|statin|azole|mycin|cillin|cycline|floxacin|azepam|zolam|uria|penia|megaly|plegia|paresis"
    r"|ation|ations|tion|tions|ive|ize|ise|ate|ated|ating|ized|ous|ally|ness|ment)$"
)
_PREFIX = re.compile(
    r"^(?:hypo|hyper|extu|intu|re|de|un|non|anti|peri|post|pre|trans|sub|intra|over)"
)


_INFLECTIONS = (
    ("s", ("",)), ("es", ("", "e")), ("ed", ("", "e")), ("ing", ("", "e")),
    ("ly", ("",)), ("'s", ("",)), ("\u2019s", ("",)), ("ies", ("y",)),
)  # fmt: skip


def ordinary(word: str, lang: str) -> bool:
    """True when ``word`` is an ordinary word of the language (or an inflection of one)."""
    words = dictionary(lang)
    low = word.lower().strip(".'\u2019-")
    if not words:
        return False
    parts = [p for p in re.split(r"[-/]", low) if p]
    if len(parts) > 1:
        return any(len(p) >= 3 and ordinary(p, lang) for p in parts)
    stems = {low}
    for end, subs in _INFLECTIONS:
        if low.endswith(end):
            stems.update(low[: -len(end)] + sub for sub in subs)
    if any(s in words for s in stems if len(s) >= 3):
        return True
    if _MED_SUFFIX.search(low) and len(low) > 6:
        return True
    m = _PREFIX.match(low)
    return m is not None and low[m.end() :] in words and len(low) - m.end() >= 4


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


@cache
def _delete_index(lang: str) -> frozenset[str]:
    """Every dictionary word of 6+ letters with one letter deleted (symmetric-delete lookup)."""
    out: set[str] = set()
    for w in dictionary(lang):
        if len(w) >= 6:
            out.update(_deletes(w))
    return frozenset(out)


def misspelt(word: str, lang: str) -> bool:
    """True when ``word`` (7+ letters) is one edit (or a swap) away from a long ordinary word."""
    low = word.lower().strip(".'\u2019-")
    if len(low) < 7 or not low.isalpha():
        return False
    words, index = dictionary(lang), _delete_index(lang)
    dels = _deletes(low)
    return low in index or any(d in words or d in index for d in dels)


def alternation(words: list[str]) -> str:
    """A regex alternation of literal words, longest first; spaces match any whitespace."""
    parts = sorted({re.escape(w).replace(r"\ ", r"\s+") for w in words}, key=len, reverse=True)
    return "(?:" + "|".join(parts) + ")"


@cache
def rules(lang: str) -> dict[str, Any]:
    if lang not in LANGUAGES:
        raise ConfigError(f"unknown de-identification language '{lang}'; known: en, es, pt")
    return _read_json(lang, "rules.json")


@lru_cache(maxsize=1)
def common_patterns() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = _read_json("common", "patterns.json")["patterns"]
    return items


@functools.cache
def data_version() -> str:
    """A short content hash of every data file: detections are reproducible per version."""
    import hashlib

    digest = hashlib.sha256()
    for lang in (*LANGUAGES, "common"):
        for entry in sorted((_DATA / lang).iterdir(), key=lambda p: p.name):
            digest.update(entry.name.encode())
            digest.update(entry.read_bytes())
    return digest.hexdigest()[:12]
