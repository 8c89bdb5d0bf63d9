"""SQLAlchemy 2 typed ORM models of a site repository (one database per site)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names, so migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID_LEN = 100  # participant_id, document_id (records.py: max_length=100)
NAME_LEN = 200


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Site(Base):
    __tablename__ = "site"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)


class Dataset(Base):
    __tablename__ = "dataset"
    __table_args__ = (UniqueConstraint("site_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(NAME_LEN))
    description: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(Text, default="")
    licence: Mapped[str] = mapped_column(Text, default="")
    consent_basis: Mapped[str] = mapped_column(Text, default="")
    allowed_purposes: Mapped[list[str]] = mapped_column(JSON, default=list)
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    collection_start: Mapped[dt.date | None] = mapped_column(Date)
    collection_end: Mapped[dt.date | None] = mapped_column(Date)


class Participant(Base):
    __tablename__ = "participant"
    __table_args__ = (UniqueConstraint("dataset_id", "participant_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("dataset.id", ondelete="CASCADE"))
    participant_id: Mapped[str] = mapped_column(String(ID_LEN))
    age_band: Mapped[str] = mapped_column(String(NAME_LEN), default="")
    gender: Mapped[str] = mapped_column(String(NAME_LEN), default="")
    ethnicity_local: Mapped[str] = mapped_column(String(NAME_LEN), default="")
    ethnicity_category: Mapped[str] = mapped_column(String(NAME_LEN), default="")
    country: Mapped[str] = mapped_column(String(NAME_LEN), default="")
    primary_language: Mapped[str] = mapped_column(String(NAME_LEN), default="")


def _participant_fk() -> Mapped[int]:
    return mapped_column(ForeignKey("participant.id", ondelete="CASCADE"), index=True)


class Document(Base):
    __tablename__ = "document"
    __table_args__ = (UniqueConstraint("participant_pk", "document_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_pk: Mapped[int] = _participant_fk()
    document_id: Mapped[str] = mapped_column(String(ID_LEN))
    kind: Mapped[str] = mapped_column(String(50), index=True)
    language: Mapped[str] = mapped_column(String(20))
    date: Mapped[dt.date] = mapped_column(Date)
    # base64(nonce || AES-256-GCM ciphertext) under key ``text_key_id`` (crypto.py); a
    # NULL key id marks plaintext left by revision 0002, encrypted when a keyring opens it.
    text: Mapped[str] = mapped_column(Text)
    text_key_id: Mapped[str | None] = mapped_column(String(40))
    content_hash: Mapped[str] = mapped_column(String(64))  # HMAC-SHA256 hex of the text
    deid_status: Mapped[str] = mapped_column(String(20))
    # What de-identification did (mode, counts by type, detector versions); never text.
    deid_record: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))


class Measure(Base):
    __tablename__ = "measure"
    __table_args__ = (UniqueConstraint("participant_pk", "instrument", "date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_pk: Mapped[int] = _participant_fk()
    instrument: Mapped[str] = mapped_column(String(NAME_LEN))
    date: Mapped[dt.date] = mapped_column(Date)
    items: Mapped[list[int]] = mapped_column(JSON)
    total: Mapped[int] = mapped_column(Integer)


class Signal(Base):
    __tablename__ = "signal"
    __table_args__ = (UniqueConstraint("participant_pk", "name", "time"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_pk: Mapped[int] = _participant_fk()
    name: Mapped[str] = mapped_column(String(NAME_LEN))
    unit: Mapped[str] = mapped_column(String(NAME_LEN), default="")
    value: Mapped[float] = mapped_column(Double)
    time: Mapped[dt.datetime] = mapped_column(DateTime)  # naive UTC


class Outcome(Base):
    __tablename__ = "outcome"
    __table_args__ = (UniqueConstraint("participant_pk", "name", "date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_pk: Mapped[int] = _participant_fk()
    name: Mapped[str] = mapped_column(String(NAME_LEN))
    value: Mapped[str] = mapped_column(Text)
    date: Mapped[dt.date] = mapped_column(Date)


class IngestBatch(Base):
    __tablename__ = "ingest_batch"

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("dataset.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)  # naive UTC
    source: Mapped[str] = mapped_column(Text, default="")
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    batch_hash: Mapped[str] = mapped_column(String(64))


class ReviewItem(Base):
    """A de-identified document sampled for a human check (one item per document)."""

    __tablename__ = "review_item"
    __table_args__ = (UniqueConstraint("document_pk"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    document_pk: Mapped[int] = mapped_column(ForeignKey("document.id", ondelete="CASCADE"))
    batch_id: Mapped[int | None] = mapped_column(
        ForeignKey("ingest_batch.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(String(20), index=True)  # pending, passed, failed
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)  # naive UTC


# Tables counted by SiteRepository.counts(), in dependency order.
COUNTED_TABLES: dict[str, type[Base]] = {
    "site": Site,
    "dataset": Dataset,
    "participant": Participant,
    "document": Document,
    "measure": Measure,
    "signal": Signal,
    "outcome": Outcome,
}
