"""De-identification stages run on every document before storage; raw text is never stored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from mindcommons.errors import ConfigError
from mindcommons.ingest.base import Locator
from mindcommons.records import DocumentRecord
from mindcommons.registry import Registry

DocKey = tuple[str, str]  # (participant_id, document_id)


@dataclass
class DeidContext:
    """What the stages of one batch share: the site secret and the per-document records.

    The secret lives outside the database: ``secret`` if given, else ``load_secret(secret_dir)``
    (``<site folder>/deid.key``, created on first use), loaded only when a raw document comes.
    """

    secret_dir: Path | None = None
    secret: bytes | None = None
    records: dict[DocKey, dict[str, Any]] = field(default_factory=dict)

    def key(self) -> bytes:
        if self.secret is None:
            if self.secret_dir is None:
                raise ConfigError("de-identification needs the site's secret; none was given")
            from mindcommons.deid.secret import load_secret

            self.secret = load_secret(self.secret_dir)
        return self.secret


class DeidStage(Protocol):
    """One step of de-identification: return the document to store, or raise InputError."""

    name: str

    def process(
        self, doc: DocumentRecord, locator: Locator, context: DeidContext
    ) -> DocumentRecord: ...


DEID_STAGES: Registry[DeidStage] = Registry("de-identification stage")
DEFAULT_STAGES: tuple[str, ...] = ("pseudonymise", "refuse-raw")


class RefuseRaw:
    """Refuses documents whose ``deid_status`` is ``raw``: no raw text is ever stored."""

    name = "refuse-raw"

    def process(
        self, doc: DocumentRecord, locator: Locator, context: DeidContext | None = None
    ) -> DocumentRecord:
        if doc.deid_status == "raw":
            raise locator.error(
                f"document '{doc.document_id}' is not de-identified (deid_status 'raw'); "
                "raw text is never stored. Run the 'pseudonymise' de-identification stage "
                "(the default) or de-identify it first",
                field="deid_status",
                expected="synthetic or deidentified",
            )
        return doc


class Deidentify:
    """De-identifies raw documents with the site secret, keyed by participant (HMAC).

    Stores what was done (mode, counts by type, detector versions) in ``context.records``;
    the original text goes nowhere else, not even into error messages.
    """

    def __init__(self, name: str, mode: Literal["pseudonymise", "redact"]) -> None:
        self.name = name
        self.mode: Literal["pseudonymise", "redact"] = mode

    def process(
        self, doc: DocumentRecord, locator: Locator, context: DeidContext
    ) -> DocumentRecord:
        if doc.deid_status != "raw":
            return doc
        from mindcommons.deid import deidentify

        secret = context.key()
        language = doc.language.split("-")[0].lower()
        try:
            result = deidentify(
                doc.text,
                language=language,
                patient_key=doc.participant_id,
                secret=secret,
                mode=self.mode,
            )
        except ConfigError as err:  # e.g. a language without de-identification rules
            raise locator.error(
                f"document '{doc.document_id}' cannot be de-identified: {err}",
                field="language",
                expected="a language de-identification supports (en, es, pt)",
            ) from None
        except Exception as err:  # never let the document's text reach a message
            raise locator.error(
                f"document '{doc.document_id}' could not be de-identified "
                f"({type(err).__name__}); nothing was stored",
                field="text",
            ) from None
        context.records[(doc.participant_id, doc.document_id)] = {
            "mode": self.mode,
            "stage": self.name,
            **result.record(),
        }
        return doc.model_copy(update={"text": result.text, "deid_status": "deidentified"})


DEID_STAGES.add(RefuseRaw.name, RefuseRaw())
DEID_STAGES.add("pseudonymise", Deidentify("pseudonymise", "pseudonymise"))
DEID_STAGES.add("redact", Deidentify("redact", "redact"))


def run_stages(
    doc: DocumentRecord,
    locator: Locator,
    stages: Sequence[str] = DEFAULT_STAGES,
    context: DeidContext | None = None,
) -> DocumentRecord:
    """Run the named stages in order; the last one must leave no raw document."""
    context = context if context is not None else DeidContext()
    for name in stages:
        doc = DEID_STAGES.get(name).process(doc, locator, context)
    RefuseRaw().process(doc, locator)  # whatever the stages did, raw text is never stored
    return doc
