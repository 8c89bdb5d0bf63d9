"""FHIR R4 input: a Bundle of Patient, QuestionnaireResponse, Observation, DocumentReference."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import typing
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mindcommons import fhir_constants as fc
from mindcommons.errors import ConfigError, InputError
from mindcommons.ingest.base import FORMATS, Issues, Locator, ParsedRecord, build, loc_to_field
from mindcommons.ingest.text import read_text
from mindcommons.instruments import get_instrument
from mindcommons.records import (
    DocumentRecord,
    MeasureRecord,
    ParticipantRecord,
    Record,
    SignalRecord,
)

Converter = Callable[[Any, Locator, dict[str, str]], dict[str, Any]]
SUPPORTED = ("Patient", "QuestionnaireResponse", "Observation", "DocumentReference")


@cache
def _resource_class(name: str) -> Any:
    """The fhir.resources R4 (R4B package) model class for a resource type."""
    from fhir.resources.R4B import get_fhir_model_class

    return get_fhir_model_class(name)


def _subject(resource: Any, where: Locator, patients: dict[str, str]) -> str:
    ref = getattr(getattr(resource, "subject", None), "reference", None)
    if not ref:
        raise where.error("no subject", field="subject.reference", expected="Patient/<id>")
    if ref in patients:
        return patients[ref]
    if ref.startswith("Patient/"):
        return str(ref.split("/", 1)[1])
    raise where.error(
        f"subject '{ref}' does not reference a Patient",
        field="subject.reference",
        expected="Patient/<id> or the fullUrl of a Patient entry in this Bundle",
    )


def _extension(resource: Any, url: str) -> str:
    for ext in resource.extension or []:
        if ext.url == url:
            return str(ext.valueString or ext.valueCode or "")
    return ""


def _as_date(value: object) -> object:
    return value.date() if isinstance(value, dt.datetime) else value


def _patient(res: Any, where: Locator, patients: dict[str, str]) -> dict[str, Any]:
    language = ""
    for comm in res.communication or []:
        for coding in comm.language.coding or []:
            language = str(coding.code or "")
            break
        if language:
            break
    return {
        "participant_id": res.id,
        "gender": res.gender or "",
        "country": (res.address[0].country or "") if res.address else "",
        "primary_language": language,
        "age_band": _extension(res, fc.EXT_AGE_BAND),
        "ethnicity_local": _extension(res, fc.EXT_ETHNICITY_LOCAL),
        "ethnicity_category": _extension(res, fc.EXT_ETHNICITY_CATEGORY),
    }


def _answer(item: Any, index: int, where: Locator, inst: Any) -> int:
    field = f"item[{index}].answer[0]"
    if not item.answer:
        raise where.error("the item has no answer", field=field, expected="one answer")
    ans = item.answer[0]
    if ans.valueInteger is not None:
        return int(ans.valueInteger)
    if ans.valueCoding is not None:
        code = str(ans.valueCoding.code or "")
        try:
            return int(inst.answer_value(code))
        except KeyError:
            codes = ", ".join(f"{c} ({v})" for v, c in inst.answer_loinc.items())
            raise where.error(
                f"unknown {inst.name} answer code '{code}'",
                field=f"{field}.valueCoding.code",
                expected=codes,
            ) from None
    raise where.error(
        "the answer is neither valueInteger nor valueCoding",
        field=field,
        expected="valueInteger or valueCoding with a LOINC answer code",
    )


def _questionnaire_response(res: Any, where: Locator, patients: dict[str, str]) -> dict[str, Any]:
    name = str(res.questionnaire or "")
    try:
        inst = get_instrument(name)
    except ConfigError as exc:
        raise where.error(
            f"unknown questionnaire '{name}'", field="questionnaire", expected=str(exc)
        ) from None
    answers: list[int | None] = [None] * len(inst.items)
    total: int | None = None
    for i, item in enumerate(res.item or []):
        link = str(item.linkId)
        if inst.loinc_total and link == inst.loinc_total:
            total = _answer(item, i, where, inst)
            continue
        try:
            pos = inst.item_index(link)
        except KeyError:
            raise where.error(
                f"linkId '{link}' is not a {inst.name} item",
                field=f"item[{i}].linkId",
                expected=f"an item LOINC code or a number 1-{len(inst.items)}",
            ) from None
        answers[pos] = _answer(item, i, where, inst)
    missing = [str(n + 1) for n, a in enumerate(answers) if a is None]
    if missing:
        raise where.error(
            f"{inst.name} items {', '.join(missing)} have no answer",
            field="item",
            expected=f"answers to all {len(inst.items)} items",
        )
    authored = res.authored
    if authored is None:
        raise where.error("no date", field="authored", expected="a date")
    return {
        "participant_id": _subject(res, where, patients),
        "instrument": inst.name,
        "date": _as_date(authored),
        "items": answers,
        "total": total,
    }


def _observation(res: Any, where: Locator, patients: dict[str, str]) -> dict[str, Any]:
    codings = res.code.coding or [] if res.code else []
    if not codings or not codings[0].code:
        raise where.error("no signal name", field="code.coding[0].code", expected="a code")
    qty = res.valueQuantity
    if qty is None or qty.value is None:
        raise where.error("no value", field="valueQuantity.value", expected="a number")
    if res.effectiveDateTime is None:
        raise where.error("no time", field="effectiveDateTime", expected="a date-time")
    return {
        "participant_id": _subject(res, where, patients),
        "name": codings[0].code,
        "unit": qty.unit or qty.code or "",
        "value": float(qty.value),
        "time": res.effectiveDateTime,
    }


def _document(res: Any, where: Locator, patients: dict[str, str]) -> dict[str, Any]:
    field = "content[0].attachment.data"
    if not res.content or res.content[0].attachment.data is None:
        raise where.error("no text", field=field, expected="base64-encoded UTF-8 text")
    att = res.content[0].attachment
    data = att.data
    try:
        raw = data if isinstance(data, bytes) else base64.b64decode(data, validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise where.error(
            f"the attachment is not base64 UTF-8 text ({exc})",
            field=field,
            expected="base64-encoded UTF-8 text",
        ) from None
    kind = ""
    if res.type is not None and res.type.coding:
        kind = str(res.type.coding[0].code or "")
    status = ""
    for tag in (res.meta.tag or []) if res.meta else []:
        if tag.system == fc.DEID_STATUS_SYSTEM:
            status = str(tag.code or "")
    return {
        "participant_id": _subject(res, where, patients),
        "document_id": res.id,
        "kind": kind,
        "language": att.language or "",
        "date": _as_date(res.date),
        "text": text,
        "deid_status": status,
    }


CONVERTERS: dict[str, tuple[Converter, type[Record]]] = {
    "Patient": (_patient, ParticipantRecord),
    "QuestionnaireResponse": (_questionnaire_response, MeasureRecord),
    "Observation": (_observation, SignalRecord),
    "DocumentReference": (_document, DocumentRecord),
}
"""Resource type -> (converter to record fields, record type). Add here to support more."""

FHIR_PATHS: dict[str, dict[str, str]] = {
    "Patient": {
        "participant_id": "id",
        "country": "address[0].country",
        "primary_language": "communication[0].language.coding[0].code",
        "age_band": "extension(age-band)",
        "ethnicity_local": "extension(ethnicity-local)",
        "ethnicity_category": "extension(ethnicity-category)",
    },
    "QuestionnaireResponse": {"participant_id": "subject", "date": "authored"},
    "Observation": {
        "participant_id": "subject",
        "name": "code.coding[0].code",
        "unit": "valueQuantity.unit",
        "value": "valueQuantity.value",
        "time": "effectiveDateTime",
    },
    "DocumentReference": {
        "participant_id": "subject",
        "document_id": "id",
        "kind": "type.coding[0].code",
        "language": "content[0].attachment.language",
        "text": "content[0].attachment.data",
        "deid_status": f"meta.tag({fc.DEID_STATUS_SYSTEM})",
    },
}
"""Record field -> where it sits in the resource, so errors name the FHIR element."""


def _fhir_field(kind: str, err: InputError) -> InputError:
    path = FHIR_PATHS.get(kind, {}).get(err.field or "")
    if path is None:
        return err
    return InputError(
        err.detail, file=err.file, record=err.record, field=path, expected=err.expected
    )


class FhirBundleFormat:
    """Parser for FHIR R4 Bundles in ``*.json`` files, validated with ``fhir.resources``."""

    name = "fhir"
    suffixes: tuple[str, ...] = (".json",)

    def parse(self, path: Path, issues: Issues) -> Iterator[ParsedRecord]:
        file = str(path)
        text = read_text(path)
        try:
            bundle = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"broken JSON: {exc.msg} at column {exc.colno}",
                file=file,
                record=exc.lineno,
                expected="a FHIR Bundle in JSON",
            ) from None
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            got = bundle.get("resourceType") if isinstance(bundle, dict) else type(bundle).__name__
            raise InputError(
                f"not a FHIR Bundle (resourceType {got!r})",
                file=file,
                field="resourceType",
                expected="Bundle",
            )
        entries = bundle.get("entry") or []
        self._validate_shell(bundle, file)
        patients: dict[str, str] = {}
        resources: list[tuple[Locator, dict[str, Any]]] = []
        for index, entry in enumerate(entries):
            res = entry.get("resource") if isinstance(entry, dict) else None
            where = Locator(file=file, entry=index)
            if not isinstance(res, dict):
                issues.add(where.error("the entry has no resource", field="resource"))
                continue
            kind, rid = str(res.get("resourceType")), res.get("id")
            where = Locator(file=file, entry=index, resource=f"{kind}/{rid}")
            if kind not in CONVERTERS:
                issues.add(
                    where.error(
                        f"unsupported resource type {kind}",
                        field="resourceType",
                        expected="one of: " + ", ".join(CONVERTERS),
                    )
                )
                continue
            if kind == "Patient" and rid:
                patients[f"Patient/{rid}"] = str(rid)
                if entry.get("fullUrl"):
                    patients[str(entry["fullUrl"])] = str(rid)
            resources.append((where, res))
        for where, res in resources:
            kind = str(res["resourceType"])
            convert, model = CONVERTERS[kind]
            try:
                resource = _resource_class(kind).model_validate(res)
            except ValidationError as exc:
                err = exc.errors()[0]
                issues.add(
                    where.error(
                        f"invalid FHIR {kind}: {err.get('msg')}",
                        field=loc_to_field(tuple(err.get("loc", ()))),
                    )
                )
                continue
            try:
                if not resource.id:
                    raise where.error(f"the {kind} has no id", field="id", expected="an id")
                data = convert(resource, where, patients)
            except InputError as err:
                issues.add(err)
                continue
            try:
                record = typing.cast(Record, build(model, data, where))
            except InputError as err:
                issues.add(_fhir_field(kind, err))
                continue
            yield where, record

    def _validate_shell(self, bundle: dict[str, Any], file: str) -> None:
        shell = {k: v for k, v in bundle.items() if k != "entry"}
        try:
            _resource_class("Bundle").model_validate(shell)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise InputError(
                f"invalid FHIR Bundle: {err.get('msg')}",
                file=file,
                field=loc_to_field(tuple(err.get("loc", ()))),
            ) from None


FORMATS.add("fhir", FhirBundleFormat())
