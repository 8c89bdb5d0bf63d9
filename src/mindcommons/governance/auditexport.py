"""Audit-log exports for an external auditor (JSON Lines or CSV, plus a manifest).

``<out>`` holds the entries exactly as hashed; ``<out>.manifest.json`` holds the head
(seq, hash), the export file's SHA-256 and the site's verification summary. An auditor
re-checks the chain without the site key with :func:`verify_export` (or by recomputing
SHA-256 over the canonical JSON described in the manifest).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mindcommons.errors import ConfigError, InputError
from mindcommons.governance.auditentry import HASHED_FIELDS, Entry, canonical_json
from mindcommons.governance.auditstore import StoredRow
from mindcommons.governance.auditverify import VerifyResult, verify_rows

if TYPE_CHECKING:
    from mindcommons.governance.auditlog import AuditLog

EXPORT_FORMAT = "mindcommons-audit-log-export/1"
FORMATS = ("jsonl", "csv")
CSV_COLUMNS = (*HASHED_FIELDS, "hash", "mac")
HASHING = (
    "hash = SHA-256 hex of the UTF-8 JSON of {seq,time,actor,kind,site,subject,details,"
    "prev_hash} with sorted keys and separators (',', ':'), non-ASCII kept; first "
    "prev_hash = 64 zeros; mac = HMAC-SHA256 under the site's key (site only)"
)


def manifest_path(out: Path) -> Path:
    return out.with_name(out.name + ".manifest.json")


def export_log(log: AuditLog, out: Path, fmt: str) -> dict[str, Any]:
    """Write ``log``'s entries to ``out`` in ``fmt`` and the manifest next to it."""
    if fmt not in FORMATS:
        raise ConfigError(f"export format '{fmt}' is not known: use one of {', '.join(FORMATS)}")
    result = log.verify()  # before the copy: the summary describes what the site holds
    head = log.head()
    out.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    digest = hashlib.sha256()
    with out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle) if fmt == "csv" else None
        if writer is not None:
            writer.writerow(CSV_COLUMNS)
        for row in log.store.rows():  # raw rows: a damaged entry is exported as found
            line = _format_row(row, writer is not None)
            handle.write(line)
            digest.update(line.encode("utf-8"))
            count += 1
    if writer is not None:
        digest = hashlib.sha256(out.read_bytes())
    manifest = {
        "format": EXPORT_FORMAT,
        "file": out.name,
        "file_format": fmt,
        "file_sha256": digest.hexdigest(),
        "source": log.store.location,
        "entries": count,
        "head": {"seq": head.get("seq"), "hash": head.get("hash")} if head else None,
        "verification": result.to_json(),
        "hashing": HASHING,
    }
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    manifest_path(out).write_text(text, encoding="utf-8")
    return manifest


def _format_row(row: StoredRow, as_csv: bool) -> str:
    if isinstance(row.data, dict):
        data: dict[str, Any] = row.data
    else:
        data = {"unreadable": row.error or "not a JSON object", "where": row.where}
    if not as_csv:
        return canonical_json(data).decode("utf-8") + "\n"
    buffer = io.StringIO()
    cells = [data.get(name, "") for name in CSV_COLUMNS]
    cells[HASHED_FIELDS.index("details")] = canonical_json(data.get("details", {})).decode()
    csv.writer(buffer).writerow(["" if c is None else c for c in cells])
    return buffer.getvalue()


def read_export(path: Path) -> list[Entry]:
    """The entries of an export (either format); InputError names the bad line."""
    out = []
    for row in _export_rows(Path(path), _format_of(Path(path), None)):
        try:
            if row.data is None:
                raise ValueError(row.error)
            out.append(Entry.from_json(row.data))
        except ValueError as err:
            raise InputError(str(err), file=str(path), record=row.where) from None
    return out


def verify_export(path: Path) -> VerifyResult:
    """Re-check an export against its manifest's head and file hash (no site key needed)."""
    path = Path(path)
    try:
        manifest = json.loads(manifest_path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"manifest unreadable ({err})", file=str(manifest_path(path))) from None
    head = manifest.get("head")
    rows = list(_export_rows(path, _format_of(path, manifest)))
    result = verify_rows(rows, head=head if isinstance(head, dict) else None)
    if hashlib.sha256(path.read_bytes()).hexdigest() != manifest.get("file_sha256"):
        result.problems.append(f"{path.name}: SHA-256 differs from the manifest (changed)")
        result.ok = False
    return result


def _format_of(path: Path, manifest: object) -> str:
    """The export's format: from its manifest when there is one, else from the suffix."""
    if manifest is None and manifest_path(path).exists():
        try:
            manifest = json.loads(manifest_path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            manifest = None
    if isinstance(manifest, dict) and manifest.get("file_format") in FORMATS:
        return str(manifest["file_format"])
    return "csv" if path.suffix.lower() == ".csv" else "jsonl"


def _export_rows(path: Path, fmt: str) -> Iterator[StoredRow]:
    if fmt != "csv":
        from mindcommons.governance.auditstore import JsonlFileStore

        yield from JsonlFileStore(path, head_path=path.with_name(path.name + ".nohead")).rows()
        return
    with path.open(encoding="utf-8", newline="") as handle:
        for number, record in enumerate(csv.DictReader(handle), start=2):
            where = f"line {number}"
            try:
                data: dict[str, Any] = {name: record[name] for name in CSV_COLUMNS}
                data["seq"] = int(record["seq"])
                data["details"] = json.loads(record["details"])
                data["mac"] = record["mac"] or None
            except (KeyError, TypeError, ValueError) as err:
                yield StoredRow(where, None, f"unreadable CSV row ({err})")
                continue
            yield StoredRow(where, data)
