"""FHIR URLs and code systems shared by the synthetic writer and the FHIR ingest reader."""

from __future__ import annotations

from typing import Final

STRUCTURE_DEFINITION_BASE: Final = "https://mindcommons.dev/fhir/StructureDefinition"

EXT_AGE_BAND: Final = f"{STRUCTURE_DEFINITION_BASE}/age-band"
EXT_ETHNICITY_LOCAL: Final = f"{STRUCTURE_DEFINITION_BASE}/ethnicity-local"
EXT_ETHNICITY_CATEGORY: Final = f"{STRUCTURE_DEFINITION_BASE}/ethnicity-category"

DEID_STATUS_SYSTEM: Final = "https://mindcommons.dev/fhir/deid-status"
"""``meta.tag`` system on a DocumentReference; code is a ``DeidStatus``."""

DOCUMENT_KIND_SYSTEM: Final = "https://mindcommons.dev/fhir/document-kind"
"""``DocumentReference.type.coding[0].system``; code is a ``DocumentKind``."""

SIGNAL_SYSTEM: Final = "https://mindcommons.dev/fhir/signal"
"""``Observation.code.coding[0].system``; code is the signal name (``sleep_hours``...)."""

LANGUAGE_SYSTEM: Final = "urn:ietf:bcp:47"
"""``Patient.communication[].language.coding[].system``."""

LOINC_SYSTEM: Final = "http://loinc.org"
UCUM_SYSTEM: Final = "http://unitsofmeasure.org"
ISO_COUNTRY_SYSTEM: Final = "urn:iso:std:iso:3166"
