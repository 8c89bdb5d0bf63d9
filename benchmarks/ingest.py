"""Ingest throughput: ``ingest_path`` on synthetic data vs plain SQLAlchemy Core inserts.

Usage: python benchmarks/ingest.py --records N [--format csv|jsonl|fhir] [--pg-url URL]

Prints JSON: records/s through ``ingest_path`` (parse + validate + de-id stage + one
idempotent ``store_batch``) into SQLite and, with ``--pg-url``, PostgreSQL; a baseline
measured in the same run (SQLAlchemy Core ``executemany`` of the same rows into a fresh
database, no parsing, no checks); the ratio; machine info and date.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.engine import make_url

from mindcommons.ingest import Issues, format_for, ingest_path
from mindcommons.ingest.pipeline import input_files
from mindcommons.records import (
    DocumentRecord,
    MeasureRecord,
    OutcomeRecord,
    ParticipantRecord,
    Record,
    SignalRecord,
)
from mindcommons.repository import SiteRepository
from mindcommons.repository.models import (
    Base,
    Dataset,
    Document,
    Measure,
    Outcome,
    Participant,
    Signal,
    Site,
)
from mindcommons.synth import generate

SITE = "site-a"  # the name synth gives its first site


def synth_folder(out: Path, records: int, fmt: str) -> tuple[Path, list[Record]]:
    """Generate one synthetic site big enough for ``records`` records; its folder and records."""
    patients = 20
    while True:
        root = out / f"p{patients}"
        generate(root, sites=1, patients=patients, seed=1)
        folder = root / SITE / fmt
        recs = read_records(folder)
        if len(recs) >= records or patients >= 1_000_000:
            return folder, recs
        patients = int(patients * records / max(len(recs), 1) * 1.05) + 1


def read_records(folder: Path) -> list[Record]:
    issues = Issues()
    out: list[Record] = []
    for path in input_files(folder):
        if path.name == "dataset.json":
            continue
        fmt = format_for(path)
        assert fmt is not None
        out.extend(r for _, r in fmt.parse(path, issues))
    issues.raise_if_any()
    return out


def baseline(url: str, records: list[Record]) -> float:
    """Seconds to insert the same rows with Core executemany into a fresh schema."""
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    participants = [r for r in records if isinstance(r, ParticipantRecord)]
    started = time.perf_counter()
    with engine.begin() as conn:
        site_id = conn.execute(insert(Site).returning(Site.id), {"name": SITE}).scalar_one()
        ds_id = conn.execute(
            insert(Dataset).returning(Dataset.id), {"site_id": site_id, "name": SITE}
        ).scalar_one()
        conn.execute(
            insert(Participant), [{"dataset_id": ds_id, **p.model_dump()} for p in participants]
        )
        pk = {
            pid: id_
            for pid, id_ in conn.execute(select(Participant.participant_id, Participant.id))
        }
        rows: dict[Any, list[dict[str, Any]]] = {Document: [], Measure: [], Signal: [], Outcome: []}
        for r in records:
            if isinstance(r, DocumentRecord):
                digest = hashlib.sha256(r.text.encode()).hexdigest()
                row = r.model_dump(exclude={"participant_id"}) | {"content_hash": digest}
                rows[Document].append({"participant_pk": pk[r.participant_id], **row})
            elif isinstance(r, MeasureRecord):
                row = r.model_dump(exclude={"participant_id"}) | {"total": sum(r.items)}
                rows[Measure].append({"participant_pk": pk[r.participant_id], **row})
            elif isinstance(r, SignalRecord):
                t = r.time.astimezone(dt.UTC).replace(tzinfo=None) if r.time.tzinfo else r.time
                row = r.model_dump(exclude={"participant_id"}) | {"time": t}
                rows[Signal].append({"participant_pk": pk[r.participant_id], **row})
            elif isinstance(r, OutcomeRecord):
                row = r.model_dump(exclude={"participant_id"})
                rows[Outcome].append({"participant_pk": pk[r.participant_id], **row})
        for model, batch in rows.items():
            if batch:
                conn.execute(insert(model), batch)
    seconds = time.perf_counter() - started
    engine.dispose()
    return seconds


def through_ingest(url: str, folder: Path) -> tuple[float, int]:
    """Seconds for ``ingest_path`` into a freshly migrated repository (migration not timed).

    Text is encrypted at rest, so the repository gets a fresh keyring beside the data.
    """
    repo = SiteRepository.open(url, keyring_path=folder.parent / f"{uuid.uuid4().hex}.keys")
    try:
        report = ingest_path(folder, SITE, repo=repo)
    finally:
        repo.close()
    return report.seconds, report.records


@contextmanager
def fresh_pg(base: str) -> Iterator[str]:
    url = make_url(base)
    name = f"mc_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def fresh_sqlite(tmp: Path) -> Iterator[str]:
    path = tmp / f"{uuid.uuid4().hex}.sqlite"
    yield f"sqlite:///{path}"


def measure_backend(name: str, fresh: Any, folder: Path, records: list[Record]) -> dict[str, Any]:
    with fresh() as url:
        ing_s, n = through_ingest(url, folder)
    with fresh() as url:
        base_s = baseline(url, records)
    ing_rate, base_rate = n / ing_s, len(records) / base_s
    return {
        "backend": name,
        "records": n,
        "ingest_seconds": round(ing_s, 3),
        "ingest_records_per_s": round(ing_rate, 1),
        "baseline_seconds": round(base_s, 3),
        "baseline_records_per_s": round(base_rate, 1),
        "ratio_ingest_to_baseline": round(ing_rate / base_rate, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--format", default="csv", choices=["csv", "jsonl", "fhir"])
    parser.add_argument("--pg-url", default=os.environ.get("MINDCOMMONS_TEST_PG_URL", ""))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mc-bench-") as tmpdir:
        tmp = Path(tmpdir)
        folder, records = synth_folder(tmp / "synth", args.records, args.format)
        results = [measure_backend("sqlite", lambda: fresh_sqlite(tmp), folder, records)]
        if args.pg_url:
            results.append(
                measure_backend("postgresql", lambda: fresh_pg(args.pg_url), folder, records)
            )
    counts: dict[str, int] = {}
    for r in records:
        kind = type(r).__name__.removesuffix("Record").lower()
        counts[kind] = counts.get(kind, 0) + 1
    out = {
        "benchmark": "ingest",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "format": args.format,
        "requested_records": args.records,
        "record_mix": counts,
        "results": results,
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
        },
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
