"""A datasheet per dataset as Croissant JSON-LD with its Responsible-AI fields.

Written with ``mlcroissant`` from the site repository's own metadata (name, description,
source, licence, consent basis and purposes, languages, collection period, ingest
batches, de-identification) plus what the steward supplies (intended and prohibited
uses, collection, provenance, known gaps, ...), then validated by ``mlcroissant``.
The datasheet describes the data; it holds no record and points at no file (the data
never leaves the site), and its diversity profile obeys the site's release floor.

Croissant RAI mapping:
  provenance      -> rai:dataCollectionRawData (source, batches), rai:dataPreprocessingProtocol
  collection      -> rai:dataCollection, rai:dataCollectionType, rai:dataCollectionTimeFrame
  consent         -> rai:personalSensitiveInformation (consent basis, allowed purposes, de-id)
  intended uses   -> rai:dataUseCases
  prohibited uses -> rai:dataLimitations ("Prohibited use: ...")
  known gaps      -> rai:dataLimitations, rai:dataBiases (with the diversity comparison)
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mindcommons.datasheet.profile import Profile, Reference, build_site_profile
from mindcommons.errors import ConfigError, InputError, PrerequisiteError
from mindcommons.governance.auditentry import EventKind
from mindcommons.governance.auditlog import record_event
from mindcommons.governance.consent import DatasetInfo, site_datasets
from mindcommons.governance.permissions import Op, Principal, authorize
from mindcommons.settings import Settings, validate_site_name

DATASHEET_DIR = "datasheets"
STEWARD_FIELDS = (
    "intended_uses", "prohibited_uses", "known_gaps", "collection", "collection_type",
    "provenance", "biases", "social_impact", "maintenance", "url", "citation", "version",
)  # fmt: skip
_LISTS = {"intended_uses", "prohibited_uses", "known_gaps", "collection_type", "biases"}


@dataclass
class StewardFields:
    """What only the steward knows; from a JSON object with these keys (all optional)."""

    intended_uses: list[str] = field(default_factory=list)
    prohibited_uses: list[str] = field(default_factory=list)
    known_gaps: list[str] = field(default_factory=list)
    collection: str = ""
    collection_type: list[str] = field(default_factory=list)
    provenance: str = ""
    biases: list[str] = field(default_factory=list)
    social_impact: str = ""
    maintenance: str = ""
    url: str = ""
    citation: str = ""
    version: str = "1.0.0"

    @classmethod
    def read(cls, path: Path) -> StewardFields:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as err:
            raise InputError(f"cannot read ({err.strerror})", file=str(path)) from None
        except json.JSONDecodeError as err:
            raise InputError(f"not valid JSON ({err.msg})", file=str(path),
                             record=err.lineno) from None  # fmt: skip
        if not isinstance(data, dict):
            raise InputError("not a JSON object", file=str(path), expected="steward fields")
        out = cls()
        for key, value in data.items():
            if key not in STEWARD_FIELDS:
                raise InputError(f"unknown field '{key}'", file=str(path), field=key,
                                 expected=", ".join(STEWARD_FIELDS))  # fmt: skip
            if key in _LISTS:
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise InputError("not a list of strings", file=str(path), field=key)
            elif not isinstance(value, str):
                raise InputError("not a string", file=str(path), field=key)
            setattr(out, key, value)
        return out


def _date(value: dt.date | dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime(value.year, value.month, value.day)


def datasheet_metadata(
    info: DatasetInfo, fields: StewardFields, profile: Profile | None, deid: dict[str, Any]
) -> Any:
    """The ``mlcroissant.Metadata`` of one dataset (see the module doc for the mapping)."""
    try:
        import mlcroissant as mlc
    except ModuleNotFoundError as err:  # pragma: no cover - pinned in the lock file
        raise PrerequisiteError("datasheets need mlcroissant: pip install mlcroissant") from err

    purposes = ", ".join(info.allowed_purposes) or "none recorded (the site's own use only)"
    consent = [
        f"Consent basis: {info.consent_basis or 'not recorded'}",
        f"Purposes the consent allows: {purposes}",
        "Special-category health data (mental health); free text is de-identified at "
        f"ingest ({', '.join(sorted(deid)) or 'no documents'}) and encrypted at rest; "
        "records never leave the site, only disclosure-controlled statistics do.",
    ]
    gaps = list(fields.known_gaps)
    biases = list(fields.biases)
    if profile is not None:
        biases += profile.gaps()
        withheld = sorted(
            {d for d, rows in profile.dimensions.items() if any(r.count is None for r in rows)}
        )
        if withheld:
            gaps.append(
                f"Categories under the site's release floor ({profile.floor}) are withheld "
                f"in the diversity profile: {', '.join(withheld)}"
            )
    limitations = gaps + [f"Prohibited use: {u}" for u in fields.prohibited_uses]
    provenance = fields.provenance or f"Held by site {info.site}"
    raw = (
        f"{provenance}. Source: {info.source or 'not recorded'}. "
        f"{info.batches} ingest batch(es)"
        + (f", {info.first_ingest:%Y-%m-%d} to {info.last_ingest:%Y-%m-%d}"
           if info.first_ingest and info.last_ingest else "")
        + f"; {info.participants} participants, {info.documents} documents."
    )  # fmt: skip
    timeframe = [d for d in (_date(info.collection_start), _date(info.collection_end)) if d]
    uses = list(fields.intended_uses) or [f"Consented purposes: {purposes}"]
    from mlcroissant._src.core.context import Context, CroissantVersion

    return mlc.Metadata(
        ctx=Context(conforms_to=CroissantVersion.V_1_1),
        name=info.name,
        description=info.description or f"Dataset {info.name} held at {info.site}",
        url=fields.url or f"https://mindcommons.invalid/{info.site}/{info.name}",
        license=info.licence or "not for redistribution (held at the site)",
        cite_as=fields.citation or f"{info.name} ({info.site}), mindcommons datasheet",
        version=fields.version,
        in_language=list(info.languages) or None,
        date_published=_date(dt.date.today()),
        data_collection=fields.collection or "Routine clinical records ingested at the site",
        data_collection_type=fields.collection_type or None,
        data_collection_raw_data=raw,
        data_collection_timeframe=timeframe or None,
        data_preprocessing_protocol=[
            "De-identification at ingest: " + ", ".join(sorted(deid))
            if deid
            else "No free-text documents",
            "Document text encrypted at rest (AES-256-GCM, key outside the database)",
        ],
        data_use_cases=uses,
        data_limitations=limitations or None,
        data_biases=biases or None,
        data_social_impact=fields.social_impact or None,
        personal_sensitive_information=consent,
        data_release_maintenance_plan=fields.maintenance or None,
    )


def _deid_modes(settings: Settings, site: str, dataset: str) -> dict[str, int]:
    """De-identification mode -> documents (from the stored de-id records; no text)."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from mindcommons.repository import SiteRepository
    from mindcommons.repository.models import Dataset, Document, Participant

    out: dict[str, int] = {}
    stmt = (
        select(Document.deid_status, Document.deid_record)
        .join(Participant, Document.participant_pk == Participant.id)
        .join(Dataset, Participant.dataset_id == Dataset.id)
        .where(Dataset.name == dataset)
    )
    with SiteRepository.for_site(settings, site) as repo, Session(repo.engine) as session:
        for status, record in session.execute(stmt):
            mode = str((record or {}).get("mode") or status or "unknown")[:40]
            out[mode] = out.get(mode, 0) + 1
    return out


