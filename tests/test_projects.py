"""Projects, approvals and consent enforced by the site guard (``run_site_job``).

Store tables on SQLite and PostgreSQL; the site guard's refusals and their reasons; the
audit trail of approvals; the refusal reaching the coordinator's result through a real
Flower federation (slow).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mindcommons.errors import ConfigError, PolicyError
from mindcommons.federation.site import run_site_job
from mindcommons.governance import AuditLog
from mindcommons.governance.consent import set_consent, site_datasets
from mindcommons.governance.jobcheck import JOB_PURPOSES, check_job
from mindcommons.governance.permissions import Principal, Role
from mindcommons.governance.projects import (
    approval_at,
    approve_project,
    create_project,
    list_projects,
    revoke_project,
    site_approvals,
)
from mindcommons.governance.store import URL_ENV
from mindcommons.ingest import ingest_path
from mindcommons.policy import set_allowed_jobs, set_min_release_n
from mindcommons.settings import Settings, load_settings

STEWARD = Principal("sam", Role.STEWARD)
RESEARCHER = Principal("rita", Role.RESEARCHER)


def write_batch(path: Path, site: str, n: int, dataset: dict[str, Any] | None) -> Path:
    rows: list[dict[str, Any]] = []
    if dataset is not None:
        rows.append({"type": "dataset", **dataset})
    for i in range(n):
        pid = f"{site}-p{i}"
        rows.append({"type": "participant", "participant_id": pid, "gender": "female",
                     "primary_language": "en", "age_band": "25-34", "country": "GB"})  # fmt: skip
        rows.append({"type": "measure", "participant_id": pid, "instrument": "PHQ-9",
                     "date": "2025-01-10", "items": [i % 4] * 9})  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def make_site(
    settings: Settings, site: str, *, purposes: list[str] | None, name: str = "cohort", n: int = 3
) -> None:
    """A site with one dataset (consent ``purposes``; None: no consent recorded)."""
    dataset = {"name": name} if purposes is None else {"name": name, "allowed_purposes": purposes}
    data = write_batch(settings.resolved_home().parent / "data" / site / f"{name}.jsonl",
                       site, n, dataset)  # fmt: skip
    ingest_path(data, site, settings=settings)
    set_min_release_n(settings.site_dir(site), 1)
    set_allowed_jobs(settings.site_dir(site), ["count", "evaluate", "query"])


@pytest.fixture
def settings(repo_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv(URL_ENV, repo_url)
    yield load_settings(tmp_path / "home")


def count(settings: Settings, site: str, project: str | None = None) -> dict[str, Any]:
    job: dict[str, Any] = {"job": "count", "run_id": "t1"}
    if project is not None:
        job["project"] = project
    return run_site_job(site, settings.resolved_home(), job)


def test_projects_approvals_and_revocation_on_each_backend(settings: Settings) -> None:
    make_site(settings, "site-a", purposes=["analytics", "evaluation"])
    with pytest.raises(ConfigError, match="no project 'study'"):
        approve_project(settings, STEWARD, "study", "site-a")
    create_project(settings, RESEARCHER, "study", ["analytics", "training"], "PHQ-9 trends")
    with pytest.raises(ConfigError, match="exists already"):
        create_project(settings, RESEARCHER, "study", ["analytics"])
    with pytest.raises(ConfigError, match="unknown purpose"):
        create_project(settings, RESEARCHER, "other", ["marketing"])
    with pytest.raises(ConfigError, match="built-in"):
        create_project(settings, RESEARCHER, "local", ["analytics"])
    with pytest.raises(PolicyError, match="cannot be approved for care"):
        approve_project(settings, STEWARD, "study", "site-a", ["care"])
    with pytest.raises(ConfigError, match="no site 'site-z'"):
        approve_project(settings, STEWARD, "study", "site-z")

    info = approve_project(settings, STEWARD, "study", "site-a", ["analytics"], note="ok'd")
    assert (info.status, info.purposes) == ("approved", ("analytics",))
    listed = {p.name: p for p in list_projects(settings, RESEARCHER)}
    assert listed["study"].approvals == {"site-a": ("analytics",)}
    assert listed["study"].purposes == ("analytics", "training")
    assert "local" in listed  # the built-in project of each site's own use
    assert count(settings, "site-a", "study")["status"] == "ok"

    revoke_project(settings, STEWARD, "study", "site-a")
    reply = count(settings, "site-a", "study")
    assert reply["status"] == "refused"
    assert reply["reason"].startswith("refused: project 'study' is revoked at site-a")
    decided = {a.project: a.status for a in site_approvals(settings, STEWARD, "site-a")}
    assert decided == {"local": "default", "study": "revoked"}

    log = AuditLog.for_site(settings.site_dir("site-a"))
    assert log.verify().ok
    events = [(e.kind, e.actor, e.subject) for e in log.entries()]
    assert ("approval", "user:sam", "project:study") in events
    assert ("revocation", "user:sam", "project:study") in events
    refused = [e for e in log.entries() if e.kind == "job_refused"][-1]
    assert refused.details["project"] == "study"


def test_site_refuses_unapproved_project_wrong_purpose_and_missing_consent(
    settings: Settings,
) -> None:
    make_site(settings, "site-a", purposes=["evaluation"])
    make_site(settings, "site-b", purposes=None)  # ingested without a consent record
    create_project(settings, RESEARCHER, "study", ["analytics"])

    reply = count(settings, "site-a", "study")
    assert reply["status"] == "refused" and reply["payload"] == {}
    assert "project 'study' is not approved at site-a" in reply["reason"]
    assert "mindcommons projects approve study --site site-a" in reply["reason"]

    approve_project(settings, STEWARD, "study", "site-a")
    reply = count(settings, "site-a", "study")  # approved, but the consent says evaluation
    assert reply["status"] == "refused"
    assert reply["reason"] == (
        "refused: the consent of dataset 'cohort' at site-a allows evaluation, not analytics"
    )
    set_consent(settings, STEWARD, "site-a", "cohort", ["evaluation", "analytics"],
                basis="form v2, 2025")  # fmt: skip
    assert count(settings, "site-a", "study")["status"] == "ok"
    ds = site_datasets(settings, "site-a")[0]
    assert ds.allowed_purposes == ("analytics", "evaluation")
    assert ds.consent_basis == "form v2, 2025"
    consent_events = [e for e in AuditLog.for_site(settings.site_dir("site-a")).entries()
                      if e.subject == "dataset:cohort"]  # fmt: skip
    assert consent_events[-1].details["allowed_purposes"] == {
        "old": ["evaluation"], "new": ["analytics", "evaluation"],
    }  # fmt: skip

    # no consent record: the site's own 'local' use only
    approve_project(settings, STEWARD, "study", "site-b")
    reply = count(settings, "site-b", "study")
    assert reply["status"] == "refused" and "no consent record" in reply["reason"]
    assert count(settings, "site-b")["status"] == "ok"  # no project named: 'local'

    # training is not approved for 'study' anywhere: the job type fixes the purpose
    assert check_job(settings, "site-a", {"job": "count", "project": "study"}).purpose == (
        "analytics"
    )
    JOB_PURPOSES.pop("x-unknown", None)
    with pytest.raises(PolicyError, match="declares no purpose"):
        check_job(settings, "site-a", {"job": "x-unknown", "project": "study"})
    with pytest.raises(PolicyError, match="project names"):
        check_job(settings, "site-a", {"job": "count", "project": "../etc"})


def test_local_project_default_narrowed_and_revoked(settings: Settings) -> None:
    make_site(settings, "site-a", purposes=["analytics", "evaluation"])
    assert approval_at(settings, "local", "site-a") is not None
    assert count(settings, "site-a")["status"] == "ok"
    approve_project(settings, STEWARD, "local", "site-a", ["evaluation"])
    reply = count(settings, "site-a")
    assert reply["status"] == "refused"
    assert reply["reason"] == (
        "refused: project 'local' is approved at site-a for evaluation, not analytics "
        "(job type 'count')"
    )
    revoke_project(settings, STEWARD, "local", "site-a")
    assert "is revoked at site-a" in count(settings, "site-a", "local")["reason"]


def test_allowlist_is_checked_before_governance(settings: Settings) -> None:
    make_site(settings, "site-a", purposes=["analytics"])
    set_allowed_jobs(settings.site_dir("site-a"), ["evaluate"])
    reply = count(settings, "site-a", "never-declared")
    assert reply["reason"] == "refused: job type 'count' not allowed at site-a"


def test_query_refusal_reaches_the_coordinator_result(settings: Settings) -> None:
    from mindcommons.disclosure import run_query

    make_site(settings, "site-a", purposes=["analytics"])
    make_site(settings, "site-b", purposes=["analytics"])
    create_project(settings, RESEARCHER, "trend", ["analytics"])
    approve_project(settings, STEWARD, "trend", "site-a")
    result = run_query(settings, by=["language"], project="trend", min_n=1, local=True)
    assert result.sites == ["site-a"]
    assert result.missing == {
        "site-b": "refused: project 'trend' is not approved at site-b (its steward decides: "
        "mindcommons projects approve trend --site site-b)"
    }


def test_steward_scoped_to_one_site(settings: Settings) -> None:
    make_site(settings, "site-a", purposes=["analytics"])
    make_site(settings, "site-b", purposes=["analytics"])
    create_project(settings, RESEARCHER, "study", ["analytics"])
    scoped = Principal("sb", Role.STEWARD, ("site-b",))
    with pytest.raises(PolicyError, match="acts for site-b only"):
        approve_project(settings, scoped, "study", "site-a")
    with pytest.raises(PolicyError, match="acts for site-b only"):
        set_consent(settings, scoped, "site-a", "cohort", ["training"])
    assert approve_project(settings, scoped, "study", "site-b").status == "approved"
    assert approval_at(settings, "study", "site-a") is None


@pytest.mark.slow
def test_refusal_crosses_a_real_flower_federation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through SuperLink and SuperNodes: an approved site answers, an unapproved one is
    named in result.json ``missing`` with its reason, and nothing else leaks."""
    from mindcommons.federation import launcher
    from mindcommons.federation.runner import run_job

    monkeypatch.setenv("FLWR_TELEMETRY_ENABLED", "0")
    monkeypatch.delenv(URL_ENV, raising=False)
    settings = load_settings(tmp_path / "home")
    make_site(settings, "site-a", purposes=["analytics"])
    make_site(settings, "site-b", purposes=["analytics"])
    create_project(settings, RESEARCHER, "study", ["analytics"])
    approve_project(settings, STEWARD, "study", "site-a")
    try:
        launcher.up(settings)
        result = run_job(settings, {"job": "count", "project": "study"}, timeout=180)
    finally:
        launcher.down(settings)
    assert result["sites_ok"] == ["site-a"]
    assert result["payloads"]["site-a"]["participant"] == 3
    assert result["missing"] == {
        "site-b": "refused: project 'study' is not approved at site-b (its steward decides: "
        "mindcommons projects approve study --site site-b)"
    }
    assert result["job"]["project"] == "study"


