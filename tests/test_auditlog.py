"""The audit log is append-only and hash-chained: any edit, deletion, reordering,
truncation or keyless rewrite is detected; concurrent writers keep one valid chain."""

from __future__ import annotations

import json
import multiprocessing
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mindcommons.cli import auditlog_cmd  # noqa: F401  (registers ``audit-log``)
from mindcommons.cli.app import app
from mindcommons.errors import ConfigError, InputError
from mindcommons.governance import AuditLog, EventKind, record_event
from mindcommons.governance.auditentry import GENESIS, Entry
from mindcommons.governance.auditexport import manifest_path, read_export, verify_export

SITE = "site-a"


def filled(site_dir: Path, n: int = 6) -> AuditLog:
    log = AuditLog.for_site(site_dir)
    kinds = [EventKind.LOGIN, EventKind.INGEST, EventKind.JOB, EventKind.RELEASE]
    for i in range(n):
        log.append(
            f"user-{i % 2}", kinds[i % len(kinds)], site=SITE, subject=f"run:{i}",
            details={"documents": 10 * i, "job": "evaluate", "ok": i % 3 != 0},
        )  # fmt: skip
    return log


def lines(log: AuditLog) -> list[str]:
    return log.path.read_text(encoding="utf-8").splitlines(keepends=True)


def write_lines(log: AuditLog, rows: list[str]) -> None:
    log.path.write_text("".join(rows), encoding="utf-8")


