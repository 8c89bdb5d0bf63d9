"""Clinical facts a patient-facing rewrite must keep, found by rules (no model).

A *fact* is a medication, a dose (number + unit), a date, a number, or a concept (a
diagnosis or finding: depression, suicidal ideation, ...) with its polarity (negated or
not). The rules are data (``_facts_lexicon.json``: drug names with es/pt spellings and
brands, units, months, number words 2-12, negation cues per language) so a reviewer can
read and extend them.

``check_facts(source, output, language)`` says which source facts the output kept, which
it dropped, which it *invented* (a medication, dose, date or number absent from the
source), and which negated findings it turned into affirmed ones (``flipped``: "denies
suicidal ideation" -> "you have suicidal thoughts", the most dangerous error).

Matching is deliberately literal: a date may change format ("14/03/2025" = "14 March")
and a small number may be spelt out ("4 weeks" = "four weeks"), but a paraphrased
diagnosis outside the lexicon counts as dropped. Known gaps: "one" is not a number (it is
also a pronoun and an article in every supported language); negation is found NegEx-style
within the clause (a cue up to six words before the concept, or "denied"/"absent" just
after), so double negations are not resolved.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

FactKind = Literal["medication", "dose", "date", "number", "concept"]
INVENTION_KINDS: tuple[FactKind, ...] = ("medication", "dose", "date", "number")
PRE_NEGATION_WINDOW = 6  # words between a negation cue and the concept it negates
POST_NEGATION_WINDOW = 2
_NUMBER = r"\d+(?:[.,]\d+)?"
_EDGE_L = r"(?<![\w./-])"
_EDGE_R = r"(?![\w/-]|[.,]\d)"
_CLAUSE_END = re.compile(r"[.;:!?\n()]")
_CLAUSE_END_AFTER = re.compile(r"[.;!?\n()]")  # "ideation: denied" negates across the colon


@dataclass(frozen=True)
class Fact:
    """One fact: its kind, the normalised keys it matches on, and where it was seen."""

    kind: FactKind
    keys: frozenset[str]
    text: str  # surface form, for explanations
    negated: bool = False

    def matches(self, other: Fact) -> bool:
        return (
            self.kind == other.kind
            and self.negated == other.negated
            and bool(self.keys & other.keys)
        )

    @property
    def label(self) -> str:
        key = min(self.keys)
        return f"{self.kind}:{'not ' if self.negated else ''}{key}"


@dataclass(frozen=True)
class FactCheck:
    """Source facts against an output's facts."""

    source: tuple[Fact, ...]
    kept: tuple[Fact, ...]
    missing: tuple[Fact, ...]
    invented: tuple[Fact, ...]  # output medications/doses/dates/numbers not in the source
    invented_concepts: tuple[Fact, ...]  # diagnoses/findings the source never mentions
    flipped: tuple[Fact, ...]  # source negated findings stated as present in the output

    @property
    def kept_fraction(self) -> float | None:
        return len(self.kept) / len(self.source) if self.source else None

    def kept_fraction_of(self, kind: FactKind, *, negated: bool | None = None) -> float | None:
        """Kept fraction among source facts of one kind (and polarity); None if none."""

        def wanted(fact: Fact) -> bool:
            return fact.kind == kind and (negated is None or fact.negated == negated)

        total = [f for f in self.source if wanted(f)]
        if not total:
            return None
        return sum(1 for f in self.kept if wanted(f)) / len(total)


@functools.cache
def lexicon() -> Mapping[str, Any]:
    """The fact rules shipped with mindcommons."""
    text = resources.files(__package__).joinpath("_facts_lexicon.json").read_text("utf-8")
    data: Mapping[str, Any] = json.loads(text)
    return data


def _lang(language: str) -> str:
    root = language.strip().lower().replace("_", "-").split("-")[0]
    return root if root in lexicon()["months"] else "en"


def _alternation(forms: Iterable[str]) -> str:
    ordered = sorted({f.lower() for f in forms}, key=len, reverse=True)
    return "|".join(re.escape(f) for f in ordered)


def _number_value(raw: str, number_words: Mapping[str, int]) -> str:
    """'0,5' -> '0.5'; '50.0' -> '50'; 'four' -> '4'."""
    low = raw.lower()
    if low in number_words:
        return str(number_words[low])
    value = float(low.replace(",", "."))
    return str(int(value)) if value.is_integer() else f"{value:g}"


