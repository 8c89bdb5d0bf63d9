"""Consistent surrogates keyed by HMAC(site secret, patient key, original)."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import date, timedelta
from functools import cache

from mindcommons.deid.resources import _read_list, gazetteer, name_lists, rules

# Three-digit ZIP areas with 20,000 or fewer people (2000 census): Safe Harbor says "000".
SMALL_ZIP3 = frozenset(
    "036 059 063 102 203 556 692 790 821 823 830 831 878 879 884 890 893".split()  # noqa: SIM905
)
_NUMERIC_DATE = re.compile(r"^(\d{1,4})([/.-])(\d{1,2})(?:\2(\d{2,4}))?$")
_HOSPITAL = {"en": "{} Hospital", "es": "Hospital {}", "pt": "Hospital {}"}
_STREET = {
    "en": "{number} {street} St",
    "es": "Calle {street}, {number}",
    "pt": "Rua {street}, {number}",
}


def _case_like(template: str, value: str) -> str:
    if template.isupper() and len(template) > 1:
        return value.upper()
    if template.islower():
        return value.lower()
    return value


class Surrogates:
    """Surrogates for one patient: the same original always maps to the same surrogate."""

    def __init__(self, secret: bytes, patient_key: str, language: str) -> None:
        self.secret = secret
        self.patient = patient_key
        self.lang = language
        self.months: dict[str, int] = dict(rules(language)["months"])  # every spelling
        self.month_names: dict[int, str] = {}  # number -> the full (longest) name
        for name, number in self.months.items():
            if len(name) > len(self.month_names.get(number, "")):
                self.month_names[number] = name
        shift = self._int("date-shift", "") % 361 - 180
        self.shift = timedelta(days=shift or 1)

    def _digest(self, kind: str, original: str) -> bytes:
        msg = f"{self.patient}\x1f{kind}\x1f{original.strip().lower()}".encode()
        return hmac.new(self.secret, msg, hashlib.sha256).digest()

    def _int(self, kind: str, original: str) -> int:
        return int.from_bytes(self._digest(kind, original)[:8], "big")

    def _pick(self, kind: str, original: str, options: tuple[str, ...]) -> str:
        """A keyed choice among ``options`` that neither is nor contains the original."""
        if not options:
            return f"[{kind}]"
        low = original.strip().lower()
        i = self._int(kind, original) % len(options)
        for _ in range(min(len(options), 8)):
            opt = options[i].lower()
            if low not in opt and opt not in low:  # never the original, nor a part of it
                break
            i = (i + 1) % len(options)
        return options[i]

    def name_token(self, token: str) -> str:
        """A first name keeps its gender; anything else becomes a surname."""
        low = token.lower()
        gaz, lists = gazetteer(), name_lists(self.lang)
        if len(token.rstrip(".")) <= 1:
            return token
        if low in gaz.female:
            value = self._pick("first-f", low, lists.female)
        elif low in gaz.male:
            value = self._pick("first-m", low, lists.male)
        elif low in gaz.first:
            value = self._pick("first", low, lists.unisex or lists.female + lists.male)
        else:
            value = self._pick("surname", low, lists.surnames)
        return _case_like(token, value)

    def _name(self, text: str) -> str:
        return re.sub(r"[^\W\d_]+", lambda m: self.name_token(m.group()), text)

    def _digits(self, kind: str, text: str) -> str:
        stream = self._digest(kind, text) * 4
        out, i = [], 0
        for ch in text:
            if ch.isdigit():
                out.append(str(stream[i] % 10))
                i += 1
            elif ch.isalpha():
                letter = chr(ord("A") + stream[i] % 26)
                out.append(letter if ch.isupper() else letter.lower())
                i += 1
            else:
                out.append(ch)
        return "".join(out)

    def date(self, text: str) -> str:
        """Shift a date by the patient's offset, keeping its format; unknown forms -> [DATE]."""
        m = _NUMERIC_DATE.match(text.strip())
        if m:
            a, sep, b, y = m.groups()
            if len(a) == 4:
                return self._fmt_iso(int(a), int(b), int(y or 1), a, b, y, sep)
            if y is None and int(a) > 12:
                return "[DATE]"
            year = int(y) if y else 2001
            year = year + (1900 if year >= 30 else 2000) if y and len(y) == 2 else year
            day_first = self.lang != "en" or int(a) > 12
            mo, da = (int(b), int(a)) if day_first else (int(a), int(b))
            try:
                new = date(year, mo, da) + self.shift
            except ValueError:
                return "[DATE]"
            first, second = (new.day, new.month) if day_first else (new.month, new.day)
            res = f"{first:0{len(a)}d}{sep}{second:0{len(b)}d}"
            return res + (
                f"{sep}{new.year % 100:02d}"
                if y and len(y) == 2
                else f"{sep}{new.year}"
                if y
                else ""
            )
        return self._textual_date(text)

    def _fmt_iso(self, yy: int, mm: int, dd: int, a: str, b: str, y: str | None, sep: str) -> str:
        try:
            new = date(yy, mm, dd) + self.shift
        except ValueError:
            return "[DATE]"
        return f"{new.year}{sep}{new.month:0{len(b)}d}{sep}{new.day:0{len(y or '01')}d}"

    def _textual_date(self, text: str) -> str:
        words = re.findall(r"[^\W\d_]+", text.lower())
        month = next((self.months[w] for w in words if w in self.months), None)
        day = re.search(r"\b(\d{1,2})(?:st|nd|rd|th)?\b", text)
        year = re.search(r"\b(19|20)\d{2}\b", text)
        if month is None or day is None:
            return "[DATE]"
        try:
            new = date(int(year.group()) if year else 2001, month, int(day.group(1))) + self.shift
        except ValueError:
            return "[DATE]"
        names = self.month_names
        mname = _case_like(text.split()[0] if text[0].isalpha() else "x", names[new.month].title())
        if self.lang == "en":
            out = f"{mname} {new.day}"
            return out + (f", {new.year}" if year else "")
        out = f"{new.day} de {names[new.month]}"
        return out + (f" de {new.year}" if year else "")

    def replace(self, original: str, kind: str) -> str:
        """The surrogate for one detected identifier of type ``kind``."""
        if kind == "NAME":
            return self._name(original)
        if kind == "DATE":
            return self.date(original)
        if kind == "AGE":
            return re.sub(r"\d+", "90+", original, count=1)
        if kind == "YEAR":
            return original
        if kind == "ZIP":
            digits = re.sub(r"\D", "", original)[:3]
            return "000" if digits in SMALL_ZIP3 else digits
        if kind == "EMAIL":
            return f"user{self._int('email', original) % 100000:05d}@example.org"
        if kind == "URL":
            return f"https://example.org/{self._int('url', original) % 100000:05d}"
        if kind == "IP":
            d = self._digest("ip", original)
            return f"10.{d[0]}.{d[1]}.{d[2]}"
        if kind in ("HOSPITAL", "ORG"):
            surname = self._pick("place", original, name_lists(self.lang).surnames)
            return _HOSPITAL[self.lang].format(surname) if kind == "HOSPITAL" else surname
        if kind == "LOCATION":
            if original in _state_codes():
                return self._pick("state", original, _state_codes())
            if any(ch.isdigit() for ch in original):
                street = self._pick("street", original, name_lists(self.lang).surnames)
                number = self._int("number", original) % 9000 + 100
                return _STREET[self.lang].format(number=number, street=street)
            cities = tuple(rules(self.lang)["cities"])
            return _case_like(original, self._pick("city", original, cities))
        return self._digits(kind, original)


@cache
def _state_codes() -> tuple[str, ...]:
    """Two-letter US state codes (the surrogate of an address's state is another code)."""
    return tuple(w for w in _read_list("en", "states.txt") if len(w) == 2 and w.isupper())
