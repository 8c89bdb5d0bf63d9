"""Regex detectors compiled from the data files: identifiers, dates, ages, IDs by context."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from mindcommons.deid.resources import alternation, common_patterns, rules
from mindcommons.deid.spans import Span


@dataclass(frozen=True)
class Compiled:
    """One compiled pattern with the type it yields and the group holding the identifier."""

    name: str
    type: str
    regex: re.Pattern[str]
    group: int | str = 0
    score: float = 1.0
    digit_and_letter: bool = False


_ALNUM_OR_PHONE = (
    r"((?:(?-i:[A-Z]{1,4})[ -](?=[A-Za-z]*\d[A-Za-z0-9]*(?:[ \t]|$|[,;.](?!\d))))?"  # "MA 4KX 921"
    r"(?:(?=[A-Za-z0-9_.-]*\d)[A-Za-z0-9][A-Za-z0-9_.-]*|\+?\(?\d[\d()\s./-]{2,}\d)"
    r"(?:[ \t]+(?:\d{2,5}|[A-Z0-9]*\d[A-Z0-9]*)\b)*)"
)


# Context-word groups whose words are too common to start a label ("call ...: 0900").
_NO_LABEL_GAP = frozenset({"PHONE", "FAX", "ID"})


def _flags(spec: dict[str, Any]) -> int:
    return re.IGNORECASE if "i" in str(spec.get("flags", "")) else 0


@cache
def compiled(lang: str) -> tuple[Compiled, ...]:
    """Every regex pattern that applies to documents of ``lang``."""
    r = rules(lang)
    out = [
        Compiled(
            p["name"],
            p["type"],
            re.compile(p["regex"], _flags(p)),
            p.get("group", 0),
            float(p.get("score", 1.0)),
            bool(p.get("needs_digit_and_letter", False)),
        )
        for p in [*common_patterns(), *r.get("patterns", [])]
    ]
    months = [m for m in r["months"] if m not in r.get("ambiguous_months", [])]
    month_alt = alternation(list(r["months"]))
    fills = {"MONTH": month_alt, "WEEKDAY": alternation(r["weekdays"])}
    for p in r["date_patterns"]:
        regex = p["regex"].replace("{MONTH}", fills["MONTH"]).replace("{WEEKDAY}", fills["WEEKDAY"])
        out.append(Compiled(p["name"], "DATE", re.compile(regex, re.I), p.get("group", 0),
                            float(p.get("score", 1.0))))  # fmt: skip
    if r.get("full_month_alone"):
        full = [m for m in months if len(m) > 3]
        out.append(Compiled("month-name", "DATE", re.compile(rf"\b{alternation(full)}\b", re.I)))
    for i, regex in enumerate(r["age_patterns"]):
        out.append(Compiled(f"age-over-89-{i}", "AGE", re.compile(regex, re.I), "age"))
    year_ctx = alternation(r["year_context"])
    year_rx = re.compile(rf"\b{year_ctx}\s+((?:19|20)\d{{2}}s?)\b", re.I)
    out.append(Compiled("year-in-context", "YEAR", year_rx, 1, 0.7))
    fill = alternation(list(r.get("id_fillers", ["@@never@@"])))
    for group in r["id_context"]:
        kw = alternation(group["words"])
        value = _ALNUM_OR_PHONE
        if group["type"] == "ID":
            value = r"(@?[A-Za-z][A-Za-z0-9_.-]{2,}\d*)"
        sep = r"(?:no\.?|n[º°o]\.?|number|num|#|:|\.|-)*"
        rx = re.compile(rf"\b{kw}\b\s*(?:{fill}\s+){{0,2}}{sep}\s*{value}", re.I)
        out.append(Compiled(f"context-{group['type'].lower()}", group["type"], rx, 1))
        if group["type"] not in _NO_LABEL_GAP:
            # "plate noted in incident report: IL 7XK 392", "Policy number on the card: ...":
            # the context word starts a label of a few words that a colon ends
            label = re.compile(rf"\b{kw}\b[A-Za-z' \t-]{{1,40}}?:[ \t]*{value}", re.I)
            out.append(Compiled(f"label-{group['type'].lower()}", group["type"], label, 1, 0.9))
    zip_ctx = alternation(r["zip_context"])
    zip_rx = re.compile(rf"\b{zip_ctx}\s*:?\s*(\d{{4,5}}(?:-\d{{3,4}})?)\b", re.I)
    out.append(Compiled("zip-context", "ZIP", zip_rx, 1))
    if lang == "en":
        states = r"(?:A[LKZR]|C[AOT]|D[EC]|FL|GA|HI|I[DLNA]|K[SY]|LA|M[EDAINSOT]|N[EVHJMYCD]|O[HKR]|PA|RI|S[CD]|T[NX]|UT|V[TA]|W[AVIY])"  # noqa: E501
        state_zip = re.compile(rf"\b{states}\.?,?\s+(\d{{5}}(?:-\d{{4}})?)\b")
        out.append(Compiled("us-state-zip", "ZIP", state_zip, 1))
        out.append(Compiled("city-state", "LOCATION", re.compile(
            rf"\b((?:[A-Z][a-z]+\.?\s){{0,2}}[A-Z][a-z]+),\s*{states}\b"), 1))  # fmt: skip
        # the state of an address ("Medford, MA 02155"): Safe Harbor may keep it, but an
        # address is whole or not at all; its surrogate is another state code
        out.append(Compiled("address-state", "LOCATION", re.compile(
            rf"(?:\b[A-Z][a-z]+[ \t]+|\d{{5}}[ \t]+)({states})\.?(?:,?[ \t]+\d{{5}}\b|[ \t]*$|(?=[,.;)]))",  # noqa: E501
            re.M), 1, 0.7))  # fmt: skip
        # "Beaverton, OR 97005": a state code between a town and a ZIP code is an address
        # part whatever the word ("OR", "IN", "ME"); the learned step never vetoes it
        out.append(Compiled("address-state-zip", "LOCATION", re.compile(
            rf"\b[A-Z][a-z]+,?[ \t]+({states})\.?,?[ \t]+\d{{5}}(?:-\d{{4}})?\b"), 1))  # fmt: skip
        out.append(Compiled("address-state", "LOCATION", re.compile(
            rf"\b[A-Z][a-z]+,[ \t]*({states})\b"), 1, 0.7))  # fmt: skip
    if lang in ("es", "pt"):
        out.append(Compiled("cp-cep", "ZIP", re.compile(r"\b\d{5}-\d{3}\b|(?<=\bCP\s)\d{5}\b")))
    return tuple(out)


def _valid(c: Compiled, value: str) -> bool:
    if c.digit_and_letter:
        return any(ch.isdigit() for ch in value) and any(ch.isalpha() for ch in value)
    if c.type == "DATE" and c.name == "date-numeric":
        parts = re.split(r"[/.-]", value)
        seps = re.findall(r"[/.-]", value)
        return (
            len(parts) == 3
            and all(p.isdigit() for p in parts)
            and len(set(seps)) == 1  # "27-41/14", "7.40-53": pressures and gases, not dates
            and int(parts[0]) <= 31
            and int(parts[1]) <= 31
            and min(int(parts[0]), int(parts[1])) <= 12
        )
    if c.name.startswith("label-"):  # an identifier's shape: 3+ digits, 4+ letters/digits
        return sum(ch.isdigit() for ch in value) >= 3 and sum(ch.isalnum() for ch in value) >= 4
    if c.name.startswith("context-") and c.type not in ("ID",):
        return sum(ch.isdigit() for ch in value) >= 3
    if c.type == "ID" and c.name == "context-id":
        return any(ch.isdigit() for ch in value) or "_" in value or value.startswith("@")
    return True


_VETOED = frozenset({"date-month-day", "date-month-year"})


@cache
def _veto(lang: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    v = rules(lang).get("date_veto", {})
    before = alternation(list(v.get("before", ["@@never@@"])))
    after = alternation(list(v.get("after", ["@@never@@"])))
    return (
        re.compile(rf"\b{before}[^\w\n]{{0,3}}\Z", re.I),
        re.compile(rf"^[^\w\n]{{0,3}}{after}\b", re.I),
    )


_TIME_AFTER = re.compile(r"^,?\s{1,2}(?:@\s?)?(?:[0-2]\d[0-5]\d\b|[0-2]?\d:[0-5]\d)")


def _vetoed(lang: str, text: str, start: int, end: int) -> bool:
    """A bare m/d that reads as a fraction, a strength grade or a ventilator setting."""
    before, after = _veto(lang)
    pre, post = text[max(0, start - 25) : start], text[end : end + 15]
    if _TIME_AFTER.match(post):  # "10/16 0930" is a date and a time
        return False
    num, _, den = text[start:end].partition("/")
    proper = den.isdigit() and num.isdigit() and int(num) < int(den) <= 8
    if proper and re.search(r"(?<![\dx/.:-])(?<!x\s)\d\s\Z", pre, re.I):  # "1 1/2 hrs"
        return True
    if den == "10" and num.isdigit() and int(num) <= 10 and _PAIN.search(pre + " " + post):
        return True  # "c/o 4/10 pain", "CP 8/10": a pain score
    if num == den and _VENT.search(pre):
        return True  # "weaning trial 5/5", "CPAP .5% 5/5": pressure settings
    return bool(before.search(pre) or after.search(post))


_PAIN = re.compile(
    r"\b(?:pain|cp|c/o|discomfort|ache|aching|rating|rates|rated|scale|score)\b", re.I
)
_VENT = re.compile(
    r"\b(?:cpap|bipap|peep|ps|psv|ips|ipap|epap|simv|imv|vent|trial|trials|wean|weaning|settings?|mode)\b",
    re.I,
)


def _range_like(value: str) -> bool:
    """'575-1000', '882-1326': the second number is at most double the first (a range)."""
    a, _, b = value.partition("-")
    return a.isdigit() and b.isdigit() and not b.startswith("0") and int(a) <= int(b) <= 2 * int(a)


def regex_spans(text: str, lang: str) -> list[Span]:
    """Run every compiled pattern once over ``text``."""
    spans: list[Span] = []
    for c in compiled(lang):
        for m in c.regex.finditer(text):
            start, end = m.span(c.group)
            if start < 0 or end <= start:
                continue
            value = text[start:end].rstrip(" .-/")
            end = start + len(value)
            if not value or not _valid(c, value):
                continue
            ctx = text[max(0, m.start() - 20) : m.start()].strip()
            if c.name in _VETOED and _vetoed(lang, text, start, end):
                continue
            if c.name == "date-numeric" and text[end : end + 1] == "%":
                continue  # "20/5/40%": ventilator settings
            score = c.score
            if c.name == "phone-local" and _range_like(value):
                score = 0.45  # "800-1000": more likely a range; kept unless sensitivity drops it
            spans.append(Span(start, end, c.type, "pattern", c.name, ctx, score))
    return spans
