"""CSV and JSONL writers for one site, following docs/FORMATS.md byte for byte."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mindcommons.records import RECORD_TYPES, DatasetRecord, Record
from mindcommons.synth.site import SiteData

CSV_FILES = ("participants", "documents", "measures", "signals", "outcomes")


def csv_cell(value: Any) -> str:
    """One JSON-mode field value as CSV text (lists joined with ``;``)."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return str(value)


def csv_text(records: list[Record], record_type: type[BaseModel]) -> str:
    """A CSV file (header = the record's field names) as text with ``\\n`` line ends."""
    columns = list(record_type.model_fields)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for record in records:
        data = record.model_dump(mode="json")
        writer.writerow([csv_cell(data[c]) for c in columns])
    return buffer.getvalue()


def dataset_json(dataset: DatasetRecord) -> str:
    return json.dumps(dataset.model_dump(mode="json"), ensure_ascii=False, indent=2) + "\n"


def write_csv(site: SiteData, folder: Path) -> list[Path]:
    """``participants.csv`` ... ``outcomes.csv`` plus ``dataset.json`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for (kind, records), stem in zip(site.by_type().items(), CSV_FILES, strict=True):
        path = folder / f"{stem}.csv"
        path.write_text(csv_text(records, RECORD_TYPES[kind]), encoding="utf-8", newline="")
        written.append(path)
    path = folder / "dataset.json"
    path.write_text(dataset_json(site.dataset), encoding="utf-8")
    written.append(path)
    return written


def jsonl_text(site: SiteData) -> str:
    """Every record of the site, one JSON object per line, ``dataset`` first."""
    lines = [
        json.dumps({"type": kind, **record.model_dump(mode="json")}, ensure_ascii=False)
        for kind, record in site.records()
    ]
    return "\n".join(lines) + "\n"


def write_jsonl(site: SiteData, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "records.jsonl"
    path.write_text(jsonl_text(site), encoding="utf-8")
    return [path]