@dataclass(frozen=True)
class _Rules:
    months: Mapping[str, int]
    number_words: Mapping[str, int]
    date_patterns: tuple[re.Pattern[str], ...]
    dose: re.Pattern[str]
    number: re.Pattern[str]
    medication: re.Pattern[str]
    med_canonical: Mapping[str, str]
    unit_canonical: Mapping[str, str]
    concept: re.Pattern[str]
    concept_canonical: Mapping[str, str]
    negation: re.Pattern[str]
    post_negation: re.Pattern[str]
    scope_break: re.Pattern[str]


@functools.cache
def _rules(language: str) -> _Rules:
    lex = lexicon()
    months = {name: i + 1 for i, name in enumerate(lex["months"][language])}
    words = dict(lex["number_words"][language])
    month = _alternation(months)
    ordinal = r"(?:st|nd|rd|th|º|ª)?"
    date_patterns = (
        re.compile(rf"{_EDGE_L}(?P<y>\d{{4}})-(?P<m>\d{{1,2}})-(?P<d>\d{{1,2}}){_EDGE_R}"),
        re.compile(rf"{_EDGE_L}(?P<a>\d{{1,2}})[/.](?P<b>\d{{1,2}})[/.](?P<y>\d{{4}}|\d{{2}})\b"),
        re.compile(
            rf"{_EDGE_L}(?P<d>\d{{1,2}}){ordinal}\s+(?:de\s+|of\s+)?(?P<mon>{month})\b"
            rf"(?:,?\s+(?:de\s+)?(?P<y>\d{{4}})\b)?",
            re.IGNORECASE,
        ),
        re.compile(
            rf"\b(?P<mon>{month})\s+(?P<d>\d{{1,2}}){ordinal}\b(?:,?\s+(?P<y>\d{{4}})\b)?",
            re.IGNORECASE,
        ),
        re.compile(rf"\b(?P<mon>{month})\s+(?:de\s+)?(?P<y>\d{{4}})\b", re.IGNORECASE),
    )
    unit_canonical = {form.lower(): unit for unit, forms in lex["units"].items() for form in forms}
    number_alt = rf"{_NUMBER}|{_alternation(words)}" if words else _NUMBER
    dose = re.compile(
        rf"{_EDGE_L}(?P<n>{number_alt})\s*(?P<u>{_alternation(unit_canonical)})(?!\w)",
        re.IGNORECASE,
    )
    number = re.compile(
        rf"{_EDGE_L}(?P<n>\d{{1,2}}:\d{{2}}|{_NUMBER}){_EDGE_R}"
        + (rf"|\b(?P<w>{_alternation(words)})\b" if words else ""),
        re.IGNORECASE,
    )
    med_canonical = {
        form.lower(): name for name, forms in lex["medications"].items() for form in forms
    }
    concept_canonical = {
        form.lower(): name for name, forms in lex["concepts"].items() for form in forms
    }
    return _Rules(
        months=months,
        number_words=words,
        date_patterns=date_patterns,
        dose=dose,
        number=number,
        medication=re.compile(rf"(?<!\w)({_alternation(med_canonical)})(?!\w)", re.IGNORECASE),
        med_canonical=med_canonical,
        unit_canonical=unit_canonical,
        concept=re.compile(rf"(?<!\w)({_alternation(concept_canonical)})(?!\w)", re.IGNORECASE),
        concept_canonical=concept_canonical,
        negation=re.compile(
            rf"(?<!\w)(?:{_alternation(lex['negation'][language])})(?!\w)", re.IGNORECASE
        ),
        post_negation=re.compile(
            rf"^\W*(?:\w+\W+){{0,{POST_NEGATION_WINDOW - 1}}}?"
            rf"(?:{_alternation(lex['post_negation'][language])})(?!\w)",
            re.IGNORECASE,
        ),
        scope_break=re.compile(
            rf"(?<!\w)(?:{_alternation(lex['scope_breaks'][language])})(?!\w)", re.IGNORECASE
        ),
    )


def _date_keys(match: re.Match[str], rules: _Rules) -> frozenset[str]:
    parts = match.groupdict()
    year = parts.get("y")
    if year is not None and len(year) == 2:
        year = f"20{year}"
    if parts.get("a") is not None:  # d/m/y or m/d/y: both readings when both are valid
        a, b = int(parts["a"]), int(parts["b"])
        readings = {(m, d) for m, d in ((b, a), (a, b)) if 1 <= m <= 12 and 1 <= d <= 31}
    else:
        month = parts.get("mon")
        m = rules.months[month.lower()] if month else int(parts["m"])
        if parts.get("d") is None:
            return frozenset({f"{year}-{m:02d}"})
        readings = {(m, int(parts["d"]))}
    keys = set()
    for m, d in readings:
        keys.add(f"{m:02d}-{d:02d}")
        if year:
            keys.add(f"{year}-{m:02d}-{d:02d}")
    return frozenset(keys)