def validate_jsonld(data: dict[str, Any]) -> list[str]:
    """Errors mlcroissant finds in a Croissant document (warnings are not errors)."""
    import mlcroissant as mlc

    logging.getLogger("absl").setLevel(logging.ERROR)
    try:
        ds = mlc.Dataset(jsonld=data)
    except mlc.ValidationError as err:
        return [str(err)]
    return [str(e) for e in ds.metadata.issues.errors]


def write_datasheet(
    settings: Settings,
    actor: Principal,
    site: str,
    dataset: str,
    *,
    fields: StewardFields | None = None,
    reference: Reference | None = None,
    out: Path | None = None,
) -> Path:
    """Write ``<site>/datasheets/<dataset>.croissant.json`` (or ``out``), validated by
    mlcroissant first, and the diversity profile next to it (``<dataset>.profile.json``).

    Stewards only. Recorded in the site's audit log as an export.
    """
    authorize(actor, Op.DATASHEET_WRITE, site=validate_site_name(site))
    site_dir = settings.site_dir(site)
    if not site_dir.is_dir():
        raise ConfigError(f"no site '{site}' at {site_dir}: check --site and --home")
    found = [d for d in site_datasets(settings, site) if d.name == dataset]
    if not found:
        raise ConfigError(f"no dataset '{dataset}' at {site}")
    profile = build_site_profile(settings, site, dataset, reference)
    meta = datasheet_metadata(found[0], fields or StewardFields(), profile,
                              _deid_modes(settings, site, dataset))  # fmt: skip
    data: dict[str, Any] = meta.to_json()
    problems = validate_jsonld(data)
    if problems:
        raise InputError("the datasheet is not valid Croissant: " + "; ".join(problems)[:500],
                         record=f"dataset {dataset}")  # fmt: skip
    target = out or site_dir / DATASHEET_DIR / f"{_safe(dataset)}.croissant.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n",
                   encoding="utf-8")  # fmt: skip
    tmp.replace(target)
    # The profile's table goes next to it (Croissant has no slot for a table of counts;
    # its gaps are in rai:dataBiases / rai:dataLimitations above).
    side = target.with_name(target.name.replace(".croissant.json", "") + ".profile.json")
    side.write_text(json.dumps(profile.to_json(), indent=2, ensure_ascii=False) + "\n",
                    encoding="utf-8")  # fmt: skip
    record_event(site_dir, EventKind.EXPORT, actor=actor.label,
                 subject=f"datasheet:{dataset}"[:200],
                 details={"file": target.name[:200], "fields": len(data)})  # fmt: skip
    return target


def read_datasheet(settings: Settings, actor: Principal, site: str, dataset: str) -> dict[str, Any]:
    """A datasheet written earlier (public: every role may read)."""
    authorize(actor, Op.DATASHEET_READ)
    path = settings.site_dir(site) / DATASHEET_DIR / f"{_safe(dataset)}.croissant.json"
    if not path.exists():
        raise ConfigError(f"no datasheet for '{dataset}' at {site}; a steward writes it with "
                          f"'mindcommons datasets datasheet --site {site} {dataset}'")  # fmt: skip
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:120] or "dataset"
