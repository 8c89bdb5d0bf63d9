"""``phq9`` and ``gad7`` as audit-suite tasks: the skeleton's QuestionnaireTasks, adapted.

The prompt, output schema (per text) and parsing are the QuestionnaireTask's own; this
adapter turns its ``SampleResult`` into a suite ``Score`` (item MAE, total error, band
agreement, parse and verbatim-evidence rates), so the same task runs in the suite, with
the suite's journal, intervals, subgroups and energy.

Sources: ``None`` = questionnaire-paired notes from the project's synthetic sites
(``mindcommons.synth``, three sites, en/es/pt); or a JSONL file, one object per line:
``{"id", "text", "items": [int, ...], "language"?, "kind"?, "attributes"?: {...}}``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

from mindcommons.errors import InputError
from mindcommons.instruments import get_instrument
from mindcommons.jsonl import need_text, read_jsonl
from mindcommons.models.base import GenerateConfig, Generation
from mindcommons.suite import SUITE_TASKS
from mindcommons.suite.base import Aggregate, Sample, Score
from mindcommons.tasks.base import EvalItem
from mindcommons.tasks.spec import QuestionnaireTask

SYNTH_SITES = 3
SYNTH_PATIENTS = 6
ATTRIBUTES = ("gender", "age_band", "country")


@cache
def _synthetic_items(instrument: str, seed: int) -> tuple[EvalItem, ...]:
    """Every synthetic document paired with its author's nearest questionnaire."""
    from mindcommons.synth import generate_site

    key = get_instrument(instrument).key
    items: list[EvalItem] = []
    for index in range(SYNTH_SITES):
        site = generate_site(index, patients=SYNTH_PATIENTS, seed=seed)
        people = {p.participant_id: p for p in site.participants}
        measures = [m for m in site.measures if get_instrument(m.instrument).key == key]
        for doc in site.documents:
            own = [m for m in measures if m.participant_id == doc.participant_id]
            if not own:
                continue
            near = min(own, key=lambda m: (abs((m.date - doc.date).days), m.date))
            person = people[doc.participant_id]
            attrs = {a: str(getattr(person, a)) for a in ATTRIBUTES if getattr(person, a)}
            items.append(
                EvalItem(
                    document_id=doc.document_id,
                    participant_id=doc.participant_id,
                    kind=doc.kind,
                    language=doc.language,
                    date=doc.date.isoformat(),
                    text=doc.text,
                    instrument=instrument,
                    measure_date=near.date.isoformat(),
                    true_items=tuple(near.items),
                    true_total=sum(near.items),
                    attributes=attrs,
                )
            )
    return tuple(items)


def _file_items(path: Path, instrument: str) -> list[EvalItem]:
    inst = get_instrument(instrument)
    n_items = len(inst.items)
    items: list[EvalItem] = []
    expected = f"integers {inst.min_answer}-{inst.max_answer}, {n_items} of them"
    for number, row in read_jsonl(path):
        for name in ("id", "text"):
            need_text(row, name, file=str(path), record=number)
        raw = row.get("items")
        answers: list[int] = raw if isinstance(raw, list) else []
        ok = isinstance(raw, list) and len(answers) == n_items
        ok = ok and all(
            isinstance(v, int) and not isinstance(v, bool)
            and inst.min_answer <= v <= inst.max_answer
            for v in answers
        )  # fmt: skip
        if not ok:
            raise InputError(
                f"bad {inst.name} answers", file=str(path), record=number, field="items",
                expected=expected,
            )  # fmt: skip
        attrs = row.get("attributes") or {}
        if not isinstance(attrs, dict):
            raise InputError(
                "not an object", file=str(path), record=number, field="attributes",
                expected='{"name": "value", ...}',
            )  # fmt: skip
        items.append(
            EvalItem(
                document_id=row["id"],
                participant_id=str(row.get("participant_id", row["id"])),
                kind=str(row.get("kind", "clinical_note")),
                language=str(row.get("language", "en")),
                date=str(row.get("date", "")),
                text=row["text"],
                instrument=instrument,
                measure_date=str(row.get("date", "")),
                true_items=tuple(answers),
                true_total=sum(answers),
                attributes={str(k): str(v) for k, v in attrs.items()},
            )
        )
    return items


@dataclass(frozen=True)
class QuestionnaireAuditTask:
    """A QuestionnaireTask (``spec``) behind the audit-suite contract."""

    spec: QuestionnaireTask

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def description(self) -> str:
        return (
            f"{self.spec.instrument} item scores (0-3) from a note or transcript, with "
            "evidence quoted from the text; item MAE against the person's questionnaire."
        )

    @property
    def aggregates(self) -> tuple[Aggregate, ...]:
        return (
            Aggregate("item_mae", "mean", "item_abs_err", higher_is_better=False),
            Aggregate("total_mae", "mean", "total_abs_err", higher_is_better=False),
            Aggregate("band_accuracy", "mean", "band_correct"),
            Aggregate("parse_rate", "mean", "parsed"),
            Aggregate("evidence_verbatim", "mean", "evidence_verbatim"),
        )

    @property
    def primary(self) -> str:
        return "item_mae"

    def load(self, source: Path | None, *, limit: int | None = None, seed: int = 0) -> list[Sample]:
        if source is None:
            items = list(_synthetic_items(self.spec.instrument, seed))
        else:
            items = _file_items(Path(source), self.spec.instrument)
        items = [i for i in items if i.kind in self.spec.document_kinds]
        random.Random(seed).shuffle(items)
        if limit is not None:
            items = items[:limit]
        return [self._sample(item) for item in items]

    def _sample(self, item: EvalItem) -> Sample:
        return Sample(
            id=item.document_id,
            messages=tuple(self.spec.build_messages(item)),
            language=item.language,
            attributes={**item.attributes, "kind": item.kind},
            data={"item": item},
        )

    def generate_config(self, sample: Sample, seed: int = 0) -> GenerateConfig:
        item: EvalItem = sample.data["item"]
        return replace(
            self.spec.generate_config(seed), json_schema=self.spec.output_schema_for(item)
        )

    def score(self, sample: Sample, generation: Generation) -> Score:
        item: EvalItem = sample.data["item"]
        result = self.spec.score(item, generation)
        inst = get_instrument(self.spec.instrument)
        pred = [inst.min_answer if v is None else v for v in result.predicted_items]
        n_items = max(1, len(pred))
        values: dict[str, float] = {
            "item_abs_err": sum(abs(p - t) for p, t in zip(pred, item.true_items, strict=True))
            / n_items,
            "total_abs_err": float(abs(result.predicted_total - item.true_total)),
            "band_correct": float(
                inst.band_index(result.predicted_total) == inst.band_index(item.true_total)
            ),
            "parsed": float(result.parsed),
        }
        eligible = [i for i, p in enumerate(pred) if p > inst.min_answer]
        if eligible:
            verbatim = result.evidence_verbatim
            hits = sum(1 for i in eligible if i < len(verbatim) and verbatim[i])
            values["evidence_verbatim"] = hits / len(eligible)
        return Score(sample_id=sample.id, values=values)


def _register() -> None:
    from mindcommons.tasks import TASKS

    for name in ("phq9", "gad7"):
        spec = TASKS.get(name)
        if isinstance(spec, QuestionnaireTask):
            SUITE_TASKS.add(name, QuestionnaireAuditTask(spec))


_register()
