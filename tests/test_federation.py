"""Federation: site job handler (unit), and the real Flower federation on 127.0.0.1 (slow)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mindcommons.errors import PolicyError, PrerequisiteError
from mindcommons.federation import launcher
from mindcommons.federation.runner import run_job
from mindcommons.federation.site import numeric_payload, run_site_job
from mindcommons.ingest import ingest_path
from mindcommons.policy import (
    DEFAULT_ALLOWED_JOBS,
    allowed_jobs,
    ensure_site_policy,
    set_allowed_jobs,
    set_min_release_n,
    site_secret,
)
from mindcommons.settings import Settings, load_settings

CANARY = "ZEBRA-CANARY-7f3a91c2"


def run_cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MINDCOMMONS_HOME": str(home), "FLWR_TELEMETRY_ENABLED": "0"}
    return subprocess.run(
        [sys.executable, "-m", "mindcommons", *args],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip


def write_site_data(out: Path, site: str, n: int, canary: str = "") -> Path:
    """A small project-made JSONL batch: participants, notes and PHQ-9 answers."""
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for i in range(n):
        pid = f"{site}-p{i}"
        rows.append({"type": "participant", "participant_id": pid, "age_band": "25-34",
                     "gender": "female", "country": "GB", "primary_language": "en"})  # fmt: skip
        text = (
            f"Patient reports low mood on most days and poor sleep for two weeks (note {i}). "
            "Appetite reduced, finds it hard to concentrate at work."
        )
        if canary and i == 0:
            text += f" Mentions {canary} repeatedly."
        rows.append({"type": "document", "participant_id": pid, "document_id": f"{site}-d{i}",
                     "kind": "clinical_note", "language": "en", "date": "2024-03-10",
                     "text": text, "deid_status": "synthetic"})  # fmt: skip
        rows.append({"type": "measure", "participant_id": pid, "instrument": "PHQ-9",
                     "date": "2024-03-08", "items": [(i + k) % 4 for k in range(9)]})  # fmt: skip
    path = out / f"{site}.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def make_home(
    root: Path, sites: dict[str, int], canary_site: str = "", min_release_n: int | None = 1
) -> Settings:
    """Sites with tiny data; their stewards lower the release floor to 1 unless told not to."""
    settings = load_settings(root / "home")
    for site, n in sites.items():
        data = write_site_data(root / "data" / site, site, n, CANARY if site == canary_site else "")
        ingest_path(data, site, settings=settings)
        if min_release_n is not None:
            set_min_release_n(settings.site_dir(site), min_release_n)
    return settings


# ---------------------------------------------------------------- unit: site side, no Flower


@pytest.fixture(scope="module")
def one_site(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_home(tmp_path_factory.mktemp("unit"), {"site-a": 3})


def test_count_job_returns_only_numbers(one_site: Settings) -> None:
    out = run_site_job("site-a", one_site.resolved_home(), {"job": "count"})
    assert out["status"] == "ok", out
    assert out["site"] == "site-a"
    assert out["payload"]["document"] == 3
    assert out["payload"]["participant"] == 3
    assert all(isinstance(v, int | float) for v in out["payload"].values())


def test_job_not_on_allowlist_is_refused_with_reason(one_site: Settings) -> None:
    site_dir = one_site.site_dir("site-a")
    set_allowed_jobs(site_dir, ["count"])
    try:
        out = run_site_job("site-a", one_site.resolved_home(), {"job": "evaluate"})
        assert out["status"] == "refused"
        assert out["reason"] == "refused: job type 'evaluate' not allowed at site-a"
        assert out["payload"] == {}
        unknown = run_site_job("site-a", one_site.resolved_home(), {"job": "export_notes"})
        assert unknown["status"] == "refused"
        assert "'export_notes'" in unknown["reason"]
    finally:
        set_allowed_jobs(site_dir, list(DEFAULT_ALLOWED_JOBS))


def test_small_cells_never_leave_a_site_at_its_default_floor(tmp_path: Path) -> None:
    settings = make_home(tmp_path, {"site-a": 3}, min_release_n=None)
    home = settings.resolved_home()
    # the first ingest gave the new site its policy file and secret key
    assert "min_release_n = 10" in (settings.site_dir("site-a") / "site.toml").read_text()
    assert (settings.site_dir("site-a") / "site.key").exists()
    counted = run_site_job("site-a", home, {"job": "count"})
    assert counted["status"] == "ok"
    assert "document" not in counted["payload"] and counted["payload"]["document_suppressed"] == 1
    assert counted["payload"]["site"] == 1  # not about people: released
    evaluated = run_site_job("site-a", home, {"job": "evaluate", "task": "phq9", "min_n": 1})
    assert evaluated["status"] == "refused"  # a job cannot lower the site's floor
    assert evaluated["reason"].startswith("suppressed: site-a has 3 evaluable documents")
    assert "minimum of 10" in evaluated["reason"]
    assert evaluated["payload"] == {}
    set_min_release_n(settings.site_dir("site-a"), 2)
    raised = run_site_job("site-a", home, {"job": "count", "min_n": 5})  # may raise it
    assert raised["payload"]["document_suppressed"] == 1
    lowered = run_site_job("site-a", home, {"job": "count"})
    assert lowered["payload"]["document"] == 3


def test_site_secret_is_private_and_stable(tmp_path: Path) -> None:
    site_dir = tmp_path / "site-x"
    key = site_secret(site_dir)
    assert len(key) == 32 and site_secret(site_dir) == key
    assert (site_dir / "site.key").stat().st_mode & 0o077 == 0
    assert site_secret(tmp_path / "site-y") != key


def test_policy_file_defaults_and_is_read(tmp_path: Path) -> None:
    site_dir = tmp_path / "site-x"
    assert allowed_jobs(site_dir) == list(DEFAULT_ALLOWED_JOBS)
    path = ensure_site_policy(site_dir)
    assert path.read_text().count("allowed_jobs") == 1
    path.write_text(path.read_text().replace("dp_budget = 10.0", "dp_budget = 2.5"))
    set_allowed_jobs(site_dir, ["count"])
    ensure_site_policy(site_dir)  # does not overwrite the site's choice
    assert allowed_jobs(site_dir) == ["count"]
    assert "dp_budget = 2.5" in path.read_text()  # other keys survive an edit


def test_site_errors_do_not_carry_messages(one_site: Settings) -> None:
    # a bad task name is a ConfigError: its message is about settings and may travel
    out = run_site_job("site-a", one_site.resolved_home(), {"job": "evaluate", "task": "nope"})
    assert out["status"] == "error"
    assert "nope" in out["reason"]
    assert out["payload"] == {}
    # a site that does not exist has an empty repository: count is zeros, not an error
    empty = run_site_job("site-z", one_site.resolved_home(), {"job": "count"})
    assert empty["status"] == "ok"
    assert empty["payload"]["document"] == 0


def test_numeric_payload_guard() -> None:
    assert numeric_payload({"a": 1, "b": [1, 2], "c": [0.5, 1], "d": True}) == {
        "a": 1, "b": [1, 2], "c": [0.5, 1.0], "d": 1,
    }  # fmt: skip
    with pytest.raises(PolicyError, match="'text'"):
        numeric_payload({"text": "a note"})
    with pytest.raises(PolicyError, match="'ids'"):
        numeric_payload({"ids": [1, "d-1"]})


def test_audit_needs_the_federation_up(one_site: Settings) -> None:
    with pytest.raises(PrerequisiteError, match="mindcommons federation up"):
        run_job(one_site, {"job": "count"})
    out = run_cli("audit", "--limit", "1", home=one_site.resolved_home())
    assert out.returncode == PrerequisiteError.exit_code
    assert "run `mindcommons federation up`" in out.stderr
    assert "Traceback" not in out.stderr
    status = run_cli("federation", "status", home=one_site.resolved_home())
    assert status.returncode == 1
    assert "federation is down" in status.stdout


# ---------------------------------------------------------------- the real federation


def _group_pids(state: launcher.FederationState) -> set[int]:
    """Every live process in the process groups (sessions) that `up` started."""
    groups = set(state.pids())
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) in groups and launcher.pid_alive(int(entry.name)):
                found.add(int(entry.name))
        except (ProcessLookupError, PermissionError):
            continue
    return found


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    root = tmp_path_factory.mktemp("fed")
    settings = make_home(root, {"site-a": 2, "site-b": 2, "site-c": 2}, canary_site="site-a")
    set_allowed_jobs(settings.site_dir("site-b"), ["count"])  # site-b refuses evaluations
    try:
        yield settings
    finally:
        launcher.down(settings)


@pytest.mark.slow
def test_up_status_count_down(fed: Settings) -> None:
    out = run_cli("federation", "up", home=fed.resolved_home())
    assert out.returncode == 0, out.stderr
    assert "federation up" in out.stdout and "3 site(s)" in out.stdout
    again = run_cli("federation", "up", home=fed.resolved_home())
    assert "federation already up" in again.stdout  # idempotent
    shown = run_cli("federation", "status", home=fed.resolved_home())
    assert shown.returncode == 0 and "3 of 3 site(s) connected" in shown.stdout
    state = launcher.up(fed)
    assert state.already_up
    assert state.sites == ["site-a", "site-b", "site-c"]
    info = launcher.status(fed)
    assert info["up"] is True
    assert info["nodes_online"] == 3
    assert all(s["alive"] for s in info["sites"].values())
    assert (fed.federation_dir() / "state.json").exists()

    result = run_job(fed, {"job": "count"}, timeout=120)
    assert result["missing"] == {}
    assert result["sites_ok"] == ["site-a", "site-b", "site-c"]
    assert {s: p["document"] for s, p in result["payloads"].items()} == {
        "site-a": 2, "site-b": 2, "site-c": 2,
    }  # fmt: skip


@pytest.mark.slow
def test_federated_audit_canary_and_allowlist(fed: Settings) -> None:
    from mindcommons.audit import run_audit

    launcher.up(fed)
    dump = fed.federation_dir() / "dump.jsonl"
    report = run_audit(
        fed, model="embedded", task="phq9", limit=1, seed=1, n_boot=20,
        sites=["site-a", "site-b"], debug_dump=dump, timeout=1500,
    )  # fmt: skip
    assert report.name == "report.html" and report.exists()
    result = json.loads((report.parent / "result.json").read_text())
    assert result["mode"] == "federated"
    assert result["sites_ok"] == ["site-a"]
    # ALLOWLIST: the refusing site is named with its reason, in result and report
    reason = "refused: job type 'evaluate' not allowed at site-b"
    assert result["missing"] == {"site-b": reason}
    report_json = (report.parent / "report.json").read_text()
    assert "site-b" in report_json and reason in report_json
    # The query job crosses the same federation (site-a allows it; site-b does not).
    from mindcommons.disclosure import run_query

    queried = run_query(
        fed, by=["language"], statistic="count", epsilon=0.5, project="local",
        sites=["site-a", "site-b"], timeout=300,
    )  # fmt: skip
    assert queried.total_count is not None
    assert "site-b" in queried.missing and "query" in queried.missing["site-b"]
    # CANARY: nothing that crossed the federation, nor the report, holds the note text
    replies = dump.read_text(encoding="utf-8")
    assert '"site-a"' in replies and '"metrics"' in replies  # the dump did capture replies
    assert CANARY not in replies
    for path in report.parent.rglob("*"):
        if path.is_file():
            assert CANARY.encode() not in path.read_bytes(), path
    crossed = [*fed.federation_dir().glob("superlink.db*"), *fed.federation_dir().glob("logs/*")]
    assert fed.federation_dir() / "superlink.db" in crossed
    for path in crossed:  # the SuperLink's state and every federation process log
        assert CANARY.encode() not in path.read_bytes(), path
    # ... while the text is really at the site (the test could fail)
    from mindcommons.repository import SiteRepository

    with SiteRepository.for_site(fed, "site-a") as repo:  # (encrypted at rest, readable here)
        assert any(CANARY in text for text in repo.document_texts().values())


@pytest.mark.slow
def test_dropout_then_down_leaves_nothing(fed: Settings) -> None:
    state = launcher.up(fed)
    victim = state.nodes["site-c"]["pid"]
    log = Path(state.log_dir) / "supernode-site-c.log"
    seen = log.read_text(errors="replace").count("Receiving: query.job")

    def kill_when_job_arrives() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if log.read_text(errors="replace").count("Receiving: query.job") > seen:
                os.killpg(victim, signal.SIGKILL)
                return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_when_job_arrives)
    killer.start()
    result = run_job(fed, {"job": "count", "hold_seconds": 8.0}, timeout=45)
    killer.join()
    assert not launcher.pid_alive(victim)
    assert result["sites_ok"] == ["site-a", "site-b"]
    assert list(result["missing"]) == ["site-c"]
    assert "no reply" in result["missing"]["site-c"] or "error" in result["missing"]["site-c"]

    ours = _group_pids(state)
    assert state.superlink_pid in ours
    stopped = launcher.down(fed)
    assert state.superlink_pid in stopped
    assert not _group_pids(state)
    assert not (fed.federation_dir() / "state.json").exists()
    assert launcher.status(fed)["up"] is False


def test_every_site_job_is_audited_and_a_broken_log_releases_nothing(tmp_path: Path) -> None:
    from mindcommons.governance import AuditLog

    settings = make_home(tmp_path, {"site-a": 3})
    home, site_dir = settings.resolved_home(), settings.site_dir("site-a")
    ok = run_site_job("site-a", home, {"job": "count", "run_id": "r1"})
    refused = run_site_job("site-a", home, {"job": "export_notes", "run_id": "r2"})
    assert ok["status"] == "ok" and refused["status"] == "refused"
    log = AuditLog.for_site(site_dir)
    jobs = [e for e in log.entries() if e.subject.startswith("job:")]
    assert [(e.kind, e.actor) for e in jobs] == [
        ("release", "coordinator:r1"),
        ("job_refused", "coordinator:r2"),
    ]
    assert log.verify().ok
    # A log whose tail was cut no longer matches its head: the site stops releasing.
    path = site_dir / "audit.log.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:-1]), encoding="utf-8")
    blocked = run_site_job("site-a", home, {"job": "count", "run_id": "r3"})
    assert blocked["status"] == "error"
    assert blocked["reason"].startswith("audit log refused at site-a")
    assert blocked["payload"] == {}