def rehash_chain(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What an attacker without the key can do: recompute every hash consistently."""
    prev, out = GENESIS, []
    for seq, row in enumerate(rows, start=1):
        entry = Entry.from_json({**row, "seq": seq, "prev_hash": prev})
        digest = entry.compute_hash()
        out.append({**entry.to_json(), "hash": digest})
        prev = digest
    return out


def test_append_links_entries_and_verifies(tmp_path: Path) -> None:
    log = filled(tmp_path / SITE)
    entries = list(log.entries())
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5, 6]
    assert entries[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in pairwise(entries))
    assert all(e.compute_hash() == e.hash and e.mac for e in entries)
    assert entries[2].details == {"documents": 20, "job": "evaluate", "ok": True}
    assert entries[0].time.endswith("Z") and entries[0].kind == "login"
    head = log.head()
    assert head is not None and (head["seq"], head["hash"]) == (6, entries[-1].hash)
    result = log.verify()
    assert result.ok, result.problems
    assert (result.checked, result.last_seq, result.macs_checked) == (6, 6, True)
    assert log.verify(anchor=(3, entries[2].hash)).ok
    assert not log.verify(anchor=(3, entries[3].hash)).ok


def test_edit_of_a_middle_entry_names_its_seq(tmp_path: Path) -> None:
    log = filled(tmp_path / SITE)
    rows = lines(log)
    data = json.loads(rows[2])
    data["details"]["documents"] = 999
    rows[2] = json.dumps(data) + "\n"
    write_lines(log, rows)
    result = log.verify()
    assert not result.ok
    assert any("seq 3" in p and "hash mismatch" in p for p in result.problems)
    # Re-hashing the edited entry moves the break to the link with seq 4 and the MAC.
    data["hash"] = Entry.from_json(data).compute_hash()
    rows[2] = json.dumps(data) + "\n"
    write_lines(log, rows)
    problems = log.verify().problems
    assert any("seq 4" in p and "prev_hash" in p for p in problems)
    assert any("seq 3" in p and "MAC mismatch" in p for p in problems)


def test_deleted_entry_is_detected(tmp_path: Path) -> None:
    log = filled(tmp_path / SITE)
    rows = lines(log)
    write_lines(log, rows[:3] + rows[4:])
    result = log.verify()
    assert not result.ok
    assert any("seq 4 missing" in p for p in result.problems)
    assert any("seq 5" in p and "prev_hash" in p for p in result.problems)


def test_swapped_entries_are_detected(tmp_path: Path) -> None:
    log = filled(tmp_path / SITE)
    rows = lines(log)
    rows[1], rows[2] = rows[2], rows[1]
    write_lines(log, rows)
    result = log.verify()
    assert not result.ok
    assert any("seq 2" in p and "out of order" in p for p in result.problems)


def test_truncated_tail_is_caught_by_the_head(tmp_path: Path) -> None:
    log = filled(tmp_path / SITE)
    write_lines(log, lines(log)[:4])
    result = log.verify()
    assert not result.ok
    assert any("truncated" in p and "seq 6" in p for p in result.problems)
    # Appending would re-use seq 5 and 6 and hide the cut: the log fails closed instead.
    with pytest.raises(InputError, match="refusing to append"):
        log.append("u", EventKind.READ, site=SITE, subject="doc:1", details={})
    assert len(lines(log)) == 4
    (tmp_path / SITE / "audit.head").unlink()  # removing the anchor too is also caught
    assert any("head anchor missing" in p for p in log.verify().problems)


def test_interrupted_append_is_tolerated_with_the_key(tmp_path: Path) -> None:
    log = filled(tmp_path / SITE)
    head_file = tmp_path / SITE / "audit.head"
    before = head_file.read_text(encoding="utf-8")
    log.append("u", EventKind.READ, site=SITE, subject="doc:1", details={})
    head_file.write_text(before, encoding="utf-8")  # crash after the entry, before the head
    result = log.verify()
    assert result.ok, result.problems
    assert any(n.startswith("seq 7:") and "interrupted" in n for n in result.notes)
    assert not AuditLog(log.path).verify().ok  # without the key seq 7 is unanchored
    assert log.append("u", EventKind.READ, site=SITE, subject="doc:2", details={}).seq == 8
    assert log.verify().ok


def test_consistent_rewrite_without_the_key_is_caught(tmp_path: Path) -> None:
    log = filled(tmp_path / SITE)
    rows = [json.loads(r) for r in lines(log)]
    rows[1]["details"]["documents"] = 0  # rewrite history, then fix every hash and the head
    forged = rehash_chain([{k: v for k, v in r.items() if k != "mac"} for r in rows])
    write_lines(log, [json.dumps(r) + "\n" for r in forged])
    head_file = tmp_path / SITE / "audit.head"
    head = json.loads(head_file.read_text(encoding="utf-8"))
    head_file.write_text(json.dumps({**head, "hash": forged[-1]["hash"]}), encoding="utf-8")
    # The chain alone is consistent: an unkeyed check cannot tell ...
    unkeyed = AuditLog(log.path).verify()
    assert unkeyed.ok, unkeyed.problems
    # ... but the site key can: the entries lack valid MACs and the head's MAC is wrong.
    result = log.verify()
    assert not result.ok
    assert any("seq 2" in p and "MAC" in p for p in result.problems)
    assert any("head anchor: MAC mismatch" in p for p in result.problems)


def _append_many(site_dir: str, actor: str, count: int) -> None:
    log = AuditLog.for_site(Path(site_dir))
    for i in range(count):
        log.append(actor, EventKind.READ, site=SITE, subject=f"doc:{i}", details={"i": i})


def test_concurrent_appends_from_two_processes_keep_one_chain(tmp_path: Path) -> None:
    site_dir = tmp_path / SITE
    AuditLog.for_site(site_dir)  # create the key before the race
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(site_dir), a, 60)) for a in "pq"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    log = AuditLog.for_site(site_dir)
    result = log.verify()
    assert result.ok, result.problems
    entries = list(log.entries())
    assert [e.seq for e in entries] == list(range(1, 121))
    assert sorted(e.actor for e in entries) == ["p"] * 60 + ["q"] * 60


@pytest.mark.parametrize(
    "details",
    [
        {"summary": "patient reports low mood and " + "x" * 200},
        {"note": "short"},
        {"result": {"Text": "hi"}},
        {"items": [{"content": "c"}]},
        {"score": float("nan")},
        {"when": object()},
    ],
)
def test_details_with_raw_text_are_refused(tmp_path: Path, details: dict[str, Any]) -> None:
    log = filled(tmp_path / SITE, n=2)
    before = log.path.read_bytes()
    with pytest.raises(InputError, match="details"):
        log.append("u", EventKind.READ, site=SITE, subject="doc:1", details=details)
    assert log.path.read_bytes() == before
    with pytest.raises(InputError, match="kind"):
        log.append("u", "teleport", site=SITE, subject="x", details={})


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export_round_trip_and_tamper(tmp_path: Path, fmt: str) -> None:
    log = filled(tmp_path / SITE)
    out = tmp_path / "auditor" / f"audit.{fmt}"
    manifest = log.export(out, fmt)
    assert manifest["entries"] == 6 and manifest["verification"]["ok"]
    head = log.head()
    assert head is not None and manifest["head"] == {"seq": 6, "hash": head["hash"]}
    assert json.loads(manifest_path(out).read_text(encoding="utf-8")) == manifest
    assert read_export(out) == list(log.entries())
    assert verify_export(out).ok
    text = out.read_text(encoding="utf-8").replace("user-1", "user-9", 1)
    out.write_text(text, encoding="utf-8")
    result = verify_export(out)
    assert not result.ok
    assert any("hash mismatch" in p for p in result.problems)
    assert any("SHA-256" in p for p in result.problems)


def test_record_event_uses_the_site_folder(tmp_path: Path) -> None:
    site_dir = tmp_path / SITE
    entry = record_event(site_dir, "policy_change", subject="site.toml",
                         details={"min_release_n": [10, 20]})  # fmt: skip
    assert (entry.site, entry.kind, entry.seq) == (SITE, "policy_change", 1)
    assert entry.actor.startswith("os:")
    assert AuditLog.for_site(site_dir).verify().ok


def test_cli_verify_export_show(tmp_path: Path) -> None:
    runner = CliRunner()
    log = filled(tmp_path / "sites" / SITE)
    base = ["--site", SITE, "--home", str(tmp_path)]
    ok = runner.invoke(app, ["audit-log", "verify", *base])
    assert ok.exit_code == 0, ok.output
    assert "intact (6 entries" in ok.output

    out = tmp_path / "export.csv"
    exp = runner.invoke(app, ["audit-log", "export", *base, "--out", str(out), "--format", "csv"])
    assert exp.exit_code == 0, exp.output
    assert read_export(out)[-1].kind == "export"  # the export is itself logged
    shown = runner.invoke(app, ["audit-log", "show", *base, "--last", "2"])
    assert shown.exit_code == 0
    assert [ln.split()[0] for ln in shown.output.splitlines()] == ["6", "7"]

    rows = lines(log)
    write_lines(log, rows[:2] + rows[3:])
    bad = runner.invoke(app, ["audit-log", "verify", *base])
    assert bad.exit_code == 1
    assert "seq 3 missing" in bad.output

    missing = runner.invoke(app, ["audit-log", "verify", "--site", "nope", "--home", str(tmp_path)])
    assert isinstance(missing.exception, ConfigError)


def test_ingest_and_policy_changes_are_logged(tmp_path: Path) -> None:
    """Wired call sites: a first ingest and a steward's policy edit land in the chain."""
    from mindcommons.ingest import ingest_path
    from mindcommons.policy import set_allowed_jobs
    from mindcommons.settings import load_settings

    settings = load_settings(tmp_path / "home")
    batch = tmp_path / "batch.jsonl"
    rows = [
        {"type": "participant", "participant_id": "p1"},
        {"type": "document", "participant_id": "p1", "document_id": "d1",
         "kind": "clinical_note", "language": "en", "date": "2024-01-02",
         "text": "Sleeps poorly most nights.", "deid_status": "synthetic"},
    ]  # fmt: skip
    batch.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    ingest_path(batch, "site-a", settings=settings)
    site_dir = settings.site_dir("site-a")
    set_allowed_jobs(site_dir, ["count"])
    log = AuditLog.for_site(site_dir)
    kinds = [e.kind for e in log.entries()]
    assert kinds.count("policy_change") == 2  # created with defaults, then edited
    assert kinds.count("ingest") == 1
    ingest = next(e for e in log.entries() if e.kind == "ingest")
    assert ingest.details["inserted"]["document"] == 1
    assert "Sleeps poorly" not in (site_dir / "audit.log.jsonl").read_text(encoding="utf-8")
    edit = [e for e in log.entries() if e.kind == "policy_change"][-1]
    assert edit.details == {
        "allowed_jobs": {"old": ["evaluate", "count", "query"], "new": ["count"]}
    }
    assert log.verify().ok