def _negated(text: str, start: int, end: int, rules: _Rules) -> bool:
    """NegEx-style: a negation cue earlier in the clause (within a few words, no scope
    break between), or a post-negation cue right after the concept."""
    clause_start = max((m.end() for m in _CLAUSE_END.finditer(text, 0, start)), default=0)
    before = text[clause_start:start]
    breaks = list(rules.scope_break.finditer(before))
    if breaks:
        before = before[breaks[-1].end() :]
    cues = list(rules.negation.finditer(before))
    if cues and len(re.findall(r"\w+", before[cues[-1].end() :])) <= PRE_NEGATION_WINDOW:
        return True
    after_end = _CLAUSE_END_AFTER.search(text, end)
    after = text[end : after_end.start() if after_end else len(text)]
    return bool(rules.post_negation.search(after))


def extract_facts(text: str, language: str) -> list[Fact]:
    """Every fact in ``text`` (duplicates removed, in order of appearance)."""
    rules = _rules(_lang(language))
    taken: list[tuple[int, int]] = []
    found: list[tuple[int, Fact]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in taken)

    for pattern in rules.date_patterns:
        for m in pattern.finditer(text):
            if free(m.start(), m.end()):
                taken.append(m.span())
                found.append((m.start(), Fact("date", _date_keys(m, rules), m.group(0))))
    for m in rules.dose.finditer(text):
        if free(m.start(), m.end()):
            taken.append(m.span())
            value = _number_value(m.group("n"), rules.number_words)
            unit = rules.unit_canonical[m.group("u").lower()]
            found.append((m.start(), Fact("dose", frozenset({f"{value} {unit}"}), m.group(0))))
    for m in rules.number.finditer(text):
        if free(m.start(), m.end()):
            raw = m.group("n") or m.group("w")
            value = raw if ":" in raw else _number_value(raw, rules.number_words)
            found.append((m.start(), Fact("number", frozenset({value}), m.group(0))))
    for m in rules.medication.finditer(text):
        name = rules.med_canonical[m.group(1).lower()]
        found.append((m.start(), Fact("medication", frozenset({name}), m.group(0))))
    for m in rules.concept.finditer(text):
        name = rules.concept_canonical[m.group(1).lower()]
        negated = _negated(text, m.start(), m.end(), rules)
        found.append((m.start(), Fact("concept", frozenset({name}), m.group(0), negated)))
    out: list[Fact] = []
    for _, fact in sorted(found, key=lambda pair: pair[0]):
        if not any(fact.matches(seen) for seen in out):
            out.append(fact)
    return out


def numeric_values(facts: Iterable[Fact]) -> set[str]:
    """Every number a text states, inside doses and dates too (for invention checks)."""
    values: set[str] = set()
    for fact in facts:
        for key in fact.keys:
            if fact.kind == "number":
                values.add(key)
            elif fact.kind == "dose":
                values.add(key.split(" ")[0])
            elif fact.kind == "date":
                values.update(str(int(part)) for part in key.split("-"))
    return values


def check_facts(source: str, output: str, language: str) -> FactCheck:
    """Which facts of ``source`` the rewrite ``output`` kept, dropped, invented or flipped."""
    src = extract_facts(source, language)
    out = extract_facts(output, language)
    kept = tuple(f for f in src if any(f.matches(o) for o in out))
    missing = tuple(f for f in src if f not in kept)
    src_numbers = numeric_values(src)
    invented = []
    for fact in out:
        if fact.kind not in INVENTION_KINDS:
            continue
        if fact.kind == "number":
            known = bool(fact.keys & src_numbers)
        else:
            known = any(fact.kind == s.kind and fact.keys & s.keys for s in src)
        if not known:
            invented.append(fact)
    concepts_in_source = {k for f in src if f.kind == "concept" for k in f.keys}
    invented_concepts = tuple(
        f for f in out if f.kind == "concept" and not f.keys & concepts_in_source
    )
    flipped = tuple(
        f
        for f in missing
        if f.kind == "concept"
        and f.negated
        and any(o.kind == "concept" and not o.negated and o.keys & f.keys for o in out)
    )
    return FactCheck(tuple(src), kept, missing, tuple(invented), invented_concepts, flipped)
