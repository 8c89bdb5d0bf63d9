"""Pair each document with the same participant's questionnaire nearest in time."""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mindcommons.repository.crypto import Keyring
from mindcommons.repository.models import Dataset, Document, Measure, Participant
from mindcommons.repository.rekey import decrypt_row
from mindcommons.repository.store import chunks
from mindcommons.tasks.base import EvalItem

ATTRIBUTES = ("gender", "age_band", "country", "primary_language", "ethnicity_category")


def instrument_key(name: str) -> str:
    """'PHQ-9', 'phq9' and 'PHQ 9' name the same instrument."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def eval_items(
    session: Session,
    *,
    keyring: Keyring,
    instrument: str,
    kinds: Sequence[str],
    limit: int | None,
    seed: int,
    max_days: int,
) -> list[EvalItem]:
    """See ``SiteRepository.eval_items``."""
    wanted = instrument_key(instrument)
    stored_names = [
        name
        for name in session.scalars(select(Measure.instrument).distinct())
        if instrument_key(name) == wanted
    ]
    if not stored_names or not kinds:
        return []
    attr_cols = [getattr(Participant, a) for a in ATTRIBUTES]
    docs = session.execute(
        select(
            Document.document_id,
            Document.participant_pk,
            Document.kind,
            Document.language,
            Document.date,
            Document.text,
            Document.text_key_id,
            Participant.participant_id,
            Dataset.name.label("dataset"),
            *attr_cols,
        )
        .join(Participant, Document.participant_pk == Participant.id)
        .join(Dataset, Participant.dataset_id == Dataset.id)
        .where(Document.kind.in_(list(kinds)))
    ).all()
    measures: dict[int, list[tuple[Any, list[int], int]]] = defaultdict(list)
    for part in chunks(sorted({d.participant_pk for d in docs})):
        stmt = select(Measure.participant_pk, Measure.date, Measure.items, Measure.total).where(
            Measure.participant_pk.in_(part), Measure.instrument.in_(stored_names)
        )
        for pk, date, answers, total in session.execute(stmt):
            measures[pk].append((date, answers, total))

    paired: list[tuple[tuple[str, str, str], EvalItem]] = []
    for doc in docs:
        best = None
        for date, answers, total in measures.get(doc.participant_pk, []):
            distance = abs((date - doc.date).days)
            if distance > max_days:
                continue
            rank = (distance, date)  # ties: the earlier questionnaire
            if best is None or rank < best[0]:
                best = (rank, date, answers, total)
        if best is None:
            continue
        _, m_date, answers, total = best
        item = EvalItem(
            document_id=doc.document_id,
            participant_id=doc.participant_id,
            kind=doc.kind,
            language=doc.language,
            date=doc.date.isoformat(),
            text=decrypt_row(keyring, doc),
            instrument=instrument,
            measure_date=m_date.isoformat(),
            true_items=tuple(int(a) for a in answers),
            true_total=int(total),
            attributes={a: str(getattr(doc, a)) for a in ATTRIBUTES},
        )
        paired.append(((doc.document_id, doc.dataset, doc.participant_id), item))
    paired.sort(key=lambda pair: pair[0])
    items = [item for _, item in paired]
    random.Random(seed).shuffle(items)
    return items if limit is None else items[:limit]
