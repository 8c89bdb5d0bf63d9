"""``ingest_path``: parse and validate every file, run the de-id stage, store one batch."""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mindcommons.errors import InputError
from mindcommons.governance import EventKind, record_event
from mindcommons.ingest.base import FORMATS, Issues, Locator, ParsedRecord, build, format_for
from mindcommons.ingest.deid import DEFAULT_STAGES, DeidContext, DocKey, run_stages
from mindcommons.ingest.text import read_text
from mindcommons.ingest.validate import check_measure, check_references, dedupe
from mindcommons.policy import ensure_site_policy
from mindcommons.records import DatasetRecord, DocumentRecord, MeasureRecord, Record
from mindcommons.repository import SiteRepository
from mindcommons.settings import Settings, load_settings, validate_site_name

DATASET_FILE = "dataset.json"
REVIEW_FRACTION = 0.05  # share of de-identified documents per batch sent to human review
Progress = Callable[[int, int], None]


@dataclass
class IngestReport:
    """What one ``ingest_path`` call read and stored."""

    site: str
    dataset: str
    files: list[str]
    inserted: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)
    records: int = 0
    deidentified: int = 0
    review_queued: int = 0
    seconds: float = 0.0

    @property
    def total_inserted(self) -> int:
        return sum(self.inserted.values())


def input_files(path: Path) -> list[Path]:
    """The files of a batch: ``path`` itself, or the readable files directly in the folder."""
    if not path.exists():
        raise InputError("no such file or folder", file=str(path))
    if path.is_file():
        if path.name != DATASET_FILE and format_for(path) is None:
            raise InputError(
                "unknown input format",
                file=str(path),
                expected="a file ending with " + ", ".join(_suffixes()),
            )
        return [path]
    files = [
        p
        for p in sorted(path.iterdir())
        if p.is_file() and (p.name == DATASET_FILE or format_for(p) is not None)
    ]
    if not [p for p in files if p.name != DATASET_FILE]:
        subdirs = sorted(p.name for p in path.iterdir() if p.is_dir())
        hint = f"; it has sub-folders ({', '.join(subdirs)}): ingest one of them" if subdirs else ""
        raise InputError(
            f"the folder holds no input files{hint}",
            file=str(path),
            expected="files ending with " + ", ".join(_suffixes()),
        )
    return files


def _suffixes() -> list[str]:
    return sorted({s for name in FORMATS for s in FORMATS.get(name).suffixes})


def read_dataset(path: Path) -> DatasetRecord:
    """A ``dataset.json`` file as a DatasetRecord."""
    where = Locator(file=str(path), line=1)
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise InputError(f"broken JSON: {exc.msg}", file=str(path), record=exc.lineno) from None
    if not isinstance(data, dict):
        raise where.error("not a JSON object", expected="a DatasetRecord as a JSON object")
    data.pop("type", None)
    record = build(DatasetRecord, data, Locator(file=str(path)))
    assert isinstance(record, DatasetRecord)
    return record


def parse_files(
    files: Sequence[Path], issues: Issues, progress: Progress | None = None, total: int = 0
) -> list[ParsedRecord]:
    """Every record of every file; problems go to ``issues``."""
    parsed: list[ParsedRecord] = []
    for done, path in enumerate(files, start=1):
        try:
            if path.name == DATASET_FILE:
                parsed.append((Locator(file=str(path)), read_dataset(path)))
            else:
                fmt = format_for(path)
                assert fmt is not None
                parsed.extend(fmt.parse(path, issues))
        except InputError as err:
            issues.add(err)
        if progress is not None:
            progress(done, total)
    return parsed


def choose_dataset(
    parsed: Sequence[ParsedRecord], name: str | None, default: str, issues: Issues
) -> DatasetRecord:
    """The batch's one DatasetRecord (``name`` overrides its name; defaults when absent)."""
    found = [(w, r) for w, r in parsed if isinstance(r, DatasetRecord)]
    chosen: DatasetRecord | None = None
    for where, record in found:
        if chosen is None:
            chosen = record
        elif record != chosen:
            issues.add(
                where.error(
                    f"a second, different dataset description ('{record.name}')",
                    field="name",
                    expected=f"one dataset per batch ('{chosen.name}')",
                )
            )
    if chosen is None:
        return DatasetRecord(name=name or default)
    return chosen.model_copy(update={"name": name}) if name else chosen


