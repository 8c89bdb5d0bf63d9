"""Transparency: Croissant datasheets (RAI fields, validated by mlcroissant), diversity
profiles against a reference population, the federated profile through ``query``, and
the public dataset list; small cells never appear."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mindcommons.datasheet import (
    StewardFields,
    federated_profile,
    public_list,
    read_datasheet,
    read_reference,
    site_profile,
    write_datasheet,
)
from mindcommons.datasheet.croissant import validate_jsonld
from mindcommons.errors import InputError
from mindcommons.governance import AuditLog
from mindcommons.governance.permissions import Principal, Role
from mindcommons.governance.projects import approve_project, create_project
from mindcommons.ingest import ingest_path
from mindcommons.policy import set_dp_budget, set_min_release_n
from mindcommons.settings import Settings, load_settings

STEWARD = Principal("sam", Role.STEWARD)
PATIENT = Principal("pat", Role.PATIENT)
DATASET = {
    "name": "outpatients", "description": "Adult outpatient notes and PHQ-9",
    "source": "EHR export 2025-01", "licence": "no redistribution",
    "consent_basis": "opt-out consent, form v3", "allowed_purposes": ["analytics", "evaluation"],
    "languages": ["en", "es"], "collection_start": "2024-01-01", "collection_end": "2024-12-31",
}  # fmt: skip
# 14 women and 3 men (3 is under the floor of 5), 12 English and 5 Spanish speakers.
PEOPLE = [("female", "en")] * 10 + [("female", "es")] * 4 + [("male", "en")] * 2 + [("male", "es")]


def make_site(home: Path, site: str, people: list[tuple[str, str]]) -> Settings:
    settings = load_settings(home)
    rows: list[dict[str, Any]] = [{"type": "dataset", **DATASET}]
    for i, (gender, lang) in enumerate(people):
        pid = f"{site}-{i}"
        rows.append({"type": "participant", "participant_id": pid, "gender": gender,
                     "primary_language": lang, "age_band": "25-34", "country": "GB",
                     "ethnicity_category": "White"})  # fmt: skip
        rows.append({"type": "document", "participant_id": pid, "document_id": f"d{i}",
                     "kind": "clinical_note", "language": lang, "date": "2024-05-01",
                     "text": "Low mood and poor sleep for two weeks.",
                     "deid_status": "synthetic"})  # fmt: skip
    path = home.parent / "data" / site / "batch.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    ingest_path(path, site, settings=settings)
    set_min_release_n(settings.site_dir(site), 5)
    return settings


def reference_file(tmp_path: Path) -> Path:
    path = tmp_path / "census.json"
    path.write_text(json.dumps({
        "name": "census-2021", "source": "national census, adults",
        "dimensions": {"gender": {"female": 51, "male": 49},
                       "language": {"en": 0.4, "es": 0.5, "pt": 0.1}},
    }), encoding="utf-8")  # fmt: skip
    return path


def test_datasheet_is_valid_croissant_with_rai_fields(tmp_path: Path) -> None:
    import mlcroissant as mlc

    settings = make_site(tmp_path / "home", "site-a", PEOPLE)
    fields = tmp_path / "steward.json"
    fields.write_text(json.dumps({
        "intended_uses": ["Evaluating PHQ-9 extraction from notes"],
        "prohibited_uses": ["Re-identifying people", "Insurance decisions"],
        "known_gaps": ["Few people over 65"], "collection": "Routine outpatient care notes",
        "collection_type": ["Secondary data analysis"], "provenance": "Exported from the EHR",
    }), encoding="utf-8")  # fmt: skip
    path = write_datasheet(
        settings, STEWARD, "site-a", "outpatients",
        fields=StewardFields.read(fields), reference=read_reference(reference_file(tmp_path)),
    )  # fmt: skip
    data = json.loads(path.read_text(encoding="utf-8"))
    assert validate_jsonld(data) == []
    assert data["conformsTo"] == "http://mlcommons.org/croissant/1.1"
    loaded = mlc.Dataset(jsonld=str(path)).metadata  # mlcroissant reads the file back
    assert loaded.name == "outpatients" and loaded.license == ["no redistribution"]
    assert loaded.data_use_cases == ["Evaluating PHQ-9 extraction from notes"]
    assert "Prohibited use: Re-identifying people" in loaded.data_limitations
    assert "Few people over 65" in loaded.data_limitations
    assert loaded.data_collection == "Routine outpatient care notes"
    consent = " ".join(loaded.personal_sensitive_information)
    assert "opt-out consent, form v3" in consent and "analytics, evaluation" in consent
    assert "Exported from the EHR" in data["rai:dataCollectionRawData"]
    assert "17 participants" in data["rai:dataCollectionRawData"]
    assert data["rai:dataCollectionTimeFrame"] == ["2024-01-01", "2024-12-31"]
    # the comparison with the reference shows up as a known bias
    biases = " ".join(data["rai:dataBiases"] if isinstance(data["rai:dataBiases"], list)
                      else [data["rai:dataBiases"]])  # fmt: skip
    assert "language 'es' is under-represented: 29%" in biases
    assert "language 'en' is over-represented" in biases
    assert "'pt'" not in biases  # nobody: withheld, so no claim either way
    profile = json.loads(path.with_name("outpatients.profile.json").read_text())
    gender = {r["category"]: r["count"] for r in profile["dimensions"]["gender"]}
    assert gender["male"] is None  # 3 < floor 5: withheld (female too, complementary)
    assert profile["total"] == 17
    assert read_datasheet(settings, PATIENT, "site-a", "outpatients")["name"] == "outpatients"
    events = [e for e in AuditLog.for_site(settings.site_dir("site-a")).entries()
              if e.subject == "datasheet:outpatients"]  # fmt: skip
    assert [e.kind for e in events] == ["export"] and events[0].actor == "user:sam"


def test_site_profile_suppresses_and_compares(tmp_path: Path) -> None:
    settings = make_site(tmp_path / "home", "site-a", PEOPLE)
    ref = read_reference(reference_file(tmp_path))
    assert ref.shares["gender"] == {"female": 0.51, "male": 0.49}
    prof = site_profile(settings, STEWARD, "site-a", reference=ref)
    rows = {r.category: r for r in prof.dimensions["gender"]}
    # male (3) is under the floor; "other" and "(other)" are empty: the complementary
    # rule needs a second people-holding withheld cell, so female is withheld too
    assert rows["male"].count is None and rows["female"].count is None
    lang = {r.category: r for r in prof.dimensions["language"]}
    assert lang["en"].count == 12 and lang["es"].count == 5 and lang["pt"].count is None
    assert lang["en"].share == pytest.approx(12 / 17)
    assert lang["en"].ratio == pytest.approx(round((12 / 17) / 0.4, 3))
    assert (lang["en"].flag, lang["es"].flag, lang["pt"].flag) == ("over", "under", "withheld")
    assert rows["male"].flag == "withheld"
    assert len(prof.gaps()) == 2 and prof.total == 17


def test_reference_errors_name_the_spot(tmp_path: Path) -> None:
    bad = tmp_path / "ref.csv"
    bad.write_text("dimension,category,share\ngender,female,0.5\ngender,male,lots\n")
    with pytest.raises(InputError) as err:
        read_reference(bad)
    assert "ref.csv" in str(err.value) and "line 3" in str(err.value)
    assert "field 'share'" in str(err.value)
    unknown = tmp_path / "ref.json"
    unknown.write_text(json.dumps({"dimensions": {"religion": {"a": 1}}}))
    with pytest.raises(InputError, match="unknown dimension 'religion'"):
        read_reference(unknown)
    good = tmp_path / "good.csv"
    good.write_text("dimension,category,share\ngender,female,2\ngender,male,2\n")
    assert read_reference(good).shares == {"gender": {"female": 0.5, "male": 0.5}}


def test_federated_profile_obeys_disclosure_control_and_approval(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = make_site(home, "site-a", PEOPLE)
    make_site(home, "site-b", [("female", "en")] * 12 + [("male", "pt")] * 6)
    make_site(home, "site-c", [("female", "en")] * 6)
    create_project(settings, STEWARD, "transparency", ["analytics"])
    for site in ("site-a", "site-b"):  # site-c's steward has not approved it
        approve_project(settings, STEWARD, "transparency", site)
        set_dp_budget(settings.site_dir(site), 100.0)
    ref = read_reference(reference_file(tmp_path))
    prof = federated_profile(
        settings, STEWARD, project="transparency", epsilon=2.0, local=True, reference=ref
    )
    assert prof.noisy and prof.floor == 5
    assert set(prof.missing) == {"site-c"} and "not approved at site-c" in prof.missing["site-c"]
    lang = {r.category: r for r in prof.dimensions["language"]}
    assert lang["en"].count is not None and abs(lang["en"].count - 24) <= 12  # DP noise
    assert lang["pt"].count is None  # site-a has no one speaking pt: withheld there
    gender = {r.category: r.count for r in prof.dimensions["gender"]}
    assert gender["male"] is None  # site-a's 3 men are under its floor
    ledger = json.loads((settings.site_dir("site-a") / "dp_ledger.json").read_text())
    assert ledger["projects"]["transparency"]["spent"] == pytest.approx(10.0)  # 5 dims x 2


def test_public_list_withholds_small_counts(tmp_path: Path) -> None:
    home = tmp_path / "home"
    make_site(home, "site-a", PEOPLE)
    settings = make_site(home, "site-b", [("female", "en")] * 3)
    entries = {e["site"]: e for e in public_list(settings, PATIENT)}
    assert entries["site-a"]["participants"] == 17
    assert entries["site-a"]["allowed_purposes"] == ["analytics", "evaluation"]
    assert entries["site-b"]["participants"] is None  # 3 < the floor of 5
    assert entries["site-b"]["make_up"]["total"] is None
    text = json.dumps(entries)
    assert "site-b-0" not in text and "Low mood" not in text  # no ids, no text
