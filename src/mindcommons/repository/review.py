"""The de-identification review queue and per-document de-identification records."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mindcommons.repository.models import Dataset, Document, Participant, ReviewItem

DocKey = tuple[str, str]  # (participant_id, document_id)


@dataclass(frozen=True)
class ReviewEntry:
    """One document waiting for (or given) a human de-identification check."""

    review_id: int
    dataset: str
    participant_id: str
    document_id: str
    batch_id: int | None
    status: str
    created_at: dt.datetime  # naive UTC


def review_queue(session: Session, status: str | None) -> list[ReviewEntry]:
    """See ``SiteRepository.review_queue``; oldest first."""
    stmt = (
        select(
            ReviewItem.id,
            Dataset.name,
            Participant.participant_id,
            Document.document_id,
            ReviewItem.batch_id,
            ReviewItem.status,
            ReviewItem.created_at,
        )
        .join(Document, ReviewItem.document_pk == Document.id)
        .join(Participant, Document.participant_pk == Participant.id)
        .join(Dataset, Participant.dataset_id == Dataset.id)
        .order_by(ReviewItem.id)
    )
    if status is not None:
        stmt = stmt.where(ReviewItem.status == status)
    return [ReviewEntry(*row) for row in session.execute(stmt)]


def deid_records(session: Session) -> dict[DocKey, dict[str, Any]]:
    """See ``SiteRepository.deid_records``."""
    stmt = (
        select(Participant.participant_id, Document.document_id, Document.deid_record)
        .join(Participant, Document.participant_pk == Participant.id)
        .where(Document.deid_record.is_not(None))
    )
    return {(pid, doc): dict(rec) for pid, doc, rec in session.execute(stmt)}
