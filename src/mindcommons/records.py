"""Canonical records: what every ingest format parses into and the repository stores.

These are the contract between ingest parsers (CSV, JSONL, FHIR), the synthetic
generator and the site repository. Field names here are also the CSV column names
and JSONL keys (JSONL adds ``"type"``: one of ``RECORD_TYPES``).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DocumentKind = Literal["clinical_note", "therapy_transcript", "patient_message", "other"]
DeidStatus = Literal["synthetic", "deidentified", "raw"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class DatasetRecord(_Record):
    """Describes the dataset a batch belongs to (one per batch; defaults apply when absent)."""

    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    source: str = ""
    licence: str = ""
    consent_basis: str = ""
    allowed_purposes: list[str] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=list)
    collection_start: dt.date | None = None
    collection_end: dt.date | None = None


class ParticipantRecord(_Record):
    participant_id: str = Field(min_length=1, max_length=100)  # pseudonymous, site-local
    age_band: str = ""  # e.g. "18-24", "25-34", ..., "65+"
    gender: str = ""
    ethnicity_local: str = ""  # as recorded at the site
    ethnicity_category: str = ""  # mapped category
    country: str = ""  # ISO 3166-1 alpha-2
    primary_language: str = ""  # BCP-47, e.g. "en", "es", "pt"


class DocumentRecord(_Record):
    participant_id: str = Field(min_length=1, max_length=100)
    document_id: str = Field(min_length=1, max_length=100)
    kind: DocumentKind
    language: str = Field(min_length=2, max_length=20)
    date: dt.date
    text: str = Field(min_length=1)
    deid_status: DeidStatus


class MeasureRecord(_Record):
    participant_id: str = Field(min_length=1, max_length=100)
    instrument: str = Field(min_length=1)  # e.g. "PHQ-9", "GAD-7"; must be a known instrument
    date: dt.date
    items: list[int]  # item answers in instrument order; validated against the instrument
    total: int | None = None  # computed when absent; checked when present


class SignalRecord(_Record):
    participant_id: str = Field(min_length=1, max_length=100)
    name: str = Field(min_length=1)  # e.g. "sleep_hours", "steps"
    unit: str = ""
    value: float
    time: dt.datetime


class OutcomeRecord(_Record):
    participant_id: str = Field(min_length=1, max_length=100)
    name: str = Field(min_length=1)  # e.g. "remission", "hospitalisation"
    value: str
    date: dt.date


Record = (
    DatasetRecord
    | ParticipantRecord
    | DocumentRecord
    | MeasureRecord
    | SignalRecord
    | OutcomeRecord
)

RECORD_TYPES: dict[str, type[_Record]] = {
    "dataset": DatasetRecord,
    "participant": ParticipantRecord,
    "document": DocumentRecord,
    "measure": MeasureRecord,
    "signal": SignalRecord,
    "outcome": OutcomeRecord,
}
