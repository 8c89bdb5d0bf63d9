"""Ingest de-identifies synthetic documents with injected PHI: no injected identifier is
stored (searched in a dump of every table with document text decrypted; that the text is
encrypted at rest is tests/test_encryption.py's business),
surrogates are consistent within a patient, records and review queue are kept, and
re-ingesting the same raw batch changes nothing. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from mindcommons.ingest import ingest_path
from mindcommons.repository import SiteRepository
from mindcommons.repository.models import Base, Document, Participant
from mindcommons.settings import Settings
from mindcommons.synth import generate
from mindcommons.synth.phi import PHI_FILE

SECRET = b"test-deid-ingest-secret"
SITES = {"site-a": "jsonl", "site-b": "csv", "site-c": "fhir"}  # one input format each
SEARCHED = ("NAME", "EMAIL", "MRN")
# Searched separately: Spanish phones after "teléfono es", Brazilian "(11) 9xxxx-xxxx",
# hospital names like "Hospital de la Santa Creu", a city after a street.
NOT_YET = ("PHONE", "HOSPITAL", "LOCATION")
HEADER = re.compile(r"^(?:Patient|Name|Paciente|Nombre|Utente|Nome): ([^,.\n]+)")
GREETING = re.compile(r"^[^:\n]+: [^\n]*, ([^,.\n]+)\.\n")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "out"
    generate(out, sites=3, patients=6, seed=11, inject_phi=True)
    return out


def injected(corpus: Path, site: str) -> list[dict[str, Any]]:
    lines = (corpus / site / PHI_FILE).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def raw_documents(corpus: Path, site: str) -> dict[str, dict[str, Any]]:
    lines = (corpus / site / "jsonl" / "records.jsonl").read_text(encoding="utf-8").splitlines()
    docs = [json.loads(line) for line in lines]
    return {d["document_id"]: d for d in docs if d["type"] == "document"}


def stored_documents(repo: SiteRepository) -> dict[str, tuple[str, str, str]]:
    """document_id -> (participant_id, text, deid_status), text decrypted."""
    texts = repo.document_texts()
    stmt = select(Document.document_id, Participant.participant_id, Document.deid_status).join(
        Participant, Document.participant_pk == Participant.id
    )
    with Session(repo.engine) as session:
        return {d: (p, texts[p, d], s) for d, p, s in session.execute(stmt)}


def database_bytes(repo: SiteRepository, url: str) -> bytes:
    """Every row of every table, with document text decrypted in place of its ciphertext
    (whose base64 could match a short name by chance)."""
    dump: list[str] = list(repo.document_texts().values())
    with repo.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            cols = [c for c in table.c if (table.name, c.name) != ("document", "text")]
            rows = conn.execute(select(*cols)).all()
            dump.extend(repr(tuple(row)) for row in rows)
            dump.extend(json.dumps(list(row), default=str) for row in rows)
    return "\n".join(dump).encode("utf-8")


def ingest_all(repo: SiteRepository, corpus: Path, home: Path) -> dict[str, Any]:
    settings = Settings(home=home)
    return {
        site: ingest_path(corpus / site / fmt, site, repo=repo, settings=settings, secret=SECRET)
        for site, fmt in SITES.items()
    }


def test_injected_phi_is_where_the_sidecar_says(corpus: Path, tmp_path: Path) -> None:
    types: set[str] = set()
    languages: set[str] = set()
    for site in SITES:
        docs = raw_documents(corpus, site)
        spans = injected(corpus, site)
        assert spans
        for span in spans:
            doc = docs[span["document_id"]]
            assert doc["text"][span["start"] : span["end"]] == span["value"]
            assert doc["deid_status"] == "raw"
            assert doc["kind"] in ("clinical_note", "therapy_transcript")
            types.add(span["type"])
            languages.add(doc["language"])
        assert all(
            d["deid_status"] == "synthetic" for d in docs.values() if d["kind"] == "patient_message"
        )
        assert not (corpus / site / "jsonl" / PHI_FILE).exists()
    assert {"NAME", "DATE", "PHONE", "EMAIL", "MRN", "LOCATION", "HOSPITAL", "AGE"} <= types
    assert languages == {"en", "es", "pt"}
    ages = [int(s["value"]) for site in SITES for s in injected(corpus, site) if s["type"] == "AGE"]
    assert ages and min(ages) > 89
    plain = tmp_path / "plain"
    generate(plain, sites=1, patients=6, seed=11)
    assert not (plain / "site-a" / PHI_FILE).exists()
    plain_docs = raw_documents(plain, "site-a")
    assert {d["deid_status"] for d in plain_docs.values()} == {"synthetic"}
    for doc_id, doc in raw_documents(corpus, "site-a").items():  # PHI is added around the text
        assert plain_docs[doc_id]["text"].strip() in doc["text"]


def leaked(data: bytes, corpus: Path, types: tuple[str, ...]) -> tuple[int, list[str]]:
    """How many injected values of ``types`` there are, and those found in ``data``."""
    values = {s["value"] for site in SITES for s in injected(corpus, site) if s["type"] in types}
    return len(values), sorted(v for v in values if v.encode("utf-8") in data)


def test_no_injected_phone_hospital_or_place_is_stored(
    repo: SiteRepository, repo_url: str, corpus: Path, tmp_path: Path
) -> None:
    ingest_all(repo, corpus, tmp_path / "home")
    total, found = leaked(database_bytes(repo, repo_url), corpus, NOT_YET)
    assert total > 20
    assert found == [], f"injected identifiers stored: {found}"


def test_ingest_stores_no_injected_identifier(repo_url: str, corpus: Path, tmp_path: Path) -> None:
    repo = SiteRepository.open(repo_url)
    try:
        reports = ingest_all(repo, corpus, tmp_path / "home")
        stored = stored_documents(repo)
        data = database_bytes(repo, repo_url)
        records = repo.deid_records()
        queue = repo.review_queue()
    finally:
        repo.close()
    expected_docs = {d for site in SITES for d in raw_documents(corpus, site)}
    assert set(stored) == expected_docs
    total, found = leaked(data, corpus, SEARCHED)
    assert total > 50
    assert found == [], f"injected identifiers stored: {found}"
    assert b"Therapist:" in data  # the search does see document text

    for site in SITES:
        per_doc: dict[str, list[str]] = defaultdict(list)
        for span in injected(corpus, site):
            per_doc[span["document_id"]].append(span["type"])
        phi_docs = set(per_doc)
        for doc_id, types in per_doc.items():
            pid, _text, status = stored[doc_id]
            assert status == "deidentified"
            record = records[(pid, doc_id)]
            assert record["mode"] == "pseudonymise" and record["detector_versions"]
            counts = record["counts_by_type"]
            assert counts.get("EMAIL", 0) == types.count("EMAIL")
            assert sum(counts.values()) >= sum(types.count(t) for t in SEARCHED)
        report = reports[site]
        assert report.deidentified == len(phi_docs)
        assert report.review_queued == max(1, math.ceil(0.05 * len(phi_docs)))
    assert len(queue) == sum(r.review_queued for r in reports.values())
    assert {e.status for e in queue} == {"pending"}
    assert all(stored[e.document_id][2] == "deidentified" for e in queue)


def test_surrogates_consistent_within_patient_and_reingest_changes_nothing(
    repo: SiteRepository, corpus: Path, tmp_path: Path
) -> None:
    first = ingest_all(repo, corpus, tmp_path / "home")
    before_docs, before_counts = stored_documents(repo), repo.counts()
    before_queue, before_records = repo.review_queue(), repo.deid_records()

    again = ingest_all(repo, corpus, tmp_path / "home")
    assert all(r.total_inserted == 0 for r in again.values())
    assert all(r.review_queued == 0 for r in again.values())
    assert sum(r.unchanged["document"] for r in again.values()) == sum(
        r.inserted["document"] for r in first.values()
    )
    assert stored_documents(repo) == before_docs
    assert repo.counts() == before_counts
    assert repo.review_queue() == before_queue
    assert repo.deid_records() == before_records

    original: dict[str, str] = {}  # participant -> injected full name
    for site in SITES:
        for span in injected(corpus, site):
            if span["type"] == "NAME" and span["start"] < 40 and " " in span["value"]:
                original.setdefault(before_docs[span["document_id"]][0], span["value"])
    names: dict[str, list[str]] = defaultdict(list)  # from note headers
    greeted: dict[str, list[str]] = defaultdict(list)  # first names from transcript greetings
    for pid, text, _ in before_docs.values():
        if (match := HEADER.match(text)) is not None:
            names[pid].append(match.group(1).strip())
        elif (match := GREETING.match(text)) is not None:
            greeted[pid].append(match.group(1).strip())
    several = [pid for pid in names if len(names[pid]) + len(greeted[pid]) >= 2]
    assert len(several) >= 5
    for pid in several:
        assert len(set(names[pid])) == 1, f"{pid}: {names[pid]}"
        full = names[pid][0]
        assert full != original[pid] and full.split()[0] != original[pid].split()[0]
        assert set(greeted[pid]) <= {full.split()[0]}, f"{pid}: {full} / {greeted[pid]}"
    chosen = {pid: found[0] for pid, found in names.items()}
    assert len(set(chosen.values())) == len(chosen)  # patients get different surrogates


def test_cli_synth_inject_phi_then_ingest_uses_the_site_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from mindcommons.cli import app as cli_app

    monkeypatch.delenv("MINDCOMMONS_DEID_SECRET", raising=False)
    cli_app._register_commands()
    runner = CliRunner()
    out, home = tmp_path / "out", tmp_path / "home"
    args = ["synth", "--out", str(out), "--sites", "1", "--patients", "3", "--inject-phi"]
    result = runner.invoke(cli_app.app, args)  # type: ignore[arg-type]
    assert result.exit_code == 0, result.output
    spans = injected(out, "site-a")
    assert spans and json.loads((out / "manifest.json").read_text())["inject_phi"] is True
    key = home / "sites" / "site-a" / "deid.key"  # fixed, so the run is reproducible
    key.parent.mkdir(parents=True)
    key.write_bytes(SECRET.hex().encode())
    ingest = ["ingest", str(out / "site-a" / "jsonl"), "--site", "site-a", "--home", str(home)]
    result = runner.invoke(cli_app.app, ingest)  # type: ignore[arg-type]
    assert result.exit_code == 0, result.output
    data = (home / "sites" / "site-a" / "repository.sqlite").read_bytes()
    assert key.read_bytes().strip() not in data  # the secret lives outside the database
    emails = [s["value"] for s in spans if s["type"] == "EMAIL"]
    assert emails and not [e for e in emails if e.encode() in data]
    for value in {s["value"] for s in spans if s["type"] in SEARCHED}:
        assert value not in result.output
    from mindcommons.deid import deidentify

    raw = raw_documents(out, "site-a")[spans[0]["document_id"]]
    expected = deidentify(
        raw["text"],
        language=raw["language"],
        patient_key=raw["participant_id"],
        secret=SECRET.hex(),
    )
    with SiteRepository.open(
        f"sqlite:///{home / 'sites' / 'site-a' / 'repository.sqlite'}"
    ) as repo:
        assert (
            stored_documents(repo)[raw["document_id"]][1] == expected.text
        )  # keyed by the site key