def test_consent_read_and_written_on_the_site_repository_backend(
    repo_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The site's own database (SQLite or PostgreSQL) holds the consent the guard reads."""
    from mindcommons.governance.jobcheck import dataset_consents

    monkeypatch.delenv(URL_ENV, raising=False)
    monkeypatch.setenv("MINDCOMMONS_DATABASE_URL", repo_url)  # every site in this database
    settings = load_settings(tmp_path / "home")
    assert settings.site_db_url("site-a") == repo_url
    assert dataset_consents(settings, "site-a") == []  # nothing ingested yet
    make_site(settings, "site-a", purposes=["evaluation"])
    assert dataset_consents(settings, "site-a") == [("cohort", ("evaluation",))]
    assert "allows evaluation, not analytics" in count(settings, "site-a")["reason"]
    set_consent(settings, STEWARD, "site-a", "cohort", ["analytics"])
    assert dataset_consents(settings, "site-a") == [("cohort", ("analytics",))]
    assert count(settings, "site-a")["status"] == "ok"


def test_synthetic_demo_sites_admit_every_job_type_as_local(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo path (synth -> ingest -> jobs with no project) passes the guard: synthetic
    datasets consent to analytics, evaluation and training; 'local' is approved."""
    from mindcommons.synth import generate

    monkeypatch.delenv(URL_ENV, raising=False)
    generate(tmp_path / "data", sites=1, patients=3, seed=5, formats=("jsonl",))
    settings = load_settings(tmp_path / "home")
    ingest_path(tmp_path / "data" / "site-a" / "jsonl", "site-a", settings=settings)
    for kind in ("count", "query", "evaluate", "suite", "train"):
        cleared = check_job(settings, "site-a", {"job": kind, "run_id": "demo"})
        assert (cleared.project, cleared.datasets) == ("local", 1)
    assert count(settings, "site-a")["status"] == "ok"
    # a named project still needs its steward's approval there
    reply = count(settings, "site-a", "outsider")
    assert reply["status"] == "refused" and "not approved at site-a" in reply["reason"]
