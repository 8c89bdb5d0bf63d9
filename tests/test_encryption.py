"""Document text is encrypted at rest (AES-256-GCM, key outside the database), content
hashes are keyed, ciphertexts are bound to their row, and key rotation is all-or-nothing.
Runs on SQLite and PostgreSQL where a database is involved."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from mindcommons.cli import keys_cmd  # noqa: F401  (registers ``keys`` on the app)
from mindcommons.cli.app import app
from mindcommons.errors import ConfigError, PrerequisiteError
from mindcommons.governance.auditlog import AuditLog
from mindcommons.records import DatasetRecord, DocumentRecord, MeasureRecord, ParticipantRecord
from mindcommons.repository import SiteRepository, migrate
from mindcommons.repository.crypto import KEY_FILE_ENV, DecryptionError, Keyring
from mindcommons.repository.models import Document
from mindcommons.settings import Settings

DATASET = DatasetRecord(name="notes", languages=["en"])
DAY0 = dt.date(2024, 3, 1)
TEXTS = {
    "D1": "Zanzibar-Quokka reports waking at 4am and a flat mood.",
    "D2": "Marmalade-Heron says the new job is going well, sleeping fine.",
    "D3": "Obsidian-Walrus feels hopeless most days this fortnight.",
}


def batch() -> list[Any]:
    records: list[Any] = []
    for n, (doc_id, text) in enumerate(TEXTS.items()):
        pid = f"P{n}"
        records += [
            ParticipantRecord(participant_id=pid, age_band="25-34", gender="female"),
            DocumentRecord(
                participant_id=pid,
                document_id=doc_id,
                kind="clinical_note",
                language="en",
                date=DAY0,
                text=text,
                deid_status="synthetic",
            ),
            MeasureRecord(participant_id=pid, instrument="PHQ-9", date=DAY0, items=[1] * 9),
        ]
    return records


def raw_rows(repo: SiteRepository) -> dict[str, tuple[str, str | None, str]]:
    """document_id -> (text column, key id, content hash) exactly as stored."""
    stmt = select(Document.document_id, Document.text, Document.text_key_id, Document.content_hash)
    with Session(repo.engine) as session:
        return {d: (t, k, h) for d, t, k, h in session.execute(stmt)}


def stored_bytes(repo: SiteRepository, url: str) -> bytes:
    """SQLite: the database file and its journals; PostgreSQL: the raw document rows."""
    if make_url(url).get_backend_name() == "sqlite":
        path = Path(str(make_url(url).database))
        return b"".join(f.read_bytes() for f in [path, *path.parent.glob(path.name + "-*")])
    return json.dumps(list(raw_rows(repo).values())).encode()


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "text.keys"


def test_text_is_not_stored_in_the_clear(repo_url: str, keys: Path) -> None:
    with SiteRepository.open(repo_url, keyring_path=keys) as repo:
        result = repo.store_batch("s1", DATASET, batch(), source="t")
        assert result.inserted["document"] == 3
        data = stored_bytes(repo, repo_url)
        rows = raw_rows(repo)
        items = {i.document_id: i.text for i in repo.eval_items()}
        ring = repo.keyring
    for doc_id, text in TEXTS.items():
        assert text.split()[0].encode() not in data
        stored, key_id, digest = rows[doc_id]
        assert text not in stored
        assert key_id == ring.current
        assert digest != hashlib.sha256(text.encode()).hexdigest()  # keyed, not guessable
        assert items[doc_id] == text
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    saved = json.loads(keys.read_text())
    assert set(saved) >= {"current", "keys", "hash_key"} and saved["current"] in saved["keys"]


def test_reingest_changes_nothing_and_reopen_reads(repo_url: str, keys: Path) -> None:
    with SiteRepository.open(repo_url, keyring_path=keys) as repo:
        repo.store_batch("s1", DATASET, batch(), source="t")
        first = raw_rows(repo)
    with SiteRepository.open(repo_url, keyring_path=keys) as repo:
        again = repo.store_batch("s1", DATASET, batch(), source="t")
        assert again.inserted["document"] == 0 and again.unchanged["document"] == 3
        assert raw_rows(repo) == first
        assert {d: t for (_, d), t in repo.document_texts().items()} == TEXTS


def test_rotation_reencrypts_everything_and_drops_old_key(repo_url: str, keys: Path) -> None:
    with SiteRepository.open(repo_url, keyring_path=keys) as repo:
        repo.store_batch("s1", DATASET, batch(), source="t")
        old_key, before = repo.keyring.current, raw_rows(repo)
        rotation = repo.rotate_text_key()
        after = raw_rows(repo)
        assert rotation.reencrypted == 3 and rotation.dropped_key_ids == (old_key,)
        assert repo.key_usage() == {rotation.new_key_id: 3}
    for doc_id in TEXTS:
        assert after[doc_id][0] != before[doc_id][0]
        assert after[doc_id][2] == before[doc_id][2]  # the hash key survives rotations
    saved = json.loads(keys.read_text())
    assert saved["current"] == rotation.new_key_id and list(saved["keys"]) == [rotation.new_key_id]
    with SiteRepository.open(repo_url, keyring_path=keys) as repo:
        assert {i.document_id: i.text for i in repo.eval_items()} == TEXTS


def test_crash_mid_rotation_keeps_data_readable(
    repo_url: str, keys: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SiteRepository.open(repo_url, keyring_path=keys) as repo:
        repo.store_batch("s1", DATASET, batch(), source="t")
        old_key, before = repo.keyring.current, raw_rows(repo)
        real = Keyring.encrypt
        calls = []

        def failing(self: Keyring, text: str, aad: bytes) -> tuple[str, str]:
            calls.append(text)
            if len(calls) == 2:
                raise RuntimeError("power cut")
            return real(self, text, aad)

        monkeypatch.setattr(Keyring, "encrypt", failing)
        with pytest.raises(RuntimeError, match="power cut"):
            repo.rotate_text_key()
        monkeypatch.undo()
        assert raw_rows(repo) == before  # the transaction rolled back
    assert json.loads(keys.read_text())["current"] == old_key
    with SiteRepository.open(repo_url, keyring_path=keys) as repo:
        assert repo.key_usage() == {old_key: 3}
        assert {d: t for (_, d), t in repo.document_texts().items()} == TEXTS


def test_swapped_ciphertexts_are_detected(repo_url: str, keys: Path) -> None:
    with SiteRepository.open(repo_url, keyring_path=keys) as repo:
        repo.store_batch("s1", DATASET, batch(), source="t")
        rows = raw_rows(repo)
        with Session(repo.engine) as session, session.begin():
            for this, other in (("D1", "D2"), ("D2", "D1")):
                stmt = update(Document).where(Document.document_id == this)
                session.execute(stmt.values(text=rows[other][0]))
        with pytest.raises(DecryptionError) as caught:
            repo.eval_items()
    message = str(caught.value)
    assert "moved from another row" in message and str(keys) in message
    assert not any(text.split()[0] in message for text in TEXTS.values())


def test_wrong_or_missing_key_is_a_clear_error(repo_url: str, keys: Path, tmp_path: Path) -> None:
    with SiteRepository.open(repo_url, keyring_path=keys) as repo:
        repo.store_batch("s1", DATASET, batch(), source="t")
    other = tmp_path / "other.keys"
    with pytest.raises(PrerequisiteError, match=str(other)):
        SiteRepository.open(repo_url, keyring_path=other)  # another site's keys
    saved = json.loads(keys.read_text())
    forged = Keyring.generate(tmp_path / "forged.keys")
    forged.keys = {saved["current"]: forged.keys[forged.current]}  # same id, other bytes
    forged.current = saved["current"]
    with pytest.raises(DecryptionError, match="does not decrypt"):
        SiteRepository.open(repo_url, keyring=forged)
    keys.write_text("{not json")
    with pytest.raises(PrerequisiteError, match="unreadable"):
        SiteRepository.open(repo_url, keyring_path=keys)


def test_plaintext_rows_from_before_0003_are_encrypted_on_open(repo_url: str, keys: Path) -> None:
    with SiteRepository.open(repo_url, keyring_path=keys) as repo:
        repo.store_batch("s1", DATASET, batch(), source="t")
        with Session(repo.engine) as session, session.begin():  # as revision 0002 stored them
            for doc_id, text in TEXTS.items():
                legacy = {"text": text, "text_key_id": None}
                legacy["content_hash"] = hashlib.sha256(text.encode()).hexdigest()
                stmt = update(Document).where(Document.document_id == doc_id)
                session.execute(stmt.values(**legacy))
        migrate.downgrade(repo.engine, "0002")
        assert migrate.current_revision(repo.engine) == "0002"
    with SiteRepository.open(repo_url, keyring_path=keys) as repo:
        assert migrate.current_revision(repo.engine) == migrate.head_revision()
        assert all(key == repo.keyring.current for _, key, _ in raw_rows(repo).values())
        again = repo.store_batch("s1", DATASET, batch(), source="t")
        assert again.unchanged["document"] == 3 and again.inserted["document"] == 0
        assert {i.document_id: i.text for i in repo.eval_items()} == TEXTS
        with pytest.raises(RuntimeError, match="encrypted"):
            migrate.downgrade(repo.engine, "0002")  # would strand unreadable rows


def test_a_keyring_is_required_where_none_can_be_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    for url in ("postgresql+psycopg://u:secret@127.0.0.1:1/db", "sqlite://"):
        with pytest.raises(ConfigError, match=KEY_FILE_ENV) as caught:
            SiteRepository.open(url)
        assert "secret" not in str(caught.value)


def test_cli_rotate_and_status_record_an_audit_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    settings = Settings(home=tmp_path / "home", database_url="")
    with SiteRepository.for_site(settings, "site-a") as repo:
        repo.store_batch("site-a", DATASET, batch(), source="t")
        old_key = repo.keyring.current
    site_dir = settings.site_dir("site-a")
    assert (site_dir / "text.keys").is_file()
    runner = CliRunner()
    home = ["--home", str(settings.home)]
    rotated = runner.invoke(app, ["keys", "rotate", "--site", "site-a", *home])
    assert rotated.exit_code == 0, rotated.output
    assert "3 documents re-encrypted" in rotated.output
    shown = runner.invoke(app, ["keys", "status", "--site", "site-a", *home])
    assert shown.exit_code == 0 and old_key not in shown.output
    assert "(current): 3 documents, held" in shown.output
    log = AuditLog.for_site(site_dir)
    events = [e for e in log.entries() if e.kind == "key_rotation"]
    assert len(events) == 1 and events[0].details["reencrypted"] == 3
    assert events[0].details["dropped_key_ids"] == [old_key]
    assert log.verify().ok
    with SiteRepository.for_site(settings, "site-a") as repo:
        assert {i.document_id: i.text for i in repo.eval_items()} == TEXTS
    missing = runner.invoke(app, ["keys", "rotate", "--site", "nowhere", *home])
    assert missing.exit_code != 0
