"""Clue detectors: identifiers recognised by context plus "not an ordinary word" (ward names,
hospital abbreviations, towns, names in ALL CAPS or lower-case notes, two-digit years)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from mindcommons.deid.context import _Ctx, lexicon
from mindcommons.deid.resources import alternation, dictionary, misspelt, ordinary, rules
from mindcommons.deid.spans import Span

_W = r"[A-Za-z][A-Za-z'\u2019-]*"


@dataclass(frozen=True)
class ClueLex:
    """Compiled clue patterns of one language (all context words come from rules.json)."""

    dictionary: frozenset[str]
    hosp_abbrev: re.Pattern[str]
    hosp_abbrev_lower: re.Pattern[str]
    ward: re.Pattern[str]
    locative: re.Pattern[str]
    named_hospital: re.Pattern[str]
    university: re.Pattern[str]
    regions: re.Pattern[str]
    event_year: re.Pattern[str]
    year_list: re.Pattern[str]
    plural_title: re.Pattern[str]
    name_verb: re.Pattern[str]
    signature: re.Pattern[str]
    role_paren: re.Pattern[str]
    weak_verbs: frozenset[str]


@cache
def clue_lexicon(lang: str) -> ClueLex:
    r = rules(lang)
    c = r.get("clues", {})

    def alt(key: str) -> str:
        return alternation(list(c.get(key, ["@@never@@"])))

    regions = alternation(list(c.get("regions", ["@@never@@"])))
    creds = alt("credentials")
    roles = alternation([*c.get("roles", ["@@never@@"]), *r.get("relations", [])])
    return ClueLex(
        dictionary(lang),
        re.compile(rf"\b(?i:{alt('transfer_words')})\s+(?:the\s+)?([A-Z]{{1,3}}(?:H|MC|HC))\b"
                   rf"|\b([A-Z]{{1,3}}(?:H|MC))\s+(?:{alt('hospital_units')})\b"),
        re.compile(rf"\b(?:{alt('transfer_words')})\s+(?:the\s+)?([a-z]{{1,2}}(?:h|mc))\b(?!['\u2019-])"),
        re.compile(rf"\b(?i:{alt('ward_words')})\s+(?:the\s+)?({_W})\s?(\d{{1,2}})\b(?![./:]\d)"),
        re.compile(rf"\b(?i:{alt('locative_words')})\s+(?:the\s+)?({_W}(?:\s+{_W})?)"),
        re.compile(rf"\b(?:(?:St|ST|Saint|SAINT)\.?\s+(?P<saint>[A-Z](?:[A-Za-z]+(?:['\u2019][sS])?|\.))"
                   rf"|(?i:{alt('hospital_names')}))(?:\s+(?i:{alt('hospital_tails')}))*"),
        re.compile(rf"\b(?i:u\.?\s*of|univ\.?\s+of|university\s+of|u)\s+(?i:{regions})\b"),
        re.compile(rf"\b(?i:{regions})\b"),
        re.compile(rf"\b(?i:{alt('year_events')})\s*(?:[xX#]\s?\d\s*)?(?:(?i:in|on|at|@|of)\s+)?"
                   r"(?<![A-Za-z])(['\u2019]?(?:19|20)?\d{2}['\u2019]?(?:\s*(?:,|and|&)\s*['\u2019]?(?:19|20)?\d{2}\b)*)"
                   r"(?![\w/:%'\u2019-]|\.\d|\s*(?i:mg|ml|cc|%|x\b|mm|cm|u\b|units?\b|yrs?\b|years?\b"
                   r"|hrs?\b|hours?\b|am\b|pm\b|ps\b|peep\b|days?\b|weeks?\b|months?\b|min\b))"),
        re.compile(r"\b((?:19|20)\d{2})(?:\s*(?:,|and|&)\s*((?:19|20)\d{2}))+\b"),
        re.compile(rf"\b(?i:{alt('plural_titles')})\.?\s+({_W})(?:\s*(?i:,|and|&)\s*({_W}))?"),
        re.compile(rf"\b(?i:{alt('name_verbs')})\s+({_W})(?:\s+({_W}\.?))?(?:\s+({_W}))?"),
        re.compile(rf"(?im)^[ \t]*((?:{_W}\.?[ \t]+){{0,3}}{_W})[ \t]*,?[ \t]*"
                   rf"(?:{creds})(?:[ \t]*[/,][ \t]*(?:{creds}))*[ \t.]*$"),
        re.compile(rf"\b({_W}(?:\s+{_W})?)\s*\((?i:{roles})\)"),
        frozenset(w.lower() for w in c.get("weak_name_verbs", [])),
    )  # fmt: skip


class _Clues:
    def __init__(self, text: str, lang: str) -> None:
        self.ctx = _Ctx(text, lang)
        self.lex = clue_lexicon(lang)
        lex = lexicon(lang)
        self.stop = lex.stop | lex.strong_titles | lex.weak_titles | lex.suffixes | {"drs"}
        self.lang = lang

    def unknown(self, word: str) -> bool:
        """Not an ordinary word of the language, not clinical shorthand: likely a proper noun."""
        low = word.lower().rstrip(".").removesuffix("'s").removesuffix("\u2019s")
        if len(low) < 3 or low in self.stop or low in self.ctx.gaz.common:
            return False
        if not self.lex.dictionary or ordinary(low, self.lang):
            return False
        return not misspelt(low, self.lang)  # "BORDELINE", "ASSCESS": a typo, not a name

    def cap_ok(self, word: str) -> bool:
        """Capitalised, or capitalisation carries no information in this note."""
        return not self.ctx.caps or word[:1].isupper()

    def listed(self, word: str) -> bool:
        """In the first-name or surname gazetteer (and not a common word)."""
        low = word.lower().rstrip(".")
        g = self.ctx.gaz
        return low not in g.common and (low in g.first or low in g.surnames)

    def namey(self, word: str) -> bool:
        low = word.lower().rstrip(".")
        g = self.ctx.gaz
        if low in self.stop or not self.cap_ok(word):
            return False
        if low in self.lex.dictionary and not (self.ctx.caps and word[:1].isupper()):
            return False
        return self.unknown(word) or low in g.first or (low in g.surnames and low not in g.common)


def clue_spans(text: str, lang: str) -> list[Span]:
    cl = _Clues(text, lang)
    lx, out = cl.lex, []

    def add(m: re.Match[str], g: int | str, kind: str, pattern: str, score: float) -> None:
        s, e = m.span(g)
        if s >= 0 and e > s:
            ctx = text[max(0, m.start() - 15) : m.start()].strip()
            out.append(Span(s, e, kind, "clue", pattern, ctx, score))

    for m in lx.hosp_abbrev.finditer(text):
        g = 1 if m.group(1) else 2
        if m.group(g).lower() not in cl.stop and m.group(g).lower() not in lx.dictionary:
            add(m, g, "HOSPITAL", "hospital-abbreviation", 0.75)
    if not cl.ctx.caps:  # "to gh", "at gh" in a lower-case note
        for m in lx.hosp_abbrev_lower.finditer(text):
            if m.group(1) not in cl.stop and m.group(1) not in lx.dictionary:
                add(m, 1, "HOSPITAL", "hospital-abbreviation", 0.7)
    for m in lx.ward.finditer(text):
        if cl.unknown(m.group(1)) and len(m.group(1)) >= 5:
            add(m, 1, "HOSPITAL", "ward-name", 0.75)
    for m in lx.locative.finditer(text):
        words = m.group(1).split()
        keep = 0
        for w in words:
            follows = keep > 0 and cl.ctx.caps and w[:1].isupper() and w.lower() not in cl.stop
            if not follows and not (cl.unknown(w) and cl.cap_ok(w) and len(w.rstrip(".")) >= 3):
                break  # "in Bel Air": a capitalised word after an unknown one joins the place
            keep += 1
        if keep:
            s = m.start(1)
            e = s + len(" ".join(words[:keep]))
            out.append(Span(s, e, "LOCATION", "clue", "locative-unknown", m.group(0), 0.65))
    for m in lx.named_hospital.finditer(text):
        saint = m.group("saint")
        if saint and len(saint) > 2 and not (cl.unknown(saint) or cl.namey(saint)):
            continue
        if saint and m.group().startswith("ST") and not cl.listed(saint.rstrip(".")):
            continue  # "ST NO VEA", "ST HR 110": sinus tachycardia, not a saint's hospital
        add(m, 0, "HOSPITAL", "named-hospital", 0.8)
    for m in lx.university.finditer(text):
        add(m, 0, "ORG", "university", 0.8)
    for m in lx.regions.finditer(text):
        if cl.cap_ok(m.group()):
            add(m, 0, "LOCATION", "region", 0.6)
    for m in lx.event_year.finditer(text):
        add(m, 1, "YEAR", "event-year", 0.7)
    for m in lx.year_list.finditer(text):
        add(m, 0, "YEAR", "year-list", 0.7)
    for m in lx.plural_title.finditer(text):
        for g in (1, 2):
            if m.group(g) and m.group(g).lower() not in cl.stop:
                add(m, g, "NAME", "plural-title", 0.9)
    for m in lx.name_verb.finditer(text):
        if not cl.namey(m.group(1)):
            continue
        verb = text[m.start() : m.start(1)].strip().lower()
        if verb in lx.weak_verbs and not cl.listed(m.group(1)):
            continue  # "with Bactoban": after with/per/by only a listed name counts
        last = 1
        for g in (2, 3):
            w = m.group(g)
            if not w or not (cl.namey(w) or (len(w.rstrip(".")) == 1 and cl.cap_ok(w))):
                break
            if "\n" in text[m.end(last) : m.start(g)]:
                break
            last = g
        out.append(Span(m.start(1), m.end(last), "NAME", "clue", "verb-unknown", "", 0.65))
    for m in lx.signature.finditer(text):
        words = m.group(1).split()
        if all(cl.namey(w) or len(w.rstrip(".")) == 1 for w in words) and any(
            len(w.rstrip(".")) > 1 for w in words
        ):
            add(m, 1, "NAME", "signature", 0.85)
    for m in lx.role_paren.finditer(text):
        words = m.group(1).split()
        if all(cl.namey(w) for w in words):
            add(m, 1, "NAME", "name-role", 0.8)
    return out
