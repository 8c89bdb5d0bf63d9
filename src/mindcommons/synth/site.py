"""One synthetic site in memory: participants, visits, answers, documents, signals, outcomes."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from mindcommons import __version__
from mindcommons.records import (
    DatasetRecord,
    DocumentKind,
    DocumentRecord,
    MeasureRecord,
    OutcomeRecord,
    ParticipantRecord,
    Record,
    SignalRecord,
)
from mindcommons.synth.profiles import (
    SiteProfile,
    id_prefix,
    pick,
    pick_ethnicity,
    profile_for,
    site_name,
)
from mindcommons.synth.text import (
    Answers,
    Mention,
    clinical_note,
    patient_message,
    therapy_transcript,
)
from mindcommons.synth.vocab import load_vocab

SYNTH_VERSION = "1"
GENERATOR = f"mindcommons.synth/{SYNTH_VERSION} (mindcommons {__version__})"
FIRST_DAY = dt.date(2024, 1, 8)
LAST_FIRST_VISIT = dt.date(2025, 6, 30)
PURPOSES = ["evaluation", "analytics", "training"]
# Item-level offsets on the latent severity scale: some symptoms are commoner than others.
PHQ9_OFFSETS = (0.0, 0.1, 0.3, 0.4, -0.2, -0.1, -0.1, -0.6, -2.0)
GAD7_OFFSETS = (0.3, 0.0, 0.1, 0.1, -0.5, 0.0, -0.3)
# Each visit has a note and/or a transcript (at least one), sometimes also a message.
DOCUMENT_CHANCES: tuple[tuple[DocumentKind, float], ...] = (
    ("clinical_note", 0.75),
    ("therapy_transcript", 0.5),
)
MESSAGE_CHANCE = 0.25
KIND_SUFFIX = {"clinical_note": "note", "therapy_transcript": "tx", "patient_message": "msg"}


@dataclass(frozen=True)
class Evidence:
    """Traceability: which sentence of which document was written from which answer."""

    document_id: str
    instrument: str
    item: int
    level: int
    sentence: str


@dataclass(frozen=True)
class SiteData:
    """Everything one site holds, as canonical records (plus the text-to-answer trace)."""

    name: str
    dataset: DatasetRecord
    participants: list[ParticipantRecord] = field(default_factory=list)
    documents: list[DocumentRecord] = field(default_factory=list)
    measures: list[MeasureRecord] = field(default_factory=list)
    signals: list[SignalRecord] = field(default_factory=list)
    outcomes: list[OutcomeRecord] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)

    def records(self) -> Iterator[tuple[str, Record]]:
        """(type, record) pairs in file order: dataset first, then each type in turn."""
        yield "dataset", self.dataset
        for kind, records in self.by_type().items():
            for record in records:
                yield kind, record

    def by_type(self) -> dict[str, list[Record]]:
        return {
            "participant": list(self.participants),
            "document": list(self.documents),
            "measure": list(self.measures),
            "signal": list(self.signals),
            "outcome": list(self.outcomes),
        }

    def counts(self) -> dict[str, int]:
        return {f"{kind}s": len(records) for kind, records in self.by_type().items()}

    def languages(self) -> dict[str, int]:
        """Participants per primary language."""
        return dict(sorted(Counter(p.primary_language for p in self.participants).items()))


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def _answers(
    rng: random.Random, latent: float, offsets: tuple[float, ...], personal: list[float]
) -> list[int]:
    return [
        int(_clamp(round(latent + base + own + rng.gauss(0.0, 0.45)), 0, 3))
        for base, own in zip(offsets, personal, strict=True)
    ]


def _signals(
    rng: random.Random, pid: str, visit: dt.date, latent: float, answers: Answers
) -> list[SignalRecord]:
    out = []
    for back in range(6, -1, -1):
        day = visit - dt.timedelta(days=back)
        if rng.random() < 0.15:
            continue  # a missing day: wearables are not worn every day
        sleep = _clamp(rng.gauss(7.6 - 0.45 * answers.phq9[2] - 0.25 * latent, 0.6), 2.5, 12.0)
        steps = max(200.0, rng.gauss(9000 - 1500 * latent - 400 * answers.phq9[3], 1200))
        morning = dt.datetime.combine(day, dt.time(7, 0), tzinfo=dt.UTC)
        evening = dt.datetime.combine(day, dt.time(22, 0), tzinfo=dt.UTC)
        out.append(
            SignalRecord(
                participant_id=pid,
                name="sleep_hours",
                unit="h",
                value=round(sleep, 1),
                time=morning,
            )
        )
        out.append(
            SignalRecord(
                participant_id=pid,
                name="steps",
                unit="steps",
                value=float(round(steps)),
                time=evening,
            )
        )
    return out


def _participant(
    site_index: int, number: int, seed: int, profile: SiteProfile, site: SiteData
) -> None:
    rng = random.Random(f"mindcommons-synth:{seed}:{site_index}:{number}")
    pid = f"{id_prefix(site_index)}-{number:04d}"
    language = pick(rng, profile.languages)
    country = pick(rng, profile.countries[language])
    local, category = pick_ethnicity(rng, country)
    site.participants.append(
        ParticipantRecord(
            participant_id=pid,
            age_band=pick(rng, profile.age_bands),
            gender=pick(rng, profile.genders),
            ethnicity_local=local,
            ethnicity_category=category,
            country=country,
            primary_language=language,
        )
    )
    vocab = load_vocab(language)
    severity = _clamp(rng.gauss(profile.severity, 0.7), 0.0, 3.0)
    anxiety = _clamp(0.7 * severity + rng.gauss(0.35, 0.45), 0.0, 3.0)
    slope = rng.gauss(profile.improvement, 0.2)
    own_phq = [rng.gauss(0.0, 0.4) for _ in PHQ9_OFFSETS]
    own_gad = [rng.gauss(0.0, 0.4) for _ in GAD7_OFFSETS]
    span = (LAST_FIRST_VISIT - FIRST_DAY).days
    visit = FIRST_DAY + dt.timedelta(days=rng.randint(0, span))
    visits = rng.randint(2, 4)
    totals = []
    for k in range(1, visits + 1):
        if k > 1:
            visit += dt.timedelta(days=rng.randint(14, 42))
            severity = _clamp(severity + slope + rng.gauss(0.0, 0.25), 0.0, 3.0)
            anxiety = _clamp(anxiety + 0.8 * slope + rng.gauss(0.0, 0.25), 0.0, 3.0)
        answers = Answers(
            _answers(rng, severity, PHQ9_OFFSETS, own_phq),
            _answers(rng, anxiety, GAD7_OFFSETS, own_gad),
        )
        totals.append(sum(answers.phq9))
        site.measures.append(
            MeasureRecord(
                participant_id=pid,
                instrument="PHQ-9",
                date=visit,
                items=list(answers.phq9),
                total=sum(answers.phq9),
            )
        )
        site.measures.append(
            MeasureRecord(
                participant_id=pid,
                instrument="GAD-7",
                date=visit,
                items=list(answers.gad7),
                total=sum(answers.gad7),
            )
        )
        kinds = [kind for kind, p in DOCUMENT_CHANCES if rng.random() < p] or [
            rng.choice([kind for kind, _ in DOCUMENT_CHANCES])
        ]
        if rng.random() < MESSAGE_CHANCE:
            kinds.append("patient_message")
        for kind in kinds:
            if kind == "clinical_note":
                text, mentions = clinical_note(rng, vocab, answers, first_visit=k == 1)
                date = visit + dt.timedelta(days=rng.choice([0, 0, 1, 2]))
            elif kind == "therapy_transcript":
                text, mentions = therapy_transcript(
                    rng, vocab, answers, first_visit=k == 1, severe=totals[-1] >= 10
                )
                date = visit + dt.timedelta(days=rng.choice([0, 0, 1, 3]))
            else:
                text, mentions = patient_message(rng, vocab, answers)
                date = visit + dt.timedelta(days=rng.randint(-3, 3))
            doc_id = f"{pid}-v{k}-{KIND_SUFFIX[kind]}"
            site.documents.append(
                DocumentRecord(
                    participant_id=pid,
                    document_id=doc_id,
                    kind=kind,
                    language=language,
                    date=date,
                    text=text,
                    deid_status="synthetic",
                )
            )
            site.evidence.extend(_evidence(doc_id, mentions))
        site.signals.extend(_signals(rng, pid, visit, severity, answers))
    remission = "yes" if totals[-1] < 5 else "no"
    response = "yes" if totals[0] > 0 and totals[-1] <= totals[0] / 2 else "no"
    site.outcomes.append(
        OutcomeRecord(participant_id=pid, name="remission", value=remission, date=visit)
    )
    site.outcomes.append(
        OutcomeRecord(participant_id=pid, name="response", value=response, date=visit)
    )


def _evidence(doc_id: str, mentions: list[Mention]) -> list[Evidence]:
    return [Evidence(doc_id, m.instrument, m.item, m.level, m.sentence) for m in mentions]


def generate_site(site_index: int, *, patients: int, seed: int) -> SiteData:
    """Generate one site's records in memory; the same arguments always give the same data.

    Patient ``n`` depends only on (seed, site_index, n), so a smaller run is a prefix of a
    larger one.
    """
    if site_index < 0:
        raise ValueError("site_index must be >= 0")
    if patients < 1:
        raise ValueError("patients must be >= 1")
    profile = profile_for(site_index)
    name = site_name(site_index)
    placeholder = DatasetRecord(name=f"synthetic-{name}")
    site = SiteData(name=name, dataset=placeholder)
    for number in range(1, patients + 1):
        _participant(site_index, number, seed, profile, site)
    dates = [d.date for d in site.documents] + [m.date for m in site.measures]
    dates += [s.time.date() for s in site.signals]
    dataset = DatasetRecord(
        name=f"synthetic-{name}",
        description=(
            f"Synthetic outpatient mental-health cohort, {profile.description}; "
            f"{patients} participants; generated with seed {seed}. No real persons."
        ),
        source=GENERATOR,
        licence="CC0-1.0",
        consent_basis="synthetic data: no real persons, no consent required",
        allowed_purposes=list(PURPOSES),
        languages=sorted({p.primary_language for p in site.participants}),
        collection_start=min(dates),
        collection_end=max(dates),
    )
    return replace(site, dataset=dataset)
