"""Synthetic PHI: put invented identifiers into notes and transcripts, with their offsets."""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import string
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any, cast

from mindcommons.records import DocumentRecord, ParticipantRecord
from mindcommons.synth.site import SiteData
from mindcommons.synth.vocab import VOCAB_DIR

PHI_FILE = "phi.jsonl"  # per site, beside (not inside) the format folders: not an ingest input
INJECTED_KINDS = ("clinical_note", "therapy_transcript")
OLD_AGE_CHANCE = 0.15  # notes that mention someone over 89
FAMILY_CHANCE = 0.5
# Placeholder -> PHI type; placeholders missing here are plain words (labels, relations).
FIELD_TYPES = {
    "name": "NAME",
    "first": "NAME",
    "relative_name": "NAME",
    "mrn": "MRN",
    "dob": "DATE",
    "date": "DATE",
    "phone": "PHONE",
    "email": "EMAIL",
    "address": "LOCATION",
    "city": "LOCATION",
    "hospital": "HOSPITAL",
    "age": "AGE",
}


@dataclass(frozen=True)
class PhiSpan:
    """One injected identifier: ``text[start:end] == value`` in the document."""

    document_id: str
    start: int
    end: int
    type: str
    value: str

    def to_json(self) -> dict[str, object]:
        return {
            "document_id": self.document_id,
            "start": self.start,
            "end": self.end,
            "type": self.type,
            "value": self.value,
        }


@cache
def phi_vocab(language: str) -> Mapping[str, Any]:
    data = json.loads((VOCAB_DIR / "phi.json").read_text(encoding="utf-8"))
    return cast(Mapping[str, Any], data.get(language, data["en"]))


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z]", "", folded.lower())


def _digits(rng: random.Random, template: str) -> str:
    sizes = {"d1": 1, "d2": 2, "d3": 3}

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key == "area":
            return str(rng.randint(201, 989))
        return "".join(str(rng.randint(0, 9)) for _ in range(sizes[key]))

    return re.sub(r"\{(area|d1|d2|d3)\}", fill, template)


def _date(rng: random.Random, vocab: Mapping[str, Any], day: dt.date) -> str:
    fmt = rng.choice(vocab["date_formats"])
    month = vocab["months"][day.month - 1]
    return str(fmt.format(d=day.day, m=day.month, y=day.year, month=month))


def identity(rng: random.Random, participant: ParticipantRecord) -> dict[str, str]:
    """One participant's invented identifiers (the same in every one of their documents)."""
    vocab = phi_vocab(participant.primary_language)
    gender = participant.gender if participant.gender in ("female", "male") else None
    gender = gender or rng.choice(["female", "male"])
    first, last = rng.choice(vocab[gender]), rng.choice(vocab["surnames"])
    rel_gender = rng.choice(["female", "male"])
    born = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randint(0, 65 * 365))
    address = vocab["address"].format(
        number=rng.randint(2, 480), street=rng.choice(vocab["streets"])
    )
    email = f"{_ascii(first)}.{_ascii(last)}{rng.randint(1, 99)}@{rng.choice(vocab['domains'])}"
    return {
        "name": f"{first} {last}",
        "first": first,
        "relative": rng.choice(vocab["relatives"][rel_gender]),
        "relative_name": f"{rng.choice(vocab[rel_gender])} {last}",
        "mrn": str(rng.randint(1_000_000, 99_999_999)),
        "mrn_label": vocab["mrn_label"],
        "dob": _date(rng, vocab, born),
        "phone": _digits(rng, rng.choice(vocab["phone"])),
        "email": email,
        "address": address,
        "city": rng.choice(vocab["cities"]),
        "hospital": rng.choice(vocab["hospitals"]),
    }


def _render(template: str, values: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """A template as (text, PHI type or None) pieces."""
    pieces: list[tuple[str, str | None]] = []
    for literal, name, _spec, _conv in string.Formatter().parse(template):
        if literal:
            pieces.append((literal, None))
        if name is not None:
            pieces.append((values[name], FIELD_TYPES.get(name)))
    return pieces


def inject(
    rng: random.Random, doc: DocumentRecord, person: Mapping[str, str]
) -> tuple[DocumentRecord, list[PhiSpan]]:
    """``doc`` with identifiers around its text, marked raw, and where each one is."""
    vocab = phi_vocab(doc.language)
    values = {**person, "date": _date(rng, vocab, doc.date), "age": str(rng.randint(90, 104))}
    before: list[str] = []
    after: list[str] = []
    if doc.kind == "clinical_note":
        before.append(rng.choice(vocab["note_header"]))
        after.append(rng.choice(vocab["note_contact"]))
        if rng.random() < FAMILY_CHANCE:
            after.append(vocab["note_family"])
        if rng.random() < OLD_AGE_CHANCE:
            after.append(vocab["note_old"])
    else:
        before.append(vocab["tx_greeting"])
        after.append(vocab["tx_contact"])
        if rng.random() < FAMILY_CHANCE:
            after.append(vocab["tx_family"])
    body = doc.text.rstrip("\n")
    pieces: list[tuple[str, str | None]] = []
    for template in before:
        pieces += [*_render(template, values), ("\n", None)]
    pieces.append((body, None))
    for template in after:
        pieces += [("\n", None), *_render(template, values)]
    if doc.text.endswith("\n"):
        pieces.append(("\n", None))
    spans: list[PhiSpan] = []
    pos = 0
    for text, kind in pieces:
        if kind is not None:
            spans.append(PhiSpan(doc.document_id, pos, pos + len(text), kind, text))
        pos += len(text)
    new_text = "".join(text for text, _ in pieces)
    return doc.model_copy(update={"text": new_text, "deid_status": "raw"}), spans


def inject_site(
    documents: list[DocumentRecord],
    participants: list[ParticipantRecord],
    *,
    seed: int,
    site: str,
) -> tuple[list[DocumentRecord], list[PhiSpan]]:
    """Every note and transcript of a site with injected identifiers (others unchanged)."""
    people = {p.participant_id: p for p in participants}
    persons: dict[str, dict[str, str]] = {}
    out: list[DocumentRecord] = []
    spans: list[PhiSpan] = []
    for doc in documents:
        if doc.kind not in INJECTED_KINDS:
            out.append(doc)
            continue
        pid = doc.participant_id
        if pid not in persons:
            rng = random.Random(f"mindcommons-synth-phi:{seed}:{site}:{pid}")
            persons[pid] = identity(rng, people[pid])
        rng = random.Random(f"mindcommons-synth-phi:{seed}:{site}:{doc.document_id}")
        new, found = inject(rng, doc, persons[pid])
        out.append(new)
        spans.extend(found)
    return out, spans


def write_phi(spans: list[PhiSpan], path: Path) -> Path:
    """The sidecar of injected identifiers: one JSON object per line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(s.to_json(), ensure_ascii=False) for s in spans]
    path.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    return path


def with_phi(site: SiteData, *, seed: int) -> tuple[SiteData, list[PhiSpan]]:
    """A ``SiteData`` whose notes and transcripts carry injected identifiers."""
    documents, spans = inject_site(site.documents, site.participants, seed=seed, site=site.name)
    return replace(site, documents=documents), spans
