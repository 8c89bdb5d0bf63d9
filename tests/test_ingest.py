"""Ingest: every format parses, every bad input names file, line/record and field, and
a failed batch stores nothing. Runs on SQLite and PostgreSQL through conftest's ``repo``."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mindcommons.errors import InputError
from mindcommons.ingest import (
    DEID_STAGES,
    FORMATS,
    BatchInputError,
    Issues,
    Locator,
    ParsedRecord,
    format_for,
    ingest_path,
)
from mindcommons.ingest.deid import DeidContext
from mindcommons.records import DocumentRecord, ParticipantRecord
from mindcommons.repository import SiteRepository
from mindcommons.settings import Settings

SITE = "site-a"
PARTICIPANTS = "participant_id,age_band,gender,country,primary_language\np1,18-24,female,GB,en\n"
MEASURES = (
    "participant_id,instrument,date,items,total\n"
    "p1,PHQ-9,2024-01-02,1;2;0;3;1;0;0;1;0,8\n"
    "p1,phq9,2024-01-09,0;1;0;1;0;0;0;0;0,\n"
)


def doc_line(doc_id: str = "d1", pid: str = "p1", **kw: Any) -> str:
    rec = {
        "type": "document",
        "participant_id": pid,
        "document_id": doc_id,
        "kind": "clinical_note",
        "language": "en",
        "date": "2024-01-02",
        "text": "Sleeping badly, low mood most days.",
        "deid_status": "synthetic",
    }
    return json.dumps(rec | kw, ensure_ascii=False) + "\n"


def signal_line() -> str:
    rec = {"type": "signal", "participant_id": "p1", "name": "sleep_hours", "unit": "h"}
    return json.dumps(rec | {"value": 5.5, "time": "2024-01-02T07:00:00+00:00"}) + "\n"


def write_batch(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "participants.csv").write_text(PARTICIPANTS, encoding="utf-8")
    (folder / "measures.csv").write_text(MEASURES, encoding="utf-8")
    (folder / "records.jsonl").write_text(doc_line() + signal_line(), encoding="utf-8")
    return folder


def entry(resource: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource}


def fhir_bundle(*extra: dict[str, Any]) -> dict[str, Any]:
    patient = {
        "resourceType": "Patient",
        "id": "p2",
        "gender": "male",
        "address": [{"country": "ES"}],
        "communication": [{"language": {"coding": [{"code": "es"}]}}],
        "extension": [
            {
                "url": "https://mindcommons.dev/fhir/StructureDefinition/age-band",
                "valueString": "25-34",
            }
        ],
    }
    answers = ["LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9"]
    qr = {
        "resourceType": "QuestionnaireResponse",
        "id": "q1",
        "status": "completed",
        "questionnaire": "https://mindcommons.dev/fhir/Questionnaire/phq-9",
        "subject": {"reference": "Patient/p2"},
        "authored": "2024-02-01",
        "item": [
            {"linkId": str(n), "answer": [{"valueCoding": {"code": answers[n % 4]}}]}
            for n in range(1, 10)
        ],
    }
    text = base64.b64encode(b"Dice que duerme mal.").decode()
    doc = {
        "resourceType": "DocumentReference",
        "id": "d9",
        "status": "current",
        "meta": {
            "tag": [{"system": "https://mindcommons.dev/fhir/deid-status", "code": "synthetic"}]
        },
        "type": {"coding": [{"code": "therapy_transcript"}]},
        "subject": {"reference": "urn:uuid:p2"},
        "date": "2024-02-01T10:00:00+00:00",
        "content": [{"attachment": {"contentType": "text/plain", "language": "es", "data": text}}],
    }
    obs = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"coding": [{"code": "steps"}]},
        "subject": {"reference": "Patient/p2"},
        "effectiveDateTime": "2024-02-01T23:00:00+00:00",
        "valueQuantity": {"value": 4200, "unit": "steps"},
    }
    entries = [entry(r) for r in (patient, qr, doc, obs, *extra)]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def first_line(err: BaseException) -> str:
    return str(err).splitlines()[0]


@pytest.fixture
def loaded(repo: SiteRepository, tmp_path: Path) -> Iterator[tuple[SiteRepository, dict[str, int]]]:
    """A repository holding one valid batch, and its row counts."""
    ingest_path(write_batch(tmp_path / "good"), SITE, repo=repo)
    yield repo, repo.counts()


def test_valid_batch_is_stored_and_reingest_changes_nothing(
    repo: SiteRepository, tmp_path: Path
) -> None:
    folder = write_batch(tmp_path / "batch")
    report = ingest_path(folder, SITE, repo=repo)
    assert report.inserted["participant"] == 1
    assert report.inserted["measure"] == 2
    assert report.inserted["document"] == 1
    assert report.inserted["signal"] == 1
    assert len(report.files) == 3
    counts = repo.counts()
    again = ingest_path(folder, SITE, repo=repo)
    assert again.total_inserted == 0
    assert again.unchanged["measure"] == 2
    assert repo.counts() == counts


def test_fhir_bundle_is_stored(repo: SiteRepository, tmp_path: Path) -> None:
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(fhir_bundle()), encoding="utf-8")
    report = ingest_path(path, SITE, repo=repo)
    assert report.inserted["participant"] == 1
    assert report.inserted["measure"] == 1
    assert report.inserted["document"] == 1
    assert report.inserted["signal"] == 1
    assert repo.participant_ids() == {"p2"}


def test_fhir_records_carry_mapped_fields(tmp_path: Path) -> None:
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(fhir_bundle()), encoding="utf-8")
    issues = Issues()
    records = {type(r).__name__: (w, r) for w, r in FORMATS.get("fhir").parse(path, issues)}
    assert not issues
    where, measure = records["MeasureRecord"]
    assert measure.instrument == "PHQ-9"  # type: ignore[union-attr]
    assert measure.items == [1, 2, 3, 0, 1, 2, 3, 0, 1]  # type: ignore[union-attr]
    assert where.record == "entry 1 (QuestionnaireResponse/q1)"
    _, doc = records["DocumentRecord"]
    assert isinstance(doc, DocumentRecord)
    assert (doc.participant_id, doc.text, doc.language) == ("p2", "Dice que duerme mal.", "es")
    _, patient = records["ParticipantRecord"]
    assert isinstance(patient, ParticipantRecord)
    assert (patient.age_band, patient.country, patient.primary_language) == ("25-34", "ES", "es")


def _missing_column(folder: Path) -> tuple[str, str]:
    (folder / "participants.csv").write_text("age_band,gender\n18-24,female\n", encoding="utf-8")
    return "participants.csv, line 1, field 'participant_id'", "required column"


def _broken_json(folder: Path) -> tuple[str, str]:
    (folder / "records.jsonl").write_text(doc_line() + '{"type": "document", "part\n')
    return "records.jsonl, line 2", "not valid JSON"


def _unsupported_fhir(folder: Path) -> tuple[str, str]:
    enc = {"resourceType": "Encounter", "id": "e1", "status": "finished", "class": {"code": "AMB"}}
    (folder / "bundle.json").write_text(json.dumps(fhir_bundle(enc)), encoding="utf-8")
    return "bundle.json, record entry 4 (Encounter/e1), field 'resourceType'", "Patient"


def _phq9_answer_4(folder: Path) -> tuple[str, str]:
    bad = MEASURES + "p1,PHQ-9,2024-01-16,0;0;0;4;0;0;0;0;0,\n"
    (folder / "measures.csv").write_text(bad, encoding="utf-8")
    return "measures.csv, line 4, field 'items[3]'", "expected 0-3"


def _not_utf8(folder: Path) -> tuple[str, str]:
    data = PARTICIPANTS.encode() + "p9,25-34,femme,FR,fr\n".encode("latin-1")
    data = data.replace(b"femme", "f\xe9mme".encode("latin-1"))
    (folder / "participants.csv").write_bytes(data)
    return "participants.csv, line 3, field 'gender'", "not valid UTF-8"


def _bad_total(folder: Path) -> tuple[str, str]:
    (folder / "measures.csv").write_text(MEASURES.replace(",8\n", ",9\n"), encoding="utf-8")
    return "measures.csv, line 2, field 'total'", "expected 8"


def _unknown_participant(folder: Path) -> tuple[str, str]:
    (folder / "records.jsonl").write_text(doc_line() + doc_line("d5", pid="nobody"))
    return "records.jsonl, line 2, field 'participant_id'", "unknown participant 'nobody'"


def _empty_required(folder: Path) -> tuple[str, str]:
    (folder / "measures.csv").write_text(MEASURES.replace("2024-01-09", ""), encoding="utf-8")
    return "measures.csv, line 3, field 'date'", "required value is empty"


def _fhir_bad_kind(folder: Path) -> tuple[str, str]:
    bundle = fhir_bundle()
    bundle["entry"][2]["resource"]["type"]["coding"][0]["code"] = "letter"
    (folder / "bundle.json").write_text(json.dumps(bundle), encoding="utf-8")
    where = "bundle.json, record entry 2 (DocumentReference/d9), field 'type.coding[0].code'"
    return where, "clinical_note"


def _fhir_answer_4(folder: Path) -> tuple[str, str]:
    bundle = fhir_bundle()
    bundle["entry"][1]["resource"]["item"][3]["answer"] = [{"valueInteger": 4}]
    (folder / "bundle.json").write_text(json.dumps(bundle), encoding="utf-8")
    where = "bundle.json, record entry 1 (QuestionnaireResponse/q1), field 'items[3]'"
    return where, "expected 0-3"


BAD_INPUTS = {
    "fhir-bad-kind": _fhir_bad_kind,
    "fhir-answer-4": _fhir_answer_4,
    "missing-column": _missing_column,
    "broken-json": _broken_json,
    "unsupported-fhir": _unsupported_fhir,
    "phq9-answer-4": _phq9_answer_4,
    "not-utf8": _not_utf8,
    "bad-total": _bad_total,
    "unknown-participant": _unknown_participant,
    "empty-required": _empty_required,
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_names_where_and_stores_nothing(
    case: str, loaded: tuple[SiteRepository, dict[str, int]], tmp_path: Path
) -> None:
    repo, before = loaded
    folder = write_batch(tmp_path / "bad")
    where, detail = BAD_INPUTS[case](folder)
    (folder / "new_participants.csv").write_text(
        PARTICIPANTS.replace("p1,", "p-new,"), encoding="utf-8"
    )  # valid new rows in the same batch must not be stored either
    with pytest.raises(InputError) as info:
        ingest_path(folder, SITE, repo=repo)
    line = first_line(info.value)
    assert where in line
    assert detail in str(info.value)
    assert repo.counts() == before
    assert "p-new" not in repo.participant_ids()


def test_many_problems_are_collected_first_line_is_first(tmp_path: Path) -> None:
    folder = write_batch(tmp_path / "many")
    rows = "".join(f"p1,PHQ-9,2024-03-{d:02d},0;0;0;0;0;0;0;0;7,\n" for d in range(1, 26))
    (folder / "measures.csv").write_text(MEASURES + rows, encoding="utf-8")
    with pytest.raises(BatchInputError) as info:
        ingest_path(folder, SITE, settings=Settings(home=tmp_path / "home"))
    err = info.value
    assert len(err.errors) == 20 and err.truncated
    assert first_line(err).startswith(f"{folder / 'measures.csv'}, line 4, field 'items[8]'")
    assert (err.file, err.record, err.field) == (str(folder / "measures.csv"), 4, "items[8]")
    assert not (tmp_path / "home" / "sites" / SITE).exists()  # nothing created on bad input


def test_format_selection_and_third_party_format(repo: SiteRepository, tmp_path: Path) -> None:
    assert format_for(Path("a/site-b_documents.csv")) is FORMATS.get("csv")
    assert format_for(Path("x.jsonl")) is FORMATS.get("jsonl")
    assert format_for(Path("bundle.json")) is FORMATS.get("fhir")
    assert format_for(Path("notes.txt")) is None

    class PidList:
        name = "pids"
        suffixes: tuple[str, ...] = (".pids",)

        def parse(self, path: Path, issues: Issues) -> Iterator[ParsedRecord]:
            for n, pid in enumerate(path.read_text().split(), start=1):
                yield Locator(file=str(path), line=n), ParticipantRecord(participant_id=pid)

    FORMATS.add("pids", PidList())
    try:
        (tmp_path / "people.pids").write_text("x1\nx2\n")
        report = ingest_path(tmp_path / "people.pids", SITE, repo=repo)
        assert report.inserted["participant"] == 2
        assert repo.participant_ids() == {"x1", "x2"}
    finally:
        FORMATS._items.pop("pids")


@pytest.mark.parametrize("stages", [(), ("refuse-raw",)])
def test_raw_document_refused_without_a_deid_stage(
    stages: tuple[str, ...], loaded: tuple[SiteRepository, dict[str, int]], tmp_path: Path
) -> None:
    repo, before = loaded
    folder = write_batch(tmp_path / "raw")
    lines = doc_line() + doc_line("d2", deid_status="raw", text="Ana Pereira called 555-0142.")
    (folder / "records.jsonl").write_text(lines, encoding="utf-8")
    settings = Settings(home=tmp_path / "home")
    with pytest.raises(InputError) as info:
        ingest_path(folder, SITE, repo=repo, settings=settings, deid_stages=stages)
    assert "records.jsonl, line 2, field 'deid_status'" in first_line(info.value)
    assert "raw text is never stored" in str(info.value)
    assert "Ana" not in str(info.value) and "555" not in str(info.value)
    assert repo.counts() == before
    assert not (tmp_path / "home" / "sites" / SITE / "deid.key").exists()


def test_raw_document_is_pseudonymised_by_default(
    loaded: tuple[SiteRepository, dict[str, int]], tmp_path: Path
) -> None:
    repo, before = loaded
    folder = write_batch(tmp_path / "raw")
    text = "Seen with her husband John Smith; call 617-555-0142 or john.smith@example.org."
    lines = doc_line() + doc_line("d2", deid_status="raw", text=text)
    (folder / "records.jsonl").write_text(lines, encoding="utf-8")
    home = tmp_path / "home"
    report = ingest_path(folder, SITE, repo=repo, settings=Settings(home=home))
    assert report.inserted["document"] == 1 and report.deidentified == 1
    assert (home / "sites" / SITE / "deid.key").stat().st_mode & 0o777 == 0o600
    stored = {i.document_id: i.text for i in repo.eval_items(kinds=("clinical_note",))}
    assert "d2" in stored
    for value in ("John", "Smith", "617-555-0142", "john.smith@example.org"):
        assert value not in stored["d2"]
    assert stored["d2"].startswith("Seen with her husband ")
    record = repo.deid_records()[("p1", "d2")]
    assert record["mode"] == "pseudonymise"
    assert record["counts_by_type"]["PHONE"] == 1 and record["counts_by_type"]["EMAIL"] == 1
    assert record["detector_versions"]
    assert [e.document_id for e in repo.review_queue()] == ["d2"]
    assert repo.counts()["document"] == before["document"] + 1


def test_custom_deid_stage_runs_before_storage(repo: SiteRepository, tmp_path: Path) -> None:
    class Redact:
        name = "test-redact"

        def process(
            self, doc: DocumentRecord, locator: Locator, context: DeidContext
        ) -> DocumentRecord:
            text = doc.text.replace("Ana", "[NAME]")
            return doc.model_copy(update={"text": text, "deid_status": "deidentified"})

    DEID_STAGES.add("test-redact", Redact())
    folder = write_batch(tmp_path / "raw")
    (folder / "records.jsonl").write_text(doc_line(text="Ana sleeps badly.", deid_status="raw"))
    try:
        with pytest.raises(InputError, match="not de-identified"):
            ingest_path(folder, SITE, repo=repo, deid_stages=("refuse-raw",))
        report = ingest_path(folder, SITE, repo=repo, deid_stages=("test-redact",))
        assert report.inserted["document"] == 1
    finally:
        DEID_STAGES._items.pop("test-redact")


def test_progress_reports_every_file(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    folder = write_batch(tmp_path / "p")
    ingest_path(
        folder,
        SITE,
        settings=Settings(home=tmp_path / "h"),
        progress=lambda d, t: seen.append((d, t)),
    )
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_cli_ingest_prints_counts(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mindcommons.cli.app import _register_commands, app

    _register_commands()
    folder = write_batch(tmp_path / "cli")
    home = str(tmp_path / "home")
    result = CliRunner().invoke(app, ["ingest", str(folder), "--site", SITE, "--home", home])
    assert result.exit_code == 0, result.output
    assert "participant" in result.output and "inserted" in result.output
    again = CliRunner().invoke(app, ["ingest", str(folder), "--site", SITE, "--home", home])
    assert again.exit_code == 0
    assert "unchanged" in again.output


def test_cli_error_exits_nonzero_with_one_line(tmp_path: Path) -> None:
    folder = write_batch(tmp_path / "clierr")
    _phq9_answer_4(folder)
    exe = Path(sys.executable).parent / "mindcommons"
    env = {**os.environ, "MINDCOMMONS_HOME": str(tmp_path / "home"), "COLUMNS": "300"}
    out = subprocess.run(
        [str(exe), "ingest", str(folder), "--site", SITE],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert out.returncode == InputError.exit_code
    assert "Traceback" not in out.stderr
    assert "measures.csv, line 4, field 'items[3]'" in out.stderr.splitlines()[0]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two synthetic sites written by mindcommons.synth in all three formats."""
    from mindcommons.synth import generate

    out = tmp_path_factory.mktemp("synth")
    generate(out, sites=2, patients=12, seed=3)
    return out


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "fhir"])
def test_synthetic_site_ingests_in_each_format(
    fmt: str, synthetic: Path, repo: SiteRepository
) -> None:
    report = ingest_path(synthetic / "site-a" / fmt, "site-a", repo=repo)
    counts = repo.counts()
    for kind in ("participant", "document", "measure", "signal"):
        assert report.inserted[kind] > 0
        assert counts[kind] == report.inserted[kind]
    assert report.inserted["participant"] == 12
    again = ingest_path(synthetic / "site-a" / fmt, "site-a", repo=repo)
    assert again.total_inserted == 0
    assert repo.counts() == counts


def test_csv_then_fhir_of_the_same_site_changes_nothing(
    synthetic: Path, repo: SiteRepository
) -> None:
    first = ingest_path(synthetic / "site-b" / "csv", "site-b", repo=repo)
    counts = repo.counts()
    for fmt in ("fhir", "jsonl"):
        second = ingest_path(synthetic / "site-b" / fmt, "site-b", repo=repo)
        assert second.total_inserted == 0, (fmt, second.inserted)
        assert sum(second.unchanged.values()) == sum(first.inserted.values())
    assert repo.counts() == counts
