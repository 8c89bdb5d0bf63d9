"""De-identification stages run on every document before storage; raw text is never stored."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from mindcommons.ingest.base import Locator
from mindcommons.records import DocumentRecord
from mindcommons.registry import Registry


class DeidStage(Protocol):
    """One step of de-identification: return the document to store, or raise InputError."""

    name: str

    def process(self, doc: DocumentRecord, locator: Locator) -> DocumentRecord: ...


DEID_STAGES: Registry[DeidStage] = Registry("de-identification stage")
DEFAULT_STAGES: tuple[str, ...] = ("refuse-raw",)


class RefuseRaw:
    """Refuses documents whose ``deid_status`` is ``raw``: this release stores no raw text."""

    name = "refuse-raw"

    def process(self, doc: DocumentRecord, locator: Locator) -> DocumentRecord:
        if doc.deid_status == "raw":
            raise locator.error(
                f"document '{doc.document_id}' is not de-identified (deid_status 'raw'); "
                "raw text is never stored. De-identify it first (a de-identification stage "
                "for raw text comes in a later release)",
                field="deid_status",
                expected="synthetic or deidentified",
            )
        return doc


DEID_STAGES.add(RefuseRaw.name, RefuseRaw())


def run_stages(
    doc: DocumentRecord, locator: Locator, stages: Sequence[str] = DEFAULT_STAGES
) -> DocumentRecord:
    """Run the named stages in order; the last one must leave no raw document."""
    for name in stages:
        doc = DEID_STAGES.get(name).process(doc, locator)
    RefuseRaw().process(doc, locator)  # whatever the stages did, raw text is never stored
    return doc
