"""Country crisis resources: loading, staleness warnings, and lookup (``resources_for``)."""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from importlib import resources as pkg
from pathlib import Path
from typing import Any

from mindcommons.errors import InputError

FALLBACK = "INTL"
DEFAULT_MAX_AGE_DAYS = 365
_BUILTIN = "safety/data/resources.json"


@dataclass(frozen=True)
class Resource:
    """One crisis line, health line, emergency number or directory."""

    country: str
    name: str
    number: str | None
    kind: str  # crisis_line | text_line | health_line | emergency | directory
    languages: tuple[str, ...]
    hours: str | None
    url: str | None
    verified: bool
    last_verified: date | None
    source: str
    notes: str = ""

    @property
    def digits(self) -> str:
        """The number with only its digits (and a leading '*'), for matching in text."""
        if not self.number:
            return ""
        star = "*" if self.number.strip().startswith("*") else ""
        return star + re.sub(r"\D", "", self.number)

    def label(self) -> str:
        """How a message names it: 'Samaritans: 116 123'."""
        target = self.number or self.url or ""
        return f"{self.name}: {target}" if target else self.name


@dataclass(frozen=True)
class StaleResource:
    """The structured content of a staleness warning."""

    country: str
    name: str
    number: str | None
    last_verified: date
    age_days: int
    max_age_days: int


class StaleResourceWarning(UserWarning):
    """A served resource was last verified longer ago than allowed; ``.record`` holds why."""

    def __init__(self, record: StaleResource) -> None:
        self.record = record
        super().__init__(
            f"crisis resource {record.country} '{record.name}' ({record.number}) was last "
            f"verified {record.last_verified} ({record.age_days} days ago, limit "
            f"{record.max_age_days}); re-verify it against its source"
        )


@dataclass(frozen=True)
class ResourceBook:
    """All resources of one file, with the stale ones listed."""

    entries: tuple[Resource, ...]
    stale: tuple[StaleResource, ...] = field(default=())
    path: str = _BUILTIN

    def countries(self) -> list[str]:
        """Countries with at least one entry (the fallback excluded)."""
        return sorted({r.country for r in self.entries if r.country != FALLBACK})


def _parse(raw: dict[str, Any], where: str, index: int) -> Resource:
    def need(key: str) -> Any:
        if key not in raw:
            raise InputError("resource lacks a key", file=where, record=index, field=key)
        return raw[key]

    number, url = raw.get("number"), raw.get("url")
    if not number and not url:
        raise InputError(
            "resource has neither number nor url", file=where, record=index, field="number"
        )
    verified = bool(need("verified"))
    stamp = raw.get("last_verified")
    try:
        last = date.fromisoformat(stamp) if stamp else None
    except ValueError:
        raise InputError(
            f"bad date {stamp!r}",
            file=where,
            record=index,
            field="last_verified",
            expected="YYYY-MM-DD",
        ) from None
    if verified and last is None:
        raise InputError(
            "verified resource without a date",
            file=where,
            record=index,
            field="last_verified",
            expected="the date it was last verified",
        )
    return Resource(
        country=str(need("country")).upper(),
        name=str(need("name")),
        number=str(number) if number else None,
        kind=str(need("kind")),
        languages=tuple(need("languages")),
        hours=raw.get("hours"),
        url=url,
        verified=verified,
        last_verified=last,
        source=str(need("source")),
        notes=str(raw.get("notes", "")),
    )


def load_resources(
    path: str | Path | None = None,
    *,
    today: date | None = None,
    max_age_days: int = DEFAULT_MAX_AGE_DAYS,
) -> ResourceBook:
    """Read a resource file (the built-in one by default) and warn about stale entries.

    Each entry whose ``last_verified`` is older than ``max_age_days`` before ``today``
    yields a ``StaleResourceWarning`` and is listed in ``ResourceBook.stale``.
    """
    if path is None:
        text = (pkg.files("mindcommons.safety") / "data" / "resources.json").read_text("utf-8")
        where = _BUILTIN
    else:
        where = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as err:
            raise InputError(f"cannot read: {err.strerror}", file=where) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"not JSON: {err.msg}", file=where, record=err.lineno) from None
    entries = tuple(_parse(r, where, i) for i, r in enumerate(data.get("resources", []), 1))
    now = today or date.today()
    stale: list[StaleResource] = []
    for r in entries:
        if r.last_verified is not None and (now - r.last_verified).days > max_age_days:
            rec = StaleResource(
                r.country,
                r.name,
                r.number,
                r.last_verified,
                (now - r.last_verified).days,
                max_age_days,
            )
            stale.append(rec)
            warnings.warn(StaleResourceWarning(rec), stacklevel=2)
    return ResourceBook(entries=entries, stale=tuple(stale), path=where)


@cache
def builtin_book() -> ResourceBook:
    """The resource file shipped with the package (loaded once)."""
    return load_resources()


def resources_for(
    country: str,
    language: str | None = None,
    *,
    allow_unverified: bool = False,
    book: ResourceBook | None = None,
) -> list[Resource]:
    """Resources for an ISO country code, best first; the international fallback if none.

    Unverified entries are left out unless ``allow_unverified``. Crisis lines come
    before emergency numbers; within a kind, lines in ``language`` come first.
    """
    book = book or builtin_book()
    code = country.strip().upper()
    usable = [r for r in book.entries if allow_unverified or r.verified]
    chosen = [r for r in usable if r.country == code]
    if not chosen:
        chosen = [r for r in usable if r.country == FALLBACK]
    order = {"crisis_line": 0, "text_line": 1, "health_line": 2, "emergency": 3, "directory": 4}
    return sorted(
        chosen,
        key=lambda r: (order.get(r.kind, 5), language is not None and language not in r.languages),
    )


def emergency_for(country: str, *, book: ResourceBook | None = None) -> Resource:
    """The emergency number to name in an urgent message (the fallback's 112 if unknown)."""
    found = [r for r in resources_for(country, book=book) if r.kind == "emergency"]
    if not found:
        found = [r for r in resources_for(FALLBACK, book=book) if r.kind == "emergency"]
    return found[0]
