"""Tests for mindcommons.synth: determinism, formats, non-IID site mixes, text follows answers."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import json
import re
import statistics
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mindcommons.errors import ConfigError
from mindcommons.fhir_constants import (
    DEID_STATUS_SYSTEM,
    EXT_AGE_BAND,
    EXT_ETHNICITY_CATEGORY,
    EXT_ETHNICITY_LOCAL,
)
from mindcommons.instruments import get_instrument
from mindcommons.records import RECORD_TYPES, DatasetRecord
from mindcommons.synth import SiteData, corpus, generate, generate_site
from mindcommons.synth.vocab import load_vocab

SITES = 3
PATIENTS = 20
SEED = 7


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("synth") / "out"
    generate(path, sites=SITES, patients=PATIENTS, seed=SEED)
    return path


@pytest.fixture(scope="module")
def sites() -> list[SiteData]:
    return [generate_site(i, patients=PATIENTS, seed=SEED) for i in range(SITES)]


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_same_seed_same_bytes_different_seed_differs(tmp_path: Path) -> None:
    generate(tmp_path / "a", sites=2, patients=6, seed=3)
    generate(tmp_path / "b", sites=2, patients=6, seed=3)
    generate(tmp_path / "c", sites=2, patients=6, seed=4)
    a, b, c = _tree(tmp_path / "a"), _tree(tmp_path / "b"), _tree(tmp_path / "c")
    assert a == b
    assert set(a) == set(c)
    assert a["site-a/jsonl/records.jsonl"] != c["site-a/jsonl/records.jsonl"]
    assert a["site-b/fhir/bundle.json"] != c["site-b/fhir/bundle.json"]


def test_layout_counts_and_manifest(out: Path, sites: list[SiteData]) -> None:
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["seed"] == SEED
    assert [s["name"] for s in manifest["sites"]] == ["site-a", "site-b", "site-c"]
    for entry, site in zip(manifest["sites"], sites, strict=True):
        assert entry["counts"] == site.counts()
        assert entry["counts"]["participants"] == PATIENTS
        # 2-4 visits each with one PHQ-9 and one GAD-7; two outcomes per participant
        assert 4 * PATIENTS <= entry["counts"]["measures"] <= 8 * PATIENTS
        assert entry["counts"]["outcomes"] == 2 * PATIENTS
        for stem in ("participants", "documents", "measures", "signals", "outcomes"):
            with (out / site.name / "csv" / f"{stem}.csv").open(encoding="utf-8", newline="") as f:
                assert len(list(csv.DictReader(f))) == entry["counts"][stem]
        lines = (out / site.name / "jsonl" / "records.jsonl").read_text("utf-8").splitlines()
        assert json.loads(lines[0])["type"] == "dataset"
        assert len(lines) == 1 + sum(entry["counts"].values())
        for rel in entry["files"]:
            assert (out / rel).is_file()
    assert not list(out.parent.glob(".out.tmp-*"))


def test_ids_dates_and_deid_status(sites: list[SiteData]) -> None:
    for site in sites:
        prefix = site.name.removeprefix("site-").upper()
        for p in site.participants:
            assert re.fullmatch(rf"{prefix}-\d{{4}}", p.participant_id)
        for d in site.documents:
            assert d.deid_status == "synthetic"
            assert dt.date(2024, 1, 1) <= d.date <= dt.date(2025, 12, 31)
        for m in site.measures:
            assert dt.date(2024, 1, 1) <= m.date <= dt.date(2025, 12, 31)
            get_instrument(m.instrument).validate(m.items)
            assert m.total == sum(m.items)


def test_document_language_is_patient_language(sites: list[SiteData]) -> None:
    for site in sites:
        language = {p.participant_id: p.primary_language for p in site.participants}
        assert site.documents
        for doc in site.documents:
            assert doc.language == language[doc.participant_id]
        assert set(site.dataset.languages) == set(language.values())


def test_site_mixes_differ() -> None:
    big = [generate_site(i, patients=60, seed=1) for i in range(3)]
    shares = [Counter(p.primary_language for p in s.participants) for s in big]
    assert [c.most_common(1)[0][0] for c in shares] == ["en", "es", "pt"]
    for counter in shares:  # each site also has a minority of other languages
        assert len(counter) >= 2
    countries = [{p.country for p in s.participants} for s in big]
    assert countries[0] & {"GB", "US", "IE"} and countries[2] & {"BR", "PT"}
    ethnic = [Counter(p.ethnicity_category for p in s.participants) for s in big]
    assert ethnic[0] != ethnic[1] != ethnic[2]
    mean_phq = [
        statistics.mean(m.total or 0 for m in s.measures if m.instrument == "PHQ-9") for s in big
    ]
    assert len({round(x, 1) for x in mean_phq}) == 3


def _visit(document_id: str) -> int:
    match = re.search(r"-v(\d+)-", document_id)
    assert match
    return int(match.group(1))


def test_text_follows_answers(sites: list[SiteData]) -> None:
    checked = 0
    for site in sites:
        docs = {d.document_id: d for d in site.documents}
        measures: dict[tuple[str, str], list[list[int]]] = {}
        for m in site.measures:
            measures.setdefault((m.participant_id, m.instrument), []).append(m.items)
        for ev in site.evidence:
            doc = docs[ev.document_id]
            assert ev.sentence in doc.text
            answers = measures[(doc.participant_id, ev.instrument)][_visit(doc.document_id) - 1]
            assert ev.level == answers[ev.item - 1]
            vocab = load_vocab(doc.language)
            key = "phq9" if ev.instrument == "PHQ-9" else "gad7"
            entry = vocab.item_phrases(key, ev.item)
            if ev.level == 0:
                assert ev.sentence in entry["absent_third"] + entry["absent_first"]
            else:
                freqs = vocab.frequencies(key, ev.item, ev.level)
                assert any(f in ev.sentence for f in freqs)
                assert any(s in ev.sentence for s in entry["third"] + entry["first"])
            checked += 1
    assert checked > 100


def test_notes_cover_every_present_symptom_and_risk(sites: list[SiteData]) -> None:
    for site in sites:
        by_doc: dict[str, set[tuple[str, int]]] = {}
        for ev in site.evidence:
            by_doc.setdefault(ev.document_id, set()).add((ev.instrument, ev.item))
        measures: dict[tuple[str, str], list[list[int]]] = {}
        for m in site.measures:
            measures.setdefault((m.participant_id, m.instrument), []).append(m.items)
        for doc in site.documents:
            if doc.kind == "patient_message":
                continue
            mentioned = by_doc[doc.document_id]
            assert ("PHQ-9", 9) in mentioned  # risk is always documented
            for name in ("PHQ-9", "GAD-7"):
                answers = measures[(doc.participant_id, name)][_visit(doc.document_id) - 1]
                for number, level in enumerate(answers, start=1):
                    if level > 0:
                        assert (name, number) in mentioned, (doc.document_id, name, number)
            if doc.kind == "therapy_transcript":
                speakers = load_vocab(doc.language).section("transcript")["speakers"]
                assert doc.text.startswith(f"{speakers['therapist']}: ")
                assert f"\n{speakers['client']}: " in doc.text


def test_signals_track_severity(sites: list[SiteData]) -> None:
    totals, sleep = [], []
    for site in sites:
        for m in site.measures:
            if m.instrument != "PHQ-9":
                continue
            week = [
                s.value
                for s in site.signals
                if s.participant_id == m.participant_id
                and s.name == "sleep_hours"
                and 0 <= (m.date - s.time.date()).days <= 6
            ]
            if week:
                totals.append(float(m.total or 0))
                sleep.append(statistics.mean(week))
    assert statistics.correlation(totals, sleep) < -0.3


def _csv_records(folder: Path) -> dict[str, list[object]]:
    records: dict[str, list[object]] = {}
    for kind in ("participant", "document", "measure", "signal", "outcome"):
        cls = RECORD_TYPES[kind]
        with (folder / f"{kind}s.csv").open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        parsed = []
        for row in rows:
            if kind == "measure":
                row["items"] = [int(x) for x in row["items"].split(";")]  # type: ignore[assignment]
            parsed.append(cls.model_validate(row))
        records[kind] = parsed
    return records


def test_csv_and_jsonl_round_trip(out: Path, sites: list[SiteData]) -> None:
    for site in sites:
        expected = site.by_type()
        assert _csv_records(out / site.name / "csv") == expected
        dataset = json.loads((out / site.name / "csv" / "dataset.json").read_text("utf-8"))
        assert DatasetRecord.model_validate(dataset) == site.dataset
        from_jsonl: dict[str, list[object]] = {k: [] for k in expected}
        lines = (out / site.name / "jsonl" / "records.jsonl").read_text("utf-8").splitlines()
        first = json.loads(lines[0])
        assert DatasetRecord.model_validate({k: v for k, v in first.items() if k != "type"}) == (
            site.dataset
        )
        for line in lines[1:]:
            data = json.loads(line)
            kind = data.pop("type")
            from_jsonl[kind].append(RECORD_TYPES[kind].model_validate(data))
        assert from_jsonl == expected


def test_fhir_bundle_parses_and_matches_records(out: Path, sites: list[SiteData]) -> None:
    from fhir.resources.R4B.bundle import Bundle

    site = sites[1]
    text = (out / site.name / "fhir" / "bundle.json").read_text(encoding="utf-8")
    bundle = Bundle.model_validate_json(text)
    assert bundle.type == "collection"
    kinds = Counter(e.resource.get_resource_type() for e in bundle.entry)
    assert kinds == {
        "Patient": len(site.participants),
        "QuestionnaireResponse": len(site.measures),
        "DocumentReference": len(site.documents),
        "Observation": len(site.signals),
    }
    resources = [e.resource for e in bundle.entry]
    patient = next(r for r in resources if r.get_resource_type() == "Patient")
    record = site.participants[0]
    assert patient.id == record.participant_id
    ext = {e.url: e.valueString for e in patient.extension}
    assert ext == {
        EXT_AGE_BAND: record.age_band,
        EXT_ETHNICITY_LOCAL: record.ethnicity_local,
        EXT_ETHNICITY_CATEGORY: record.ethnicity_category,
    }
    assert patient.communication[0].language.coding[0].code == record.primary_language
    assert patient.address[0].country == record.country
    raw = [e["resource"] for e in json.loads(text)["entry"]]
    raw_docs = [r for r in raw if r["resourceType"] == "DocumentReference"]
    docs = [r for r in resources if r.get_resource_type() == "DocumentReference"]
    for resource, doc, data in zip(docs, site.documents, raw_docs, strict=True):
        attachment = resource.content[0].attachment
        # the JSON holds base64; fhir.resources hands back the decoded bytes
        assert base64.b64decode(data["content"][0]["attachment"]["data"]).decode() == doc.text
        assert attachment.data.decode("utf-8") == doc.text
        assert attachment.language == doc.language
        assert resource.type.coding[0].code == doc.kind
        assert (resource.meta.tag[0].system, resource.meta.tag[0].code) == (
            DEID_STATUS_SYSTEM,
            "synthetic",
        )
        assert resource.date.date() == doc.date
    responses = [r for r in resources if r.get_resource_type() == "QuestionnaireResponse"]
    for resource, measure in zip(responses, site.measures, strict=True):
        instrument = get_instrument(measure.instrument)
        assert resource.questionnaire == instrument.canonical_url
        assert str(resource.authored) == measure.date.isoformat()
        values = [instrument.answer_value(i.answer[0].valueCoding.code) for i in resource.item]
        assert values == measure.items
        assert [instrument.item_index(i.linkId) for i in resource.item] == list(
            range(len(instrument.items))
        )
    observations = [r for r in resources if r.get_resource_type() == "Observation"]
    first = observations[0]
    assert first.code.coding[0].code == site.signals[0].name
    assert float(first.valueQuantity.value) == site.signals[0].value
    outcomes = (out / site.name / "fhir" / "outcomes.csv").read_bytes()
    assert outcomes == (out / site.name / "csv" / "outcomes.csv").read_bytes()


def test_refuses_non_empty_output_and_overwrites_only_synth_output(tmp_path: Path) -> None:
    target = tmp_path / "out"
    generate(target, sites=1, patients=2, seed=0)
    with pytest.raises(ConfigError, match="not empty"):
        generate(target, sites=1, patients=3, seed=0)
    generate(target, sites=1, patients=3, seed=0, overwrite=True)
    manifest = json.loads((target / "manifest.json").read_text("utf-8"))
    assert manifest["sites"][0]["counts"]["participants"] == 3
    other = tmp_path / "precious"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not an earlier synth output"):
        generate(other, sites=1, patients=2, seed=0, overwrite=True)
    assert (other / "notes.txt").read_text() == "keep me"
    with pytest.raises(ConfigError):
        generate(tmp_path / "x", sites=0)
    with pytest.raises(ConfigError):
        generate(tmp_path / "x", formats=("xml",))


def test_failure_leaves_previous_output_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out"
    generate(target, sites=1, patients=2, seed=0)
    before = _tree(target)

    def boom(site: SiteData, folder: Path) -> list[Path]:
        raise OSError("disk full")

    monkeypatch.setitem(corpus.FORMATS, "fhir", boom)
    with pytest.raises(OSError, match="disk full"):
        generate(target, sites=2, patients=3, seed=1, overwrite=True)
    with pytest.raises(OSError, match="disk full"):
        generate(tmp_path / "fresh", sites=1, patients=2, seed=0)
    assert _tree(target) == before
    assert not (tmp_path / "fresh").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_smaller_run_is_prefix_of_larger() -> None:
    small = generate_site(2, patients=3, seed=5)
    large = generate_site(2, patients=6, seed=5)
    assert large.participants[:3] == small.participants
    assert [d for d in large.documents if d.participant_id in {"C-0001", "C-0002", "C-0003"}] == (
        small.documents
    )


def _app() -> object:
    import mindcommons.cli.app as cli_app

    try:
        cli_app._register_commands()
    except ImportError:  # other command modules may not exist yet in a partial checkout
        import mindcommons.cli.synth_cmd  # noqa: F401
    return cli_app.app


def test_cli_synth(tmp_path: Path) -> None:
    app = _app()
    runner = CliRunner()
    target = tmp_path / "cli-out"
    args = ["synth", "--out", str(target), "--sites", "2", "--patients", "4", "--seed", "9"]
    result = runner.invoke(app, args)  # type: ignore[arg-type]
    assert result.exit_code == 0, result.output
    assert "site-a" in result.output and "site-b" in result.output
    assert (target / "site-b" / "fhir" / "bundle.json").is_file()
    again = runner.invoke(app, args)  # type: ignore[arg-type]
    assert isinstance(again.exception, ConfigError)
    forced = runner.invoke(app, [*args, "--overwrite"])  # type: ignore[arg-type]
    assert forced.exit_code == 0, forced.output
    bad = runner.invoke(app, ["synth", "--out", str(tmp_path / "y"), "--sites", "0"])  # type: ignore[arg-type]
    assert isinstance(bad.exception, ConfigError)
