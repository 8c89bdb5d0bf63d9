"""Document ciphertexts in bulk: encrypt legacy plaintext, check, decrypt, re-encrypt."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, func, select, update
from sqlalchemy.orm import Session

from mindcommons.repository.crypto import Keyring, document_aad
from mindcommons.repository.models import Dataset, Document, Participant
from mindcommons.repository.store import DocKey, chunks

CHUNK_ROWS = 1000


@dataclass(frozen=True)
class Rotation:
    """What ``SiteRepository.rotate_text_key`` did."""

    new_key_id: str
    reencrypted: int
    dropped_key_ids: tuple[str, ...]
    kept_key_ids: tuple[str, ...]  # old keys still used by rows written meanwhile


def label(row: Row[Any]) -> str:
    return f"document {row.document_id} (participant {row.participant_id}, dataset {row.dataset})"


def _rows(session: Session, ids: list[int] | None = None) -> Iterator[Any]:
    stmt = (
        select(
            Document.id,
            Document.text,
            Document.text_key_id,
            Document.document_id,
            Participant.participant_id,
            Dataset.name.label("dataset"),
        )
        .join(Participant, Document.participant_pk == Participant.id)
        .join(Dataset, Participant.dataset_id == Dataset.id)
        .order_by(Document.id)
    )
    if ids is None:
        yield from session.execute(stmt)
        return
    for part in chunks(ids, CHUNK_ROWS):
        yield from session.execute(stmt.where(Document.id.in_(part)))


def decrypt_row(keyring: Keyring, row: Row[Any]) -> str:
    """The plaintext of one document row (legacy plaintext rows are returned as they are)."""
    if row.text_key_id is None:
        return str(row.text)
    aad = document_aad(row.dataset, row.participant_id, row.document_id)
    return keyring.decrypt(row.text_key_id, row.text, aad, label=label(row))


def _reseal(session: Session, keyring: Keyring, ids: list[int], *, rehash: bool) -> int:
    done = 0
    for part in chunks(ids, CHUNK_ROWS):
        updates = []
        for row in _rows(session, list(part)):
            text = decrypt_row(keyring, row)
            key_id, blob = keyring.encrypt(
                text, document_aad(row.dataset, row.participant_id, row.document_id)
            )
            change = {"id": row.id, "text": blob, "text_key_id": key_id}
            if rehash:
                change["content_hash"] = keyring.content_hash(text)
            updates.append(change)
        if updates:
            session.execute(update(Document), updates)
        done += len(updates)
    return done


def encrypt_plaintext(session: Session, keyring: Keyring) -> int:
    """Encrypt rows still in plaintext (stored before revision 0003); re-key their hashes."""
    ids = list(session.scalars(select(Document.id).where(Document.text_key_id.is_(None))))
    return _reseal(session, keyring, ids, rehash=True) if ids else 0


def reencrypt_all(session: Session, keyring: Keyring) -> int:
    """Re-encrypt every document under the keyring's current key; return how many."""
    ids = list(session.scalars(select(Document.id).order_by(Document.id)))
    return _reseal(session, keyring, ids, rehash=False)


def key_ids_in_use(session: Session) -> dict[str, int]:
    """Key id -> number of documents sealed with it."""
    stmt = (
        select(Document.text_key_id, func.count())
        .where(Document.text_key_id.is_not(None))
        .group_by(Document.text_key_id)
    )
    return {str(k): int(n) for k, n in session.execute(stmt)}


def check_readable(session: Session, keyring: Keyring) -> None:
    """Decrypt one document per key id in use: a wrong keyring fails here, clearly."""
    firsts = select(func.min(Document.id)).group_by(Document.text_key_id)
    ids = [int(i) for i in session.scalars(firsts)]
    for row in _rows(session, ids):
        decrypt_row(keyring, row)


def document_texts(session: Session, keyring: Keyring) -> dict[DocKey, str]:
    """(participant_id, document_id) -> decrypted text, for every document."""
    return {
        (row.participant_id, row.document_id): decrypt_row(keyring, row) for row in _rows(session)
    }