def prepare(
    parsed: Sequence[ParsedRecord],
    issues: Issues,
    stages: Sequence[str],
    context: DeidContext | None = None,
) -> list[ParsedRecord]:
    """Measures checked and normalised, documents through the de-id stages, repeats dropped."""
    ready: list[ParsedRecord] = []
    for where, record in parsed:
        if isinstance(record, DatasetRecord):
            continue
        try:
            if isinstance(record, MeasureRecord):
                record = check_measure(record, where)
            elif isinstance(record, DocumentRecord):
                record = run_stages(record, where, stages, context)
        except InputError as err:
            issues.add(err)
            continue
        ready.append((where, record))
    return dedupe(ready, issues)


def review_sample(keys: Sequence[DocKey], fraction: float, seed: int) -> list[DocKey]:
    """A seeded sample of ``fraction`` of ``keys`` (at least one when any), sorted."""
    if not keys or fraction <= 0:
        return []
    ordered = sorted(set(keys))
    size = min(len(ordered), max(1, math.ceil(fraction * len(ordered))))
    return sorted(random.Random(f"mindcommons-review:{seed}").sample(ordered, size))


def ingest_path(
    path: Path,
    site: str,
    *,
    settings: Settings | None = None,
    repo: SiteRepository | None = None,
    dataset: str | None = None,
    progress: Progress | None = None,
    deid_stages: Sequence[str] = DEFAULT_STAGES,
    secret: bytes | None = None,
    review_fraction: float = REVIEW_FRACTION,
    review_seed: int = 0,
) -> IngestReport:
    """Ingest a file or a folder (one batch) into ``site``'s repository, all or nothing.

    Every record is parsed and validated first; the first problems (up to 20) are raised
    together as one InputError whose first line names file, line or record, and field.
    Only a batch without problems reaches the repository, in one ``store_batch`` call.

    Raw documents are de-identified by ``deid_stages`` (default: pseudonymise with the
    site's secret ``secret`` or ``<site folder>/deid.key``, then refuse anything still raw);
    each keeps its de-identification record, and a seeded sample (``review_fraction``, at
    least one) of them goes to the repository's review queue.
    """
    started = time.perf_counter()
    validate_site_name(site)
    path = Path(path)
    files = input_files(path)
    total = len(files) + 1
    issues = Issues()
    parsed = parse_files(files, issues, progress, total)
    chosen = choose_dataset(parsed, dataset, site, issues)
    context = DeidContext(secret=secret, secret_dir=(settings or load_settings()).site_dir(site))
    ready = prepare(parsed, issues, deid_stages, context)
    issues.raise_if_any()

    own = repo is None
    repository = repo or SiteRepository.for_site(settings or load_settings(), site)
    try:
        known = lambda: repository.participant_ids(chosen.name)  # noqa: E731
        check_references(ready, known, site, issues)
        issues.raise_if_any()
        records: list[Record] = [r for _, r in ready]
        result = repository.store_batch(
            site,
            chosen,
            records,
            source=str(path),
            deid_records=context.records,
            review=review_sample(list(context.records), review_fraction, review_seed),
        )
    finally:
        if own:
            repository.close()
    if own:  # a site created here gets its steward's policy file with safe defaults
        site_dir = (settings or load_settings()).site_dir(site)
        ensure_site_policy(site_dir)
        record_event(
            site_dir,
            EventKind.INGEST,
            subject=f"dataset:{chosen.name}",
            details={
                "files": len(files),
                "inserted": dict(result.inserted),
                "unchanged": dict(result.unchanged),
                "deid_stages": list(deid_stages),
            },
        )
    if progress is not None:
        progress(total, total)
    return IngestReport(
        site=site,
        dataset=chosen.name,
        files=[str(f) for f in files],
        inserted=dict(result.inserted),
        unchanged=dict(result.unchanged),
        records=len(records),
        deidentified=len(context.records),
        review_queued=result.review_queued,
        seconds=time.perf_counter() - started,
    )
