"""Datasets and their consent: the purposes each dataset at a site allows.

A dataset is what ingest stored under one name (``Dataset`` in the site repository;
every batch belongs to one). Its ``allowed_purposes`` list is the consent: a job whose
purpose is not on the list of every dataset it reads is refused at the site. A dataset
ingested without a consent declaration (an empty list) may be used only by the site's
own project ``local``; a steward records its consent with ``set_consent``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mindcommons.errors import ConfigError
from mindcommons.governance.auditentry import EventKind
from mindcommons.governance.auditlog import record_event
from mindcommons.governance.permissions import Op, Principal, authorize, parse_purposes
from mindcommons.settings import Settings, validate_site_name


@dataclass(frozen=True)
class DatasetInfo:
    """What the site's repository records about one dataset (no person-level data)."""

    site: str
    name: str
    description: str
    source: str
    licence: str
    consent_basis: str
    allowed_purposes: tuple[str, ...]
    languages: tuple[str, ...]
    collection_start: dt.date | None
    collection_end: dt.date | None
    participants: int
    documents: int
    batches: int
    first_ingest: dt.datetime | None
    last_ingest: dt.datetime | None

    def to_json(self) -> dict[str, Any]:
        out = dict(vars(self))
        for key in ("collection_start", "collection_end", "first_ingest", "last_ingest"):
            value = out[key]
            out[key] = value.isoformat() if value is not None else None
        out["allowed_purposes"] = list(self.allowed_purposes)
        out["languages"] = list(self.languages)
        return out


def _rows(session: Session, site: str) -> list[DatasetInfo]:
    from mindcommons.repository.models import Dataset, Document, IngestBatch, Participant, Site

    people = dict(
        session.execute(
            select(Participant.dataset_id, func.count()).group_by(Participant.dataset_id)
        ).all()
    )
    docs = dict(
        session.execute(
            select(Participant.dataset_id, func.count())
            .join(Document, Document.participant_pk == Participant.id)
            .group_by(Participant.dataset_id)
        ).all()
    )
    batches = {
        ds: (n, first, last)
        for ds, n, first, last in session.execute(
            select(IngestBatch.dataset_id, func.count(), func.min(IngestBatch.created_at),
                   func.max(IngestBatch.created_at)).group_by(IngestBatch.dataset_id)
        ).all()
    }  # fmt: skip
    out = []
    stmt = select(Dataset).join(Site, Dataset.site_id == Site.id).where(Site.name == site)
    for ds in session.scalars(stmt.order_by(Dataset.name)):
        n_batches, first, last = batches.get(ds.id, (0, None, None))
        out.append(DatasetInfo(
            site=site, name=ds.name, description=ds.description, source=ds.source,
            licence=ds.licence, consent_basis=ds.consent_basis,
            allowed_purposes=tuple(sorted(ds.allowed_purposes or [])),
            languages=tuple(ds.languages or []), collection_start=ds.collection_start,
            collection_end=ds.collection_end, participants=int(people.get(ds.id, 0)),
            documents=int(docs.get(ds.id, 0)), batches=int(n_batches),
            first_ingest=first, last_ingest=last,
        ))  # fmt: skip
    return out


def site_datasets(settings: Settings, site: str) -> list[DatasetInfo]:
    """Every dataset stored at ``site`` (used by the site guard; no authorization)."""
    from mindcommons.repository import SiteRepository

    validate_site_name(site)
    with SiteRepository.for_site(settings, site) as repo, Session(repo.engine) as session:
        return _rows(session, site)


def set_consent(
    settings: Settings,
    actor: Principal,
    site: str,
    dataset: str,
    purposes: list[str] | tuple[str, ...] | str,
    *,
    basis: str | None = None,
) -> DatasetInfo:
    """The steward records which purposes ``dataset``'s consent allows (and its basis).

    Replaces the list (an empty list: only the site's own ``local`` use). Recorded in the
    site's audit log as a policy change.
    """
    from mindcommons.repository import SiteRepository
    from mindcommons.repository.models import Dataset, Site

    authorize(actor, Op.DATASET_CONSENT, site=validate_site_name(site))
    chosen = [p.value for p in parse_purposes(purposes)]
    site_dir = settings.site_dir(site)
    if not site_dir.is_dir():
        raise ConfigError(f"no site '{site}' at {site_dir}: check --site and --home")
    with SiteRepository.for_site(settings, site) as repo, Session(repo.engine) as session:
        with session.begin():
            row = session.scalar(
                select(Dataset).join(Site, Dataset.site_id == Site.id)
                .where(Site.name == site, Dataset.name == dataset)
            )  # fmt: skip
            if row is None:
                known = ", ".join(d.name for d in _rows(session, site)) or "none"
                raise ConfigError(f"no dataset '{dataset}' at {site} (datasets: {known})")
            old = {"allowed_purposes": sorted(row.allowed_purposes or []),
                   "consent_basis": row.consent_basis}  # fmt: skip
            row.allowed_purposes = chosen
            if basis is not None:
                row.consent_basis = basis[:2000]
        info = next(d for d in _rows(session, site) if d.name == dataset)
    details: dict[str, Any] = {"allowed_purposes": {"old": old["allowed_purposes"], "new": chosen}}
    if basis is not None and basis != old["consent_basis"]:
        details["consent_basis"] = {"changed": True, "length": len(basis)}
    record_event(site_dir, EventKind.POLICY_CHANGE, actor=actor.label,
                 subject=f"dataset:{dataset}"[:200], details=details)  # fmt: skip
    return info
