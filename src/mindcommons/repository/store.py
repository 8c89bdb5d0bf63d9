"""Store one batch of canonical records in one transaction, idempotently, all-or-nothing."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from mindcommons.errors import InputError
from mindcommons.records import (
    DatasetRecord,
    DocumentRecord,
    MeasureRecord,
    OutcomeRecord,
    ParticipantRecord,
    Record,
    SignalRecord,
)
from mindcommons.repository.crypto import Keyring, document_aad
from mindcommons.repository.models import (
    Base,
    Dataset,
    Document,
    IngestBatch,
    Measure,
    Outcome,
    Participant,
    ReviewItem,
    Signal,
    Site,
)

CHUNK = 500  # bound parameters per IN (...) lookup
T = TypeVar("T")
DocKey = tuple[str, str]  # (participant_id, document_id)

PARTICIPANT_FIELDS = (
    "age_band",
    "gender",
    "ethnicity_local",
    "ethnicity_category",
    "country",
    "primary_language",
)
DATASET_FIELDS = tuple(f for f in DatasetRecord.model_fields if f != "name")
CHILD_TYPES = ("document", "measure", "signal", "outcome")


@dataclass
class BatchResult:
    """Rows written by one ``store_batch`` call, and rows already stored identically."""

    inserted: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)
    batch_id: int | None = None
    review_queued: int = 0

    @property
    def total_inserted(self) -> int:
        return sum(self.inserted.values())


@dataclass(frozen=True)
class _ChildSpec:
    """How one participant-owned record type maps onto its table."""

    model: type[Base]
    key: tuple[str, ...]  # natural key columns besides participant_pk
    content: tuple[str, ...]  # columns compared on re-store
    row: Callable[[Any], dict[str, Any]]
    label: Callable[[Any], str]


def naive_utc(value: dt.datetime) -> dt.datetime:
    """Datetimes are stored as naive UTC so SQLite and PostgreSQL agree."""
    if value.tzinfo is None:
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def _document_spec(
    keyring: Keyring,
    dataset_name: str,
    deid_records: Mapping[DocKey, Mapping[str, Any]] | None,
) -> _ChildSpec:
    """Documents are stored encrypted; their content hash is an HMAC under the keyring."""

    def row(r: DocumentRecord) -> dict[str, Any]:
        aad = document_aad(dataset_name, r.participant_id, r.document_id)
        key_id, blob = keyring.encrypt(r.text, aad)
        out = {
            "document_id": r.document_id,
            "kind": r.kind,
            "language": r.language,
            "date": r.date,
            "text": blob,
            "text_key_id": key_id,
            "content_hash": keyring.content_hash(r.text),
            "deid_status": r.deid_status,
        }
        if deid_records:
            record = deid_records.get((r.participant_id, r.document_id))
            out["deid_record"] = dict(record) if record is not None else None
        return out

    return _ChildSpec(
        Document,
        ("document_id",),
        ("kind", "language", "date", "content_hash", "deid_status"),
        row,
        lambda r: f"document {r.document_id} (participant {r.participant_id})",
    )


def _measure_row(r: MeasureRecord) -> dict[str, Any]:
    total = r.total if r.total is not None else sum(r.items)
    return {"instrument": r.instrument, "date": r.date, "items": list(r.items), "total": total}


def _signal_row(r: SignalRecord) -> dict[str, Any]:
    return {"name": r.name, "unit": r.unit, "value": r.value, "time": naive_utc(r.time)}


def _outcome_row(r: OutcomeRecord) -> dict[str, Any]:
    return {"name": r.name, "value": r.value, "date": r.date}


# Documents need the keyring: their spec is built per batch by ``_document_spec``.
CHILDREN: dict[str, _ChildSpec] = {
    "measure": _ChildSpec(
        Measure,
        ("instrument", "date"),
        ("items", "total"),
        _measure_row,
        lambda r: f"measure {r.instrument} {r.date} (participant {r.participant_id})",
    ),
    "signal": _ChildSpec(
        Signal,
        ("name", "time"),
        ("unit", "value"),
        _signal_row,
        lambda r: f"signal {r.name} {r.time.isoformat()} (participant {r.participant_id})",
    ),
    "outcome": _ChildSpec(
        Outcome,
        ("name", "date"),
        ("value",),
        _outcome_row,
        lambda r: f"outcome {r.name} {r.date} (participant {r.participant_id})",
    ),
}
_CHILD_RECORD = {
    DocumentRecord: "document",
    MeasureRecord: "measure",
    SignalRecord: "signal",
    OutcomeRecord: "outcome",
}


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _conflict(label: str, column: str, stored: object, new: object, *, where: str) -> InputError:
    """Same natural key, different content. Document text is never echoed, only said to differ."""
    if column == "content_hash":
        return InputError(f"conflicts with {where}: the text differs", record=label, field="text")
    there = "the stored one" if where == "stored data" else "the other one"
    detail = f"conflicts with {where}: {column} is {new!r} here but {stored!r} in {there}"
    return InputError(
        detail, record=label, field=column, expected="identical content for the same record"
    )


def _first_difference(
    columns: Iterable[str], stored: dict[str, Any], new: dict[str, Any]
) -> str | None:
    for col in columns:
        if stored[col] != new[col]:
            return col
    return None


def batch_hash(dataset: DatasetRecord, records: Sequence[Record], key: bytes) -> str:
    """HMAC-SHA256 under ``key`` over the batch's records, independent of their order.

    Keyed, because the records hold document text: a plain hash would let anyone with
    the database confirm a guessed batch.
    """
    lines = sorted(f"{type(r).__name__}:{r.model_dump_json()}" for r in records)
    digest = hmac.new(key, f"dataset:{dataset.model_dump_json()}\n".encode(), hashlib.sha256)
    for line in lines:
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()


def store(
    session: Session,
    site: str,
    dataset: DatasetRecord,
    records: Sequence[Record],
    *,
    source: str,
    keyring: Keyring,
    deid_records: Mapping[DocKey, Mapping[str, Any]] | None = None,
    review: Sequence[DocKey] = (),
) -> BatchResult:
    """Write the batch through ``session``; the caller commits (or rolls back on error)."""
    result = BatchResult(
        inserted={k: 0 for k in ("site", "dataset", "participant", *CHILD_TYPES)},
        unchanged={k: 0 for k in ("site", "dataset", "participant", *CHILD_TYPES)},
    )
    participants: list[ParticipantRecord] = []
    children: dict[str, list[Any]] = {k: [] for k in CHILD_TYPES}
    for rec in records:
        if isinstance(rec, ParticipantRecord):
            participants.append(rec)
        elif isinstance(rec, DatasetRecord):
            if rec != dataset:
                raise InputError(
                    "a batch describes one dataset; this one differs from the batch's",
                    record=f"dataset {rec.name}",
                    expected=f"dataset '{dataset.name}' as given for the batch",
                )
        else:
            children[_CHILD_RECORD[type(rec)]].append(rec)

    site_id = _ensure_site(session, site, result)
    dataset_id = _ensure_dataset(session, site_id, dataset, result)
    pk_by_pid = _store_participants(session, dataset_id, participants, result)
    needed = sorted({r.participant_id for recs in children.values() for r in recs} - set(pk_by_pid))
    pk_by_pid.update(_participant_pks(session, dataset_id, needed))
    specs = {**CHILDREN, "document": _document_spec(keyring, dataset.name, deid_records)}
    for kind in CHILD_TYPES:
        _store_children(session, specs[kind], kind, children[kind], pk_by_pid, dataset.name, result)

    batch = IngestBatch(
        dataset_id=dataset_id,
        created_at=naive_utc(dt.datetime.now(dt.UTC)),
        source=source,
        counts={"inserted": result.inserted, "unchanged": result.unchanged},
        batch_hash=batch_hash(dataset, records, keyring.hash_key),
    )
    session.add(batch)
    session.flush()
    result.batch_id = batch.id
    result.review_queued = _queue_for_review(session, review, pk_by_pid, batch.id)
    return result


def _queue_for_review(
    session: Session, review: Sequence[DocKey], pk_by_pid: dict[str, int], batch_id: int
) -> int:
    """Add a pending review item for each document in ``review`` that has none yet."""
    wanted = {(pk_by_pid[pid], doc_id) for pid, doc_id in review if pid in pk_by_pid}
    if not wanted:
        return 0
    found: set[int] = set()
    for part in chunks(sorted({pk for pk, _ in wanted})):
        stmt = select(Document.id, Document.participant_pk, Document.document_id).where(
            Document.participant_pk.in_(part)
        )
        found.update(i for i, pk, d in session.execute(stmt) if (pk, d) in wanted)
    queued: set[int] = set()
    for part in chunks(sorted(found)):
        stmt2 = select(ReviewItem.document_pk).where(ReviewItem.document_pk.in_(part))
        queued.update(session.scalars(stmt2))
    now = naive_utc(dt.datetime.now(dt.UTC))
    rows = [
        {"document_pk": pk, "batch_id": batch_id, "status": "pending", "created_at": now}
        for pk in sorted(found - queued)
    ]
    if rows:
        session.execute(insert(ReviewItem), rows)
    return len(rows)


def _ensure_site(session: Session, site: str, result: BatchResult) -> int:
    site_id = session.scalar(select(Site.id).where(Site.name == site))
    if site_id is not None:
        result.unchanged["site"] += 1
        return site_id
    row = Site(name=site)
    session.add(row)
    session.flush()
    result.inserted["site"] += 1
    return row.id


def _ensure_dataset(session: Session, site_id: int, ds: DatasetRecord, result: BatchResult) -> int:
    stored = session.scalar(
        select(Dataset).where(Dataset.site_id == site_id, Dataset.name == ds.name)
    )
    new = ds.model_dump(exclude={"name"})
    if stored is None:
        row = Dataset(site_id=site_id, name=ds.name, **new)
        session.add(row)
        session.flush()
        result.inserted["dataset"] += 1
        return row.id
    # A bare reference (only the name, every other field default) uses the stored description.
    if ds != DatasetRecord(name=ds.name):
        old = {f: getattr(stored, f) for f in DATASET_FIELDS}
        col = _first_difference(DATASET_FIELDS, old, new)
        if col is not None:
            raise _conflict(f"dataset {ds.name}", col, old[col], new[col], where="stored data")
    result.unchanged["dataset"] += 1
    return stored.id


def _participant_pks(session: Session, dataset_id: int, pids: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for part in chunks(pids):
        stmt = select(Participant.participant_id, Participant.id).where(
            Participant.dataset_id == dataset_id, Participant.participant_id.in_(part)
        )
        found.update({pid: pk for pid, pk in session.execute(stmt)})
    return found


def _store_participants(
    session: Session, dataset_id: int, recs: Sequence[ParticipantRecord], result: BatchResult
) -> dict[str, int]:
    batch: dict[str, dict[str, Any]] = {}
    for rec in recs:
        row = rec.model_dump(include=set(PARTICIPANT_FIELDS))
        label = f"participant {rec.participant_id}"
        if rec.participant_id in batch:
            col = _first_difference(PARTICIPANT_FIELDS, batch[rec.participant_id], row)
            if col is not None:
                where = "another record in this batch"
                raise _conflict(label, col, batch[rec.participant_id][col], row[col], where=where)
            result.unchanged["participant"] += 1
            continue
        batch[rec.participant_id] = row
    stored: dict[str, dict[str, Any]] = {}
    cols = [getattr(Participant, c) for c in PARTICIPANT_FIELDS]
    for part in chunks(sorted(batch)):
        stmt = select(Participant.participant_id, *cols).where(
            Participant.dataset_id == dataset_id, Participant.participant_id.in_(part)
        )
        for pid, *values in session.execute(stmt):
            stored[pid] = dict(zip(PARTICIPANT_FIELDS, values, strict=True))
    new_rows = []
    for pid, row in batch.items():
        if pid in stored:
            col = _first_difference(PARTICIPANT_FIELDS, stored[pid], row)
            if col is not None:
                label = f"participant {pid}"
                raise _conflict(label, col, stored[pid][col], row[col], where="stored data")
            result.unchanged["participant"] += 1
        else:
            new_rows.append({"dataset_id": dataset_id, "participant_id": pid, **row})
    if new_rows:
        session.execute(insert(Participant), new_rows)
        result.inserted["participant"] += len(new_rows)
    return _participant_pks(session, dataset_id, sorted(batch))


def _store_children(
    session: Session,
    spec: _ChildSpec,
    kind: str,
    recs: Sequence[Any],
    pk_by_pid: dict[str, int],
    dataset_name: str,
    result: BatchResult,
) -> None:
    if not recs:
        return
    model: Any = spec.model
    batch: dict[tuple[Any, ...], tuple[str, dict[str, Any]]] = {}
    for rec in recs:
        label = spec.label(rec)
        pk = pk_by_pid.get(rec.participant_id)
        if pk is None:
            raise InputError(
                f"participant '{rec.participant_id}' is neither in this batch nor stored "
                f"in dataset '{dataset_name}'",
                record=label,
                field="participant_id",
                expected="a participant record for every participant referenced",
            )
        row = {"participant_pk": pk, **spec.row(rec)}
        key = (pk, *(row[k] for k in spec.key))
        if key in batch:
            col = _first_difference(spec.content, batch[key][1], row)
            if col is not None:
                where = "another record in this batch"
                raise _conflict(label, col, batch[key][1][col], row[col], where=where)
            result.unchanged[kind] += 1
            continue
        batch[key] = (label, row)
    key_cols = [model.participant_pk, *(getattr(model, k) for k in spec.key)]
    content_cols = [getattr(model, c) for c in spec.content]
    stored: dict[tuple[Any, ...], dict[str, Any]] = {}
    pks = sorted({key[0] for key in batch})
    for part in chunks(pks):
        stmt = select(*key_cols, *content_cols).where(model.participant_pk.in_(part))
        width = len(key_cols)
        for values in session.execute(stmt):
            key = tuple(values[:width])
            stored[key] = dict(zip(spec.content, values[width:], strict=True))
    new_rows = []
    for key, (label, row) in batch.items():
        if key in stored:
            col = _first_difference(spec.content, stored[key], row)
            if col is not None:
                raise _conflict(label, col, stored[key][col], row[col], where="stored data")
            result.unchanged[kind] += 1
        else:
            new_rows.append(row)
    for part in chunks(new_rows, 2000):
        session.execute(insert(model), list(part))
    result.inserted[kind] += len(new_rows)
