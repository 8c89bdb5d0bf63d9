"""Checks across records: measures against their instrument, references, duplicates."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from mindcommons.errors import ConfigError
from mindcommons.ingest.base import Issues, Locator, ParsedRecord
from mindcommons.instruments import get_instrument
from mindcommons.records import (
    DatasetRecord,
    DocumentRecord,
    MeasureRecord,
    ParticipantRecord,
)


def check_measure(record: MeasureRecord, where: Locator) -> MeasureRecord:
    """The measure with its canonical instrument name and its total; InputError when invalid."""
    try:
        inst = get_instrument(record.instrument)
    except ConfigError as exc:
        known = str(exc).split("known: ", 1)[-1]
        raise where.error(
            f"unknown instrument '{record.instrument}'", field="instrument", expected=known
        ) from None
    n = len(inst.items)
    if len(record.items) != n:
        raise where.error(
            f"{inst.name} has {n} items but {len(record.items)} answers were given",
            field="items",
            expected=f"{n} answers",
        )
    lo, hi = inst.min_answer, inst.max_answer
    for i, value in enumerate(record.items):
        if not lo <= value <= hi:
            item = inst.items[i]
            raise where.error(
                f"answer {value} to {inst.name} item {item.number} ({item.text!r}) is out of range",
                field=f"items[{i}]",
                expected=f"{lo}-{hi}",
            )
    total = sum(record.items)
    if record.total is not None and record.total != total:
        raise where.error(
            f"the given total {record.total} is not the sum of the answers",
            field="total",
            expected=str(total),
        )
    if record.instrument == inst.name and record.total == total:
        return record
    return record.model_copy(update={"instrument": inst.name, "total": total})


def _key(record: Any) -> tuple[str, ...] | None:
    """Natural key of records that must not appear twice with different content."""
    if isinstance(record, ParticipantRecord):
        return ("participant", record.participant_id)
    if isinstance(record, DocumentRecord):
        return ("document", record.document_id)
    if isinstance(record, MeasureRecord):
        return ("measure", record.participant_id, record.instrument, record.date.isoformat())
    return None


def dedupe(parsed: Iterable[ParsedRecord], issues: Issues) -> list[ParsedRecord]:
    """Drop exact repeats; report two records with one natural key but different content."""
    out: list[ParsedRecord] = []
    seen: set[str] = set()
    keyed: dict[tuple[str, ...], tuple[Locator, str]] = {}
    for where, record in parsed:
        blob = type(record).__name__ + record.model_dump_json()
        if blob in seen:
            continue
        seen.add(blob)
        key = _key(record)
        if key is not None:
            if key in keyed:
                first, _ = keyed[key]
                issues.add(
                    where.error(
                        f"{key[0]} {' '.join(key[1:])} appears twice with different content "
                        f"(first at {first.file}, {_where(first)})",
                        field=f"{key[0]}_id" if key[0] != "measure" else "date",
                        expected="one record per natural key",
                    )
                )
                continue
            keyed[key] = (where, blob)
        out.append((where, record))
    return out


def _where(loc: Locator) -> str:
    rec = loc.record
    return f"line {rec}" if isinstance(rec, int) else f"record {rec}"


def check_references(
    parsed: Iterable[ParsedRecord],
    known: Callable[[], set[str]],
    site: str,
    issues: Issues,
) -> None:
    """Every record naming a participant must name one in the batch or the repository."""
    in_batch = {r.participant_id for _, r in parsed if isinstance(r, ParticipantRecord)}
    stored: set[str] | None = None
    for where, record in parsed:
        if isinstance(record, ParticipantRecord | DatasetRecord):
            continue
        pid = record.participant_id
        if pid in in_batch:
            continue
        if stored is None:
            stored = known()
        if pid not in stored:
            kind = type(record).__name__.removesuffix("Record").lower()
            issues.add(
                where.error(
                    f"{kind} refers to unknown participant '{pid}'",
                    field="participant_id",
                    expected=f"a participant in this batch or already stored at site '{site}'",
                )
            )
