"""Questionnaire instruments (PHQ-9, GAD-7, ...) held as JSON data, so more need no code."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from mindcommons.errors import ConfigError, InputError

__all__ = [
    "Band",
    "Instrument",
    "InstrumentItem",
    "get_instrument",
    "list_instruments",
    "load_instrument_file",
    "register_instrument_dir",
]


@dataclass(frozen=True)
class InstrumentItem:
    number: int
    loinc: str
    text: str


@dataclass(frozen=True)
class Band:
    min: int
    max: int
    label: str


@dataclass(frozen=True)
class Instrument:
    name: str
    key: str
    loinc_panel: str
    loinc_total: str
    canonical_url: str
    items: tuple[InstrumentItem, ...]
    min_answer: int
    max_answer: int
    answer_loinc: dict[int, str]
    bands: tuple[Band, ...]
    stem: str = ""
    attribution: str = ""

    def total(self, answers: Sequence[int]) -> int:
        self.validate(answers)
        return sum(answers)

    def band_index(self, total: int) -> int:
        for i, band in enumerate(self.bands):
            if band.min <= total <= band.max:
                return i
        raise ValueError(f"{self.name} total {total} is outside {self.min_total}-{self.max_total}")

    def band(self, total: int) -> str:
        return self.bands[self.band_index(total)].label

    @property
    def min_total(self) -> int:
        return self.min_answer * len(self.items)

    @property
    def max_total(self) -> int:
        return self.max_answer * len(self.items)

    def validate(self, answers: Sequence[object]) -> None:
        """Raise ValueError naming the first bad item (1-based) and the allowed range."""
        if len(answers) != len(self.items):
            raise ValueError(
                f"{self.name} needs {len(self.items)} item answers, got {len(answers)}"
            )
        lo, hi = self.min_answer, self.max_answer
        for i, value in enumerate(answers, start=1):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"item {i}: answer {value!r} is not an integer {lo}-{hi}")
            if not lo <= value <= hi:
                raise ValueError(f"item {i}: answer {value} is out of range {lo}-{hi}")

    def item_index(self, link_id: str) -> int:
        """0-based index of an item given its LOINC code or its number ("1".."9")."""
        link = link_id.strip()
        for i, item in enumerate(self.items):
            if link in (item.loinc, str(item.number), f"{self.key}-{item.number}"):
                return i
        raise KeyError(link_id)

    def answer_value(self, code: str) -> int:
        for value, loinc in self.answer_loinc.items():
            if loinc == code:
                return value
        raise KeyError(code)


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def load_instrument_file(path: Path | str, text: str | None = None) -> Instrument:
    """Parse one instrument definition; errors name the file and the field."""
    raw = text if text is not None else Path(path).read_text(encoding="utf-8")
    try:
        data = json.loads(raw)
        answers = sorted(data["answers"], key=lambda a: a["value"])
        return Instrument(
            name=data["name"],
            key=data["key"],
            loinc_panel=data.get("loinc_panel", ""),
            loinc_total=data.get("loinc_total", ""),
            canonical_url=data["canonical_url"],
            items=tuple(
                InstrumentItem(int(i["number"]), str(i.get("loinc", "")), i["text"])
                for i in data["items"]
            ),
            min_answer=int(answers[0]["value"]),
            max_answer=int(answers[-1]["value"]),
            answer_loinc={int(a["value"]): str(a.get("loinc", "")) for a in answers},
            bands=tuple(Band(int(b["min"]), int(b["max"]), b["label"]) for b in data["bands"]),
            stem=data.get("stem", ""),
            attribution=data.get("attribution", ""),
        )
    except json.JSONDecodeError as err:
        raise InputError(err.msg, file=str(path), record=err.lineno) from None
    except (KeyError, IndexError, TypeError, ValueError) as err:
        raise InputError(
            f"instrument definition is incomplete or malformed ({err!r})",
            file=str(path),
            expected="name, key, canonical_url, answers, items, bands",
        ) from None


_extra_dirs: list[Path] = []


def register_instrument_dir(directory: Path) -> None:
    """Make every ``*.json`` in ``directory`` available as an instrument."""
    if directory not in _extra_dirs:
        _extra_dirs.append(directory)
        _all.cache_clear()


@cache
def _all() -> tuple[Instrument, ...]:
    found: list[Instrument] = []
    pkg = resources.files("mindcommons.instruments") / "data"
    for entry in sorted(pkg.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            found.append(load_instrument_file(entry.name, entry.read_text(encoding="utf-8")))
    for directory in _extra_dirs:
        for path in sorted(directory.glob("*.json")):
            found.append(load_instrument_file(path))
    return tuple(found)


def list_instruments() -> list[Instrument]:
    return list(_all())


def _aliases(inst: Instrument) -> Iterable[str]:
    yield _norm(inst.name)
    yield _norm(inst.key)
    if inst.loinc_panel:
        yield _norm(inst.loinc_panel)
    yield _norm(inst.canonical_url)


def get_instrument(name: str) -> Instrument:
    """Look an instrument up by name ("PHQ-9", "phq9"), panel LOINC or canonical URL."""
    wanted = _norm(name.split("|")[0])
    for inst in _all():
        if wanted in set(_aliases(inst)):
            return inst
    known = ", ".join(i.name for i in _all())
    raise ConfigError(f"unknown instrument '{name}'; known: {known}")
