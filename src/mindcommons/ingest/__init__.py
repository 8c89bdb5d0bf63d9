"""Ingest CSV, JSONL and FHIR R4 files into a site's repository, all-or-nothing."""

from mindcommons.ingest import csv_format, fhir_format, jsonl_format  # noqa: F401  (register)
from mindcommons.ingest.base import (
    FORMATS,
    BatchInputError,
    FormatParser,
    Issues,
    Locator,
    ParsedRecord,
    format_for,
)
from mindcommons.ingest.deid import DEID_STAGES, DeidStage
from mindcommons.ingest.pipeline import IngestReport, ingest_path

__all__ = [
    "DEID_STAGES",
    "FORMATS",
    "BatchInputError",
    "DeidStage",
    "FormatParser",
    "IngestReport",
    "Issues",
    "Locator",
    "ParsedRecord",
    "format_for",
    "ingest_path",
]
