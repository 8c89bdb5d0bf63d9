"""FHIR R4 (R4B model classes) Bundle of one site, built and validated with fhir.resources."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

from mindcommons.fhir_constants import (
    DEID_STATUS_SYSTEM,
    DOCUMENT_KIND_SYSTEM,
    EXT_AGE_BAND,
    EXT_ETHNICITY_CATEGORY,
    EXT_ETHNICITY_LOCAL,
    LANGUAGE_SYSTEM,
    LOINC_SYSTEM,
    SIGNAL_SYSTEM,
    UCUM_SYSTEM,
)
from mindcommons.instruments import get_instrument
from mindcommons.records import (
    DocumentRecord,
    MeasureRecord,
    ParticipantRecord,
    SignalRecord,
)
from mindcommons.synth.files import CSV_FILES, csv_text, dataset_json
from mindcommons.synth.site import SiteData

FULL_URL_BASE = "https://mindcommons.dev/synth"
UCUM_CODES = {"h": "h", "steps": "{steps}"}


def _ref(participant_id: str) -> dict[str, str]:
    return {"reference": f"Patient/{participant_id}"}


def _instant(value: dt.datetime) -> str:
    """ISO 8601 as fhir.resources writes it (UTC as ``Z``)."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def patient(record: ParticipantRecord) -> dict[str, Any]:
    extensions = [
        {"url": url, "valueString": value}
        for url, value in (
            (EXT_AGE_BAND, record.age_band),
            (EXT_ETHNICITY_LOCAL, record.ethnicity_local),
            (EXT_ETHNICITY_CATEGORY, record.ethnicity_category),
        )
        if value
    ]
    resource: dict[str, Any] = {"resourceType": "Patient", "id": record.participant_id}
    if extensions:
        resource["extension"] = extensions
    if record.gender:
        resource["gender"] = record.gender
    if record.country:
        resource["address"] = [{"country": record.country}]
    if record.primary_language:
        coding = {"system": LANGUAGE_SYSTEM, "code": record.primary_language}
        resource["communication"] = [{"language": {"coding": [coding]}, "preferred": True}]
    return resource


def questionnaire_response(record: MeasureRecord, resource_id: str) -> dict[str, Any]:
    instrument = get_instrument(record.instrument)
    items = [
        {
            "linkId": item.loinc,
            "text": item.text,
            "answer": [
                {"valueCoding": {"system": LOINC_SYSTEM, "code": instrument.answer_loinc[value]}}
            ],
        }
        for item, value in zip(instrument.items, record.items, strict=True)
    ]
    return {
        "resourceType": "QuestionnaireResponse",
        "id": resource_id,
        "status": "completed",
        "questionnaire": instrument.canonical_url,
        "subject": _ref(record.participant_id),
        "authored": record.date.isoformat(),
        "item": items,
    }


def observation(record: SignalRecord, resource_id: str) -> dict[str, Any]:
    value = int(record.value) if record.value.is_integer() else record.value
    quantity: dict[str, Any] = {"value": value, "unit": record.unit}
    if record.unit in UCUM_CODES:
        quantity |= {"system": UCUM_SYSTEM, "code": UCUM_CODES[record.unit]}
    return {
        "resourceType": "Observation",
        "id": resource_id,
        "status": "final",
        "code": {"coding": [{"system": SIGNAL_SYSTEM, "code": record.name}]},
        "subject": _ref(record.participant_id),
        "effectiveDateTime": _instant(record.time),
        "valueQuantity": quantity,
    }


def document_reference(record: DocumentRecord) -> dict[str, Any]:
    data = base64.b64encode(record.text.encode("utf-8")).decode("ascii")
    # DocumentReference.date is an instant: midnight UTC of the document's date.
    midnight = dt.datetime.combine(record.date, dt.time(0, 0), tzinfo=dt.UTC)
    return {
        "resourceType": "DocumentReference",
        "id": record.document_id,
        "meta": {"tag": [{"system": DEID_STATUS_SYSTEM, "code": record.deid_status}]},
        "status": "current",
        "type": {"coding": [{"system": DOCUMENT_KIND_SYSTEM, "code": record.kind}]},
        "subject": _ref(record.participant_id),
        "date": _instant(midnight),
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain; charset=utf-8",
                    "language": record.language,
                    "data": data,
                }
            }
        ],
    }


def bundle_resources(site: SiteData) -> list[dict[str, Any]]:
    """Plain FHIR JSON dicts for every participant, measure, signal and document."""
    resources = [patient(p) for p in site.participants]
    counter: dict[str, int] = {}
    for measure in site.measures:
        key = f"{measure.participant_id}-{get_instrument(measure.instrument).key}"
        counter[key] = counter.get(key, 0) + 1
        resources.append(questionnaire_response(measure, f"{key}-{counter[key]}"))
    resources += [document_reference(d) for d in site.documents]
    for number, signal in enumerate(site.signals, start=1):
        resources.append(observation(signal, f"{signal.participant_id}-obs-{number}"))
    return resources


def _resource_classes() -> dict[str, Any]:
    from fhir.resources.R4B.documentreference import DocumentReference
    from fhir.resources.R4B.observation import Observation
    from fhir.resources.R4B.patient import Patient
    from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

    return {
        "Patient": Patient,
        "QuestionnaireResponse": QuestionnaireResponse,
        "Observation": Observation,
        "DocumentReference": DocumentReference,
    }


def bundle_dict(site: SiteData) -> dict[str, Any]:
    """The site's Bundle (type ``collection``) as FHIR JSON; every resource is validated.

    Each resource dict goes through its ``fhir.resources.R4B`` class; the first of each
    type is also checked to be in the canonical form fhir.resources itself would write, so
    serialising the dicts (much faster than the model serialiser) gives the same JSON.
    """
    classes = _resource_classes()
    checked: set[str] = set()
    entries = []
    for data in bundle_resources(site):
        kind = data["resourceType"]
        resource = classes[kind].model_validate(data)
        if kind not in checked:
            checked.add(kind)
            canonical = json.loads(resource.model_dump_json())
            if canonical != data:
                raise RuntimeError(f"synthetic {kind} is not in canonical FHIR form: {data}")
        entries.append(
            {"fullUrl": f"{FULL_URL_BASE}/{site.name}/{kind}/{data['id']}", "resource": data}
        )
    return {
        "resourceType": "Bundle",
        "id": f"synthetic-{site.name}",
        "type": "collection",
        "entry": entries,
    }


def build_bundle(site: SiteData) -> Any:
    """A validated ``fhir.resources.R4B.bundle.Bundle`` of the site."""
    from fhir.resources.R4B.bundle import Bundle

    return Bundle.model_validate(bundle_dict(site))


def write_fhir(site: SiteData, folder: Path) -> list[Path]:
    """``bundle.json`` + ``dataset.json``; outcomes (no FHIR mapping yet) as ``outcomes.csv``."""
    from mindcommons.records import OutcomeRecord

    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(bundle_dict(site), ensure_ascii=False, indent=1)
    bundle_path = folder / "bundle.json"
    bundle_path.write_text(text + "\n", encoding="utf-8")
    dataset_path = folder / "dataset.json"
    dataset_path.write_text(dataset_json(site.dataset), encoding="utf-8")
    outcomes_path = folder / f"{CSV_FILES[-1]}.csv"
    outcomes_path.write_text(
        csv_text(list(site.outcomes), OutcomeRecord), encoding="utf-8", newline=""
    )
    return [bundle_path, dataset_path, outcomes_path]
