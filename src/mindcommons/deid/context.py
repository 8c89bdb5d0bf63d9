"""Token detectors for names, hospitals and places: titles, relations, suffixes, context
words and gazetteers, all read from the per-language data files."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from mindcommons.deid.resources import (
    Gazetteer,
    _read_list,
    alternation,
    dictionary,
    gazetteer,
    misspelt,
    ordinary,
    rules,
)
from mindcommons.deid.spans import Span

_JOINERS = frozenset({"st", "saint", "of", "the", "&", "and", "san", "santa", "são", "sao"})
# Weak titles that name no role: the word after them is often no name ("pt lopressor").
_NOT_ROLES = frozenset({"pt", "patient", "client", "name", "cc", "signed", "dear"})
_AFTER_NAME = frozenset({"aware", "notified", "paged", "informed", "updated", "ordered"})
_AFTER_STREET = re.compile(
    r"(?:,|[ \t]+(?:in|at))[ \t]*(?:\d{1,5}\w?[ \t]*,[ \t]*)?"
    r"([A-ZÀ-Ý][\w'\u2019-]+(?:[ \t]+(?:(?:de|do|da|upon|on)[ \t]+)?[A-ZÀ-Ý][\w'\u2019-]+){0,2})"
)
_WORD = re.compile(r"[^\W\d_]+(?:['\u2019\-][^\W\d_]+)*\.?")


@dataclass(frozen=True)
class Tok:
    start: int
    end: int
    text: str
    low: str


@dataclass(frozen=True)
class Lex:
    """Lower-cased context sets for one language."""

    strong_titles: frozenset[str]
    weak_titles: frozenset[str]
    suffixes: frozenset[str]
    relations: frozenset[str]
    verbs: frozenset[str]
    stop: frozenset[str]
    function: frozenset[str]
    person_verbs: re.Pattern[str]
    conjunctions: frozenset[str]
    hospital: re.Pattern[str]
    org: re.Pattern[str]
    place_strong: re.Pattern[str]
    cities: re.Pattern[str]
    cities_any_case: re.Pattern[str]
    street: re.Pattern[str]


@cache
def lexicon(lang: str) -> Lex:
    r = rules(lang)

    def low(key: str) -> frozenset[str]:
        return frozenset(w.lower() for w in r.get(key, []))

    stop = low("function_words") | low("weekdays") | frozenset(r["months"])
    stop |= frozenset(w.lower() for w in _read_list(lang, "clinical_words.txt"))
    types = _read_list(lang, "street_types.txt") + r.get("street_words", [])
    hosp = alternation(r["hospital_words"])
    strong_ctx = [c for c in r["location_context"] if c not in r["weak_location_context"]]
    cap = r"[A-ZÀ-Ý][\w'\u2019.-]*"
    street_en = rf"(?i:\b\d{{1,6}}\s+(?:[NSEW]\.?\s+)?(?:(?:[A-Za-z][\w'.-]*|\d{{1,3}}(?:st|nd|rd|th))\s+){{0,3}}{alternation(types)}\b\.?(?:,?\s*(?:apt|unit|suite|ste|#)\.?\s*#?\w+)?)"  # noqa: E501
    street_lead = rf"\b(?i:{alternation(r.get('street_words', ['@@']))})\.?\s+(?:(?:de|del|da|do|dos|das|la|las|los)\s+)*{cap}(?:\s+(?:(?:de|del|da|do|dos|das|la|las|los)\s+)*{cap}){{0,4}}(?:,?\s*(?:n[º°o.]*\s*)?\d{{1,5}}\w?)?"  # noqa: E501
    street_named = rf"\b(?:(?:{cap}|\d{{1,3}}(?:st|nd|rd|th))\s+){{1,3}}(?:Avenue|Street|Road|Lane|Boulevard|Drive|Court|Place|Terrace|Parkway|Highway|Square|Ave|St|Rd|Ln|Blvd|Ct|Pl|Hwy|Pkwy)\b\.?"  # noqa: E501
    apartment = r"\b(?i:apartment|apt|flat|apto|piso)\.?\s*#?\s*\d{1,4}[A-Za-z]?\b"
    corner = r"\b(?i:corner\s+of|esquina\s+(?:de|con)|esquina\s+com)\s+(?:\w+\s+){0,2}?\w+\s+(?:and|&|y|e|con|com)\s+\w+"  # noqa: E501
    po_box = r"\b(?i:p\.?\s?o\.?\s*box|post\s+office\s+box|caixa\s+postal|apartado(?:\s+postal)?)\s*#?\s*\d{1,6}\b"  # noqa: E501
    return Lex(
        low("strong_titles"), low("titles") - low("strong_titles"), low("name_suffixes"),
        low("relations"), low("name_verbs"), stop, low("function_words") | frozenset(r["months"]),
        re.compile(rf"[ \t]+{alternation(r.get('person_verbs', ['@@never@@']))}\b", re.I),
        low("name_conjunctions"),
        re.compile(rf"\b{hosp}\b", re.I),
        re.compile(rf"\b{alternation(r['org_words'])}\b", re.I),
        re.compile(rf"\b{alternation(strong_ctx)}\s+(?:the\s+)?", re.I),
        re.compile(rf"\b{alternation(r['cities'])}\b"),
        re.compile(rf"\b{alternation(r['cities'])}\b", re.I),
        re.compile(f"{street_en}|{street_lead}|{street_named}|{po_box}|{apartment}|{corner}"),
    )  # fmt: skip


def tokens(text: str) -> list[Tok]:
    out = []
    for m in _WORD.finditer(text):
        word = m.group().rstrip(".")
        out.append(Tok(m.start(), m.start() + len(word), word, word.lower()))
    return out


def caps_informative(toks: list[Tok]) -> bool:
    """True when capitalisation carries meaning (mixed-case prose, not ALL CAPS or all lower)."""
    alpha = [t.text for t in toks if len(t.text) > 1]
    if len(alpha) < 8:
        return True
    upper = sum(t.isupper() for t in alpha) / len(alpha)
    title = sum(t[0].isupper() and not t.isupper() for t in alpha) / len(alpha)
    return upper < 0.5 and title > 0.03


class _Ctx:
    def __init__(self, text: str, lang: str) -> None:
        self.text = text
        self.lang = lang
        self.lex = lexicon(lang)
        self.gaz: Gazetteer = gazetteer()
        self.toks = self._split_relations(tokens(text))
        self.caps = caps_informative(self.toks)

    def _split_relations(self, toks: list[Tok]) -> list[Tok]:
        """'DAUGHTER-KRISSY', 'wife-Joellen': a relation or title glued to a name by a hyphen."""
        lex, out = self.lex, []
        for t in toks:
            head, dash, rest = t.text.partition("-")
            if (
                dash
                and rest
                and (head.lower() in lex.relations or head.lower() in lex.strong_titles)
            ):
                out.append(Tok(t.start, t.start + len(head), head, head.lower()))
                s = t.start + len(head) + 1
                out.append(Tok(s, t.end, rest, rest.lower()))
            else:
                out.append(t)
        return out

    def gap(self, i: int) -> str:
        """Characters between token i-1 and token i."""
        return self.text[self.toks[i - 1].end : self.toks[i].start] if i > 0 else ""

    def propery(self, t: Tok) -> bool:
        return t.text[0].isupper() and not (t.text.isupper() and len(t.text) <= 3)

    def first(self, t: Tok, strict: bool = True) -> bool:
        g = self.gaz
        if t.low not in g.first or t.low in self.lex.stop:
            return False
        return not strict or t.low not in g.ambiguous or (self.caps and t.text[0].isupper())

    def surname(self, t: Tok) -> bool:
        g = self.gaz
        if t.low in self.lex.stop or t.low in g.common:
            return False
        if t.low in g.surnames or t.low in g.first:
            return t.low not in g.ambiguous or (self.caps and t.text[0].isupper())
        return self.caps and self.propery(t) and t.text.upper() != t.text

    def unknown(self, t: Tok, typo: bool = True) -> bool:
        """Not a function, clinical or ordinary word: in an uninformative-case note, a name.
        With ``typo`` a word one edit from a long ordinary word counts as a typo, not a name
        (off where the context already says a name is there: after a given name)."""
        low = t.low
        if len(low) < 3 or low in self.lex.stop or low in self.gaz.common:
            return False
        if not dictionary(self.lang) or ordinary(low, self.lang):
            return False
        return not typo or not misspelt(low, self.lang)  # "visisted" is a typo, not a name

    def titled(self, t: Tok) -> bool:
        """After a strong title: a capitalised word that is not a function word is a name."""
        if self.namey(t):
            return True
        return (
            self.caps
            and self.propery(t)
            and not t.text.isupper()
            and t.low not in self.lex.function
        )

    def word_name(self, t: Tok) -> bool:
        """'Hope says', 'Grace phoned': a capitalised given name that is also an ordinary
        word, right before a verb only people do (mixed-case notes)."""
        return (
            self.caps
            and self.propery(t)
            and not t.text.isupper()
            and t.low in self.gaz.first
            and t.low not in self.lex.stop
        )

    def word_then_surname(self, i: int) -> bool:
        """'Dr Will Cole', 'Dr. May Ortiz': after a title, a capitalised word that is also an
        ordinary word, then a surname on the same line: both are the name."""
        if not self.caps or i + 1 >= len(self.toks) or self.gap(i + 1) != " ":
            return False
        t, after = self.toks[i], self.toks[i + 1]
        return (
            self.propery(t)
            and not t.text.isupper()
            and len(t.text) > 2
            and after.text[0].isupper()
            and not after.text.isupper()
            and (self.surname(after) or self.first(after))
        )

    def related(self, i: int, gap: str) -> bool:
        """Token i+1 names the person that relation or weak title i introduces."""
        t, nxt, lex = self.toks[i], self.toks[i + 1], self.lex
        if "." in gap:
            return False  # "asking for wife. Reorients": a new sentence
        if not self.caps:  # a relation may name anyone ("wife rose"); a weak title ("pa",
            # "pt", "rn") before a name that is also a word reads as prose ("PA line")
            strict = t.low not in lex.relations
            by_role = t.low in lex.relations or t.low not in _NOT_ROLES  # "ho okeke", "wife x"
            return self.first(nxt, strict=strict) or (by_role and self.unknown(nxt))
        if self.surname(nxt) or self.first(nxt):
            return True
        after = self.toks[i + 2] if i + 2 < len(self.toks) else None
        return (  # "Husband Rich Martino": a word that is a name, before a surname
            t.low in lex.relations
            and self.propery(nxt)
            and nxt.low not in lex.stop
            and after is not None
            and self.gap(i + 2) == " "
            and self.surname(after)
        )

    def person(self, t: Tok) -> bool:
        """In a mixed-case note: a capitalised word that is a listed name or no ordinary word."""
        if not self.propery(t) or t.low in self.lex.stop or t.low in self.gaz.common:
            return False
        return self.first(t) or (self.surname(t) and not ordinary(t.low, self.lang))

    def pair(self, a: Tok, b: Tok) -> bool:
        """A given name then a surname-like word ("patty hoeller", "KAREN YANULIS"), where
        capitalisation carries no information or both words are capitalised."""
        g = self.gaz
        if a.low not in g.first or a.low in self.lex.stop or b.low in self.lex.stop:
            return False
        if len(a.text) < 3 or len(b.text) < 3 or b.low in g.common or a.low in g.common:
            return False
        if self.caps and not (self.propery(a) and self.propery(b)):
            return False
        if a.low in g.ambiguous:  # "carol", "will": the next word must be clearly a name
            return self.unknown(b)
        b_unknown = self.unknown(b, typo=False)
        return b_unknown or (b.low in g.surnames and not ordinary(b.low, self.lang))

    def namey(self, t: Tok) -> bool:
        """Could be a name right after a strong title (anything but a function word)."""
        return t.low not in self.lex.stop and (len(t.text) > 1 or t.text.isupper())


def _extend(c: _Ctx, i: int, limit: int = 2, titled: bool = False) -> int:
    """Index after the run of surname-like tokens that follows token i on the same line
    (after a title, any capitalised word that is not a function word also continues it)."""
    j = i + 1
    while j < len(c.toks) and j <= i + limit:
        gap = c.gap(j)
        tok = c.toks[j]
        if (
            "\n" in gap
            or len(gap.strip(" .\"'")) > 0
            or not (
                c.surname(tok)
                or (titled and c.caps and c.propery(tok) and tok.low not in c.lex.stop)
                or (titled and not c.caps and tok.low in c.gaz.surnames and j > i)
                or (len(c.toks[j].text) == 1 and c.toks[j].text.isupper())
                or (not c.caps and c.unknown(c.toks[j], typo=False))
            )
        ):
            break
        j += 1
    return j


def name_spans(text: str, lang: str) -> list[Span]:
    c = _Ctx(text, lang)
    out: list[Span] = []
    toks, lex = c.toks, c.lex

    def add(i: int, j: int, pattern: str, score: float) -> None:
        ctx = toks[i - 1].text if i > 0 else ""
        out.append(Span(toks[i].start, toks[j - 1].end, "NAME", "context", pattern, ctx, score))

    for i, t in enumerate(toks):
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        gap = c.gap(i + 1) if nxt else ""
        if nxt is not None and "\n" not in gap and len(gap.strip(" .,:'\"()-")) == 0:
            if t.low in lex.strong_titles and c.titled(nxt):
                add(i + 1, _extend(c, i + 1, titled=True), f"title:{t.low}", 0.95)
            elif t.low in lex.strong_titles and c.word_then_surname(i + 1):
                add(i + 1, _extend(c, i + 1, titled=True), f"title:{t.low}+word", 0.9)
            elif (t.low in lex.weak_titles or t.low in lex.relations) and c.related(i, gap):
                add(i + 1, _extend(c, i + 1), f"relation:{t.low}", 0.85)
            elif t.low in lex.verbs and c.first(nxt):
                add(i + 1, _extend(c, i + 1), f"verb:{t.low}", 0.8)
        if (
            t.low in lex.suffixes
            and i > 0
            and "\n" not in c.gap(i)
            and c.gap(i).strip() in ("", ",")
        ):
            j = i - 1
            while j >= 0 and j > i - 4 and c.namey(toks[j]) and toks[j].low not in lex.suffixes:
                if "\n" in c.gap(j) or not (
                    c.surname(toks[j])
                    or c.first(toks[j], False)
                    or len(toks[j].text) == 1
                    or j == i - 1
                ):
                    break
                j -= 1
            run = toks[j + 1 : i]
            if run and any(
                c.first(w, False) or c.surname(w) or (c.unknown(w) and not c.caps) for w in run
            ):  # "4 L NP", "Monitor shows SR": no name-like word before the suffix
                add(j + 1, i, f"suffix:{t.low}", 0.85)
        initial = (
            len(t.text) == 1
            and t.text.isupper()
            and gap.strip() == "."
            and "\n" not in gap
            and (t.start == 0 or text[t.start - 1] in " \t\n(,")  # not "I/O.", "90'S."
        )
        if (
            initial
            and nxt is not None
            and c.namey(nxt)
            and nxt.low not in c.gaz.common
            and len(nxt.text) > 1
            and (
                nxt.text[0].isupper()
                if c.caps
                else not ordinary(nxt.text, lang) or nxt.low in c.gaz.surnames
            )
            and not (ordinary(nxt.text, lang) and nxt.low not in c.gaz.surnames)
        ):
            add(i, _extend(c, i + 1), "initial-surname", 0.85)
        if t.low in _AFTER_NAME and i > 0 and "\n" not in c.gap(i) and c.gap(i).strip() == "":
            prev = toks[i - 1]
            if (
                c.namey(prev)
                and prev.low not in c.gaz.common
                and len(prev.text) > 2
                and (c.first(prev, False) or c.unknown(prev) or (c.caps and c.propery(prev)))
            ):  # "vascular aware", "MIDLEVELS AWARE": a service or an ordinary word
                j = i - 1
                if (
                    j > 0
                    and c.gap(j).strip() in ("", ".")
                    and (c.first(toks[j - 1], False) or len(toks[j - 1].text) == 1)
                ):
                    j -= 1
                add(j, i, f"before:{t.low}", 0.75)
        if (
            lex.person_verbs.match(text, t.end)
            and (c.first(t) or c.unknown(t) if not c.caps else c.person(t) or c.word_name(t))
            and t.low.removesuffix("'s") not in lex.relations | lex.suffixes | lex.weak_titles
            and (i == 0 or toks[i - 1].low not in lex.relations | lex.strong_titles)
        ):  # "bob visited", "JOHN STATES", "Joellen in to visit"
            add(i, i + 1, "before-verb", 0.7)
        if nxt is not None and gap == " " and c.pair(t, nxt):
            add(i, _extend(c, i + 1), "name-pair", 0.7)
        sentence_start = i == 0 or "\n" in c.gap(i) or c.gap(i).strip()[-1:] in (".", ":", "!", "?")
        lone = nxt is None or not (nxt.text[0].isupper() and c.surname(nxt))
        if c.first(t) and not (sentence_start and lone and t.low in c.gaz.ambiguous):
            add(i, _extend(c, i), "gazetteer:first", 0.7)
        elif c.caps and t.text[0].isupper() and t.low in c.gaz.surnames and c.surname(t):
            add(i, i + 1, "gazetteer:surname", 0.6)
    return out + _conjoined(c, out)


def _conjoined(c: _Ctx, found: list[Span]) -> list[Span]:
    """'sarah and margie', 'Bea and Joseph': a name-like word joined to a found name."""
    by_start = {t.start: k for k, t in enumerate(c.toks)}
    by_end = {t.end: k for k, t in enumerate(c.toks)}
    out = []
    for span in found:
        for k, step in ((by_end.get(span.end), 1), (by_start.get(span.start), -1)):
            if k is None or not 0 <= k + 2 * step < len(c.toks):
                continue
            conj, cand = c.toks[k + step], c.toks[k + 2 * step]
            a, b = (k, k + 1) if step == 1 else (k - 2, k - 1)  # gaps inside the three words
            if conj.low not in c.lex.conjunctions or "\n" in c.gap(a + 1) + c.gap(b + 1):
                continue
            if c.first(cand, strict=False) or (
                c.person(cand) if c.caps else c.unknown(cand) and len(cand.text) >= 3
            ):
                out.append(Span(cand.start, cand.end, "NAME", "context", "conjoined-name",
                                conj.text, 0.65))  # fmt: skip
    return out


_COMPASS = re.compile(r"\b(?:North|South|East|West|Upper|Lower|Old|Port|Fort|Mount)[ \t]+\Z")
_BOX = re.compile(
    r"(?i)(?:p\.?\s?o\.?\s*box|post\s+office|caixa|apartado|apartment|apt|flat|apto|piso"
    r"|corner|esquina)\b"
)
_UNIT_TAIL = re.compile(r",?\s*(?i:apt|unit|suite|ste|#)\b")


def _street_ok(c: _Ctx, found: str, lang: str) -> bool:
    """A street address needs a name between number and street type that is not prose."""
    found = _UNIT_TAIL.split(found, maxsplit=1)[0]  # ", Unit 12", " Apt 3B"
    words = re.findall(r"\b[^\W\d_]+", found)  # "98th" is no word of the name
    if re.match(r"\d{1,3}(?:st|nd|rd|th)\b", found, re.I) or _BOX.match(found):
        return True  # "14th Avenue", "PO Box 12", "apartment 4B"
    if not words or not found[:1].isdigit():
        return not words or words[0].lower() not in c.lex.stop  # "Pt St." is no street
    name, kind = words[:-1], words[-1]
    if not name or any(w.lower() in c.lex.stop for w in name):
        return False
    if c.caps:
        return all(w[0].isupper() for w in name) and kind[0].isupper()
    return not all(ordinary(w, lang) for w in name) and len(name) <= 3


def place_spans(text: str, lang: str) -> list[Span]:
    c = _Ctx(text, lang)
    lex, out = c.lex, []
    starts = {t.start: k for k, t in enumerate(c.toks)}
    hosp_words = {w.lower() for w in rules(lang)["hospital_words"] if " " not in w}
    strong_hosp = {w.lower() for w in rules(lang).get("strong_hospital_words", [])}
    for pattern, rx, kind in (("hospital", lex.hospital, "HOSPITAL"), ("org", lex.org, "ORG")):
        for m in rx.finditer(text):
            k = starts.get(m.start())
            if k is None:
                continue
            j = k
            while j > 0 and j > k - 5 and "\n" not in c.gap(j):
                prev = c.toks[j - 1]
                ok = prev.low in _JOINERS or prev.low in hosp_words or (
                    (c.propery(prev) if c.caps else not ordinary(prev.text, lang))
                    and prev.low not in lex.stop and prev.low not in c.gaz.common)  # fmt: skip
                if not ok and c.caps and c.propery(prev) and prev.low not in lex.function:
                    ok = True  # "Chester River Heart Center": clinical words inside a name
                if not ok and not c.caps and j == k and m.group().lower() in strong_hosp:
                    ok = prev.text.isupper() and prev.low not in lex.stop and len(prev.text) > 2
                    ok = ok and prev.low not in c.gaz.common  # "UNION HOSP" in an ALL-CAPS note
                if not ok or c.gap(j).strip() not in ("", ".", "&", "'s", "-"):
                    break
                j -= 1
            while j < k and (
                c.toks[j].low in ("of", "the", "and")
                or (c.caps and c.toks[j].low in lex.stop and c.toks[j].low not in hosp_words)
            ):
                j += 1  # fmt: skip
            e = m.end()
            if j == k and kind == "HOSPITAL" and rules(lang).get("hospital_leading"):
                rest = re.match(
                    r"(?:\s+(?:(?:de|del|da|do|dos|das|la|las|los|el|d')\s*){0,2}[A-ZÀ-Ý][\w'-]*)+",
                    text[e:],
                )
                if rest:
                    e += rest.end()
            if j < k or e > m.end():
                out.append(Span(c.toks[j].start, e, kind, "context", pattern, m.group(), 0.8))
    for m in lex.street.finditer(text):
        if not _street_ok(c, m.group(), lang):
            continue
        out.append(Span(m.start(), m.end(), "LOCATION", "pattern", "street-address", "", 0.9))
        town = _AFTER_STREET.match(text, m.end())
        if town and town.group(1).lower() not in lex.stop | c.gaz.common:
            s, e = town.span(1)
            out.append(Span(s, e, "LOCATION", "context", "town-after-street", m.group(), 0.8))
    for m in lex.cities.finditer(text):
        lead = _COMPASS.search(text, 0, m.start())  # "East Boston", "North Andover"
        start = lead.start() if lead else m.start()
        out.append(Span(start, m.end(), "LOCATION", "gazetteer", "city", "", 0.8))
    if not c.caps:  # "BALTIMORE", "new haven": case carries nothing; skip one-word city words
        for m in lex.cities_any_case.finditer(text):
            if " " in m.group() or not ordinary(m.group(), lang):
                out.append(Span(m.start(), m.end(), "LOCATION", "gazetteer", "city", "", 0.75))
    for m in lex.place_strong.finditer(text):
        k = starts.get(m.end())
        if k is None:
            continue
        j = k
        while j < len(c.toks) and j < k + 3 and (j == k or c.gap(j).strip() == ""):
            t = c.toks[j]
            if t.low in lex.stop or t.low in c.gaz.common or (c.caps and not c.propery(t)):
                break
            j += 1
        if j > k:
            s, e = c.toks[k].start, c.toks[j - 1].end
            out.append(Span(s, e, "LOCATION", "context", "place-context", m.group().strip(), 0.7))
    return out
