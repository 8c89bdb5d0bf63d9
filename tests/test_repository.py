"""One repository suite, run on SQLite and on a real PostgreSQL (see conftest.repo_url)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event, inspect

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
from mindcommons.repository import SiteRepository, migrate
from mindcommons.repository.models import Base
from mindcommons.settings import Settings

DATASET = DatasetRecord(
    name="clinic-notes",
    description="made up for tests",
    licence="CC0",
    allowed_purposes=["evaluation"],
    languages=["en", "es"],
    collection_start=dt.date(2024, 1, 1),
)
DAY0 = dt.date(2024, 3, 1)
TYPES = ("site", "dataset", "participant", "document", "measure", "signal", "outcome")


def participant(pid: str, **kw: Any) -> ParticipantRecord:
    fields = {"age_band": "25-34", "gender": "female", "country": "GB", "primary_language": "en"}
    return ParticipantRecord(participant_id=pid, **{**fields, **kw})


def document(pid: str, doc_id: str, day: int = 0, **kw: Any) -> DocumentRecord:
    fields: dict[str, Any] = {
        "kind": "clinical_note",
        "language": "en",
        "text": f"Note {doc_id}: sleeping badly, low mood most days.",
        "deid_status": "synthetic",
    }
    return DocumentRecord(
        participant_id=pid, document_id=doc_id, date=DAY0 + dt.timedelta(days=day), **fields | kw
    )


def measure(pid: str, day: int, items: list[int], instrument: str = "PHQ-9") -> MeasureRecord:
    date = DAY0 + dt.timedelta(days=day)
    return MeasureRecord(participant_id=pid, instrument=instrument, date=date, items=items)


def small_batch() -> list[Record]:
    time = dt.datetime(2024, 3, 1, 22, 30, tzinfo=dt.UTC)
    return [
        participant("P1"),
        participant("P2", gender="male", primary_language="es", country="MX"),
        document("P1", "D1"),
        document("P2", "D2", kind="therapy_transcript", language="es"),
        measure("P1", 0, [1, 1, 2, 0, 1, 0, 1, 1, 0]),
        measure("P2", 2, [3, 3, 2, 2, 1, 1, 0, 0, 0]),
        SignalRecord(participant_id="P1", name="sleep_hours", unit="h", value=5.5, time=time),
        OutcomeRecord(participant_id="P2", name="remission", value="no", date=DAY0),
    ]


def test_migrations_reach_head_and_round_trip(repo: SiteRepository) -> None:
    assert migrate.current_revision(repo.engine) == migrate.head_revision()
    with repo.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    migrate.downgrade(repo.engine, "base")
    assert migrate.current_revision(repo.engine) is None
    assert "participant" not in inspect(repo.engine).get_table_names()
    migrate.upgrade(repo.engine)
    assert set(TYPES) <= set(inspect(repo.engine).get_table_names())
    result = repo.store_batch("site-a", DATASET, small_batch(), source="test")
    assert result.inserted["participant"] == 2


def test_store_and_count(repo: SiteRepository) -> None:
    result = repo.store_batch("site-a", DATASET, small_batch(), source="test")
    expected = {"site": 1, "dataset": 1, "participant": 2, "document": 2}
    expected |= {"measure": 2, "signal": 1, "outcome": 1}
    assert result.inserted == expected
    assert sum(result.unchanged.values()) == 0
    assert repo.counts() == expected
    assert repo.participant_ids() == {"P1", "P2"}
    assert repo.participant_ids("clinic-notes") == {"P1", "P2"}
    assert repo.participant_ids("other") == set()


def test_restore_is_idempotent(repo: SiteRepository) -> None:
    batch = small_batch()
    repo.store_batch("site-a", DATASET, batch, source="first")
    before = repo.counts()
    again = repo.store_batch("site-a", DATASET, list(reversed(batch)), source="again")
    assert sum(again.inserted.values()) == 0
    assert again.unchanged == {"site": 1, "dataset": 1} | {
        t: before[t] for t in TYPES if t not in ("site", "dataset")
    }
    assert repo.counts() == before
    grown = repo.store_batch("site-a", DATASET, [*batch, document("P2", "D3")], source="more")
    assert grown.inserted["document"] == 1
    assert grown.unchanged["document"] == 2
    assert repo.counts()["document"] == 3


@pytest.mark.parametrize(
    ("changed", "named"),
    [
        (participant("P1", gender="male"), "participant P1"),
        (document("P1", "D1", text="A different note."), "document D1"),
        (measure("P1", 0, [0, 0, 0, 0, 0, 0, 0, 0, 0]), "measure PHQ-9 2024-03-01"),
        (OutcomeRecord(participant_id="P2", name="remission", value="yes", date=DAY0), "P2"),
    ],
)
def test_conflicting_content_is_refused_and_nothing_written(
    repo: SiteRepository, changed: Record, named: str
) -> None:
    repo.store_batch("site-a", DATASET, small_batch(), source="first")
    before = repo.counts()
    newcomer = participant("P9")
    with pytest.raises(InputError, match="conflicts with stored data") as err:
        repo.store_batch("site-a", DATASET, [newcomer, changed], source="second")
    assert named in str(err.value)
    assert repo.counts() == before
    assert "P9" not in repo.participant_ids()


def test_conflict_inside_one_batch(repo: SiteRepository) -> None:
    batch: list[Record] = [
        participant("P1"),
        document("P1", "D1"),
        document("P1", "D1", text="Other text."),
    ]
    with pytest.raises(InputError, match="another record in this batch"):
        repo.store_batch("site-a", DATASET, batch, source="dup")
    assert repo.counts()["participant"] == 0
    same_twice = repo.store_batch("site-a", DATASET, [*batch[:2], batch[1]], source="dup")
    assert same_twice.inserted["document"] == 1
    assert same_twice.unchanged["document"] == 1


def test_dataset_description_conflict_and_bare_reference(repo: SiteRepository) -> None:
    repo.store_batch("site-a", DATASET, small_batch(), source="first")
    changed = DATASET.model_copy(update={"licence": "proprietary"})
    with pytest.raises(InputError, match="licence"):
        repo.store_batch("site-a", changed, [participant("P5")], source="x")
    bare = DatasetRecord(name=DATASET.name)
    result = repo.store_batch("site-a", bare, [participant("P5")], source="bare")
    assert result.unchanged["dataset"] == 1
    assert repo.counts()["dataset"] == 1
    assert "P5" in repo.participant_ids(DATASET.name)


def test_batch_failing_midway_leaves_counts_unchanged(repo: SiteRepository) -> None:
    repo.store_batch("site-a", DATASET, small_batch(), source="first")
    before = repo.counts()
    # Participants and documents are written before the measure the database refuses.
    too_big = MeasureRecord(
        participant_id="P7", instrument="PHQ-9", date=DAY0, items=[0] * 9, total=10**30
    )
    batch: list[Record] = [participant("P7"), document("P7", "D7"), too_big]
    with pytest.raises(InputError, match="nothing was stored"):
        repo.store_batch("site-a", DATASET, batch, source="bad")
    assert repo.counts() == before
    assert "P7" not in repo.participant_ids()


def test_unknown_participant_is_refused(repo: SiteRepository) -> None:
    with pytest.raises(InputError, match="P404") as err:
        repo.store_batch("site-a", DATASET, [participant("P1"), document("P404", "D1")], source="x")
    assert err.value.field == "participant_id"
    assert repo.counts()["participant"] == 0
    # A participant stored by an earlier batch may be referenced later.
    repo.store_batch("site-a", DATASET, [participant("P404")], source="people")
    result = repo.store_batch("site-a", DATASET, [document("P404", "D1")], source="notes")
    assert result.inserted["document"] == 1


def _bulk(n_participants: int) -> list[Record]:
    records: list[Record] = []
    for i in range(n_participants):
        pid = f"B{i:05d}"
        records += [participant(pid), document(pid, f"{pid}-n1"), measure(pid, 1, [1] * 9)]
        when = dt.datetime(2024, 3, 1, 8) + dt.timedelta(hours=i)
        records.append(SignalRecord(participant_id=pid, name="steps", value=float(i), time=when))
    return records


def test_bulk_store_uses_batched_statements(repo: SiteRepository) -> None:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    records = _bulk(800)  # 3,200 records: lookups and inserts span several chunks
    event.listen(repo.engine, "before_cursor_execute", count)
    try:
        first = repo.store_batch("site-a", DATASET, records, source="bulk")
    finally:
        event.remove(repo.engine, "before_cursor_execute", count)
    assert first.inserted["participant"] == 800
    assert first.inserted["signal"] == 800
    assert len(statements) < 60, "expected batched lookups/inserts, not one query per row"
    again = repo.store_batch("site-a", DATASET, records, source="bulk")
    assert again.unchanged["document"] == 800
    assert repo.counts()["measure"] == 800


def eval_batch() -> list[Record]:
    return [
        participant("P1", gender="female", age_band="18-24"),
        participant("P2", gender="male", country="MX", ethnicity_category="hispanic"),
        participant("P3"),
        document("P1", "D1", day=10),  # measures at day 7 and 13: equal distance -> day 7
        document("P1", "D2", day=20, kind="therapy_transcript"),  # nearest: day 13
        document("P1", "D3", day=12, kind="patient_message"),  # kind not requested
        document("P2", "D4", day=0),  # only measure is 31 days away
        document("P3", "D5", day=5),  # P3 has only a GAD-7
        measure("P1", 7, [1, 1, 1, 1, 1, 1, 1, 1, 1]),
        measure("P1", 13, [2, 2, 2, 2, 2, 2, 2, 2, 2]),
        measure("P2", 31, [3, 3, 3, 3, 3, 3, 3, 3, 3]),
        measure("P3", 5, [1, 1, 1, 1, 1, 1, 1], instrument="GAD-7"),
    ]


def test_eval_items_pairs_nearest_measure(repo: SiteRepository) -> None:
    repo.store_batch("site-a", DATASET, eval_batch(), source="eval")
    items = {i.document_id: i for i in repo.eval_items()}
    assert set(items) == {"D1", "D2"}
    assert items["D1"].measure_date == "2024-03-08"
    assert items["D1"].true_items == (1,) * 9
    assert items["D1"].true_total == 9
    assert items["D2"].measure_date == "2024-03-14"
    assert items["D2"].true_total == 18
    assert items["D1"].instrument == "PHQ-9"
    assert items["D1"].attributes == {
        "gender": "female",
        "age_band": "18-24",
        "country": "GB",
        "primary_language": "en",
        "ethnicity_category": "",
    }
    assert items["D1"].text.startswith("Note D1")
    widened = {i.document_id: i for i in repo.eval_items(max_days=31)}
    assert widened["D4"].measure_date == "2024-04-01"
    assert widened["D4"].attributes["ethnicity_category"] == "hispanic"
    gad = repo.eval_items(instrument="gad7")
    assert [i.document_id for i in gad] == ["D5"]
    notes_only = repo.eval_items(kinds=("clinical_note",), max_days=31)
    assert sorted(i.document_id for i in notes_only) == ["D1", "D4"]


def test_eval_items_limit_and_seed_are_deterministic(repo: SiteRepository) -> None:
    records: list[Record] = []
    for i in range(12):
        pid = f"P{i:02d}"
        records += [participant(pid), document(pid, f"D{i:02d}"), measure(pid, 3, [i % 4] * 9)]
    repo.store_batch("site-a", DATASET, records, source="many")
    order = [i.document_id for i in repo.eval_items(seed=7)]
    assert sorted(order) == [f"D{i:02d}" for i in range(12)]
    assert [i.document_id for i in repo.eval_items(seed=7)] == order
    assert [i.document_id for i in repo.eval_items(seed=7, limit=5)] == order[:5]
    assert [i.document_id for i in repo.eval_items(seed=8)] != order


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    yield Settings(home=tmp_path / "home", database_url="")


def test_for_site_creates_the_site_folder(settings: Settings) -> None:
    with SiteRepository.for_site(settings, "site-b") as repo:
        repo.store_batch("site-b", DATASET, small_batch(), source="t")
        assert repo.counts()["document"] == 2
    assert (settings.site_dir("site-b") / "repository.sqlite").is_file()
    with SiteRepository.for_site(settings, "site-b") as reopened:
        assert reopened.participant_ids() == {"P1", "P2"}
