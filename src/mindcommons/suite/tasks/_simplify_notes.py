"""Project-written clinical notes (en/es/pt) for the ``simplify`` task's synthetic samples.

Each note is assembled by a seeded generator from clinician-style phrases written for
this project (no real patient, no public dataset text) and carries the facts a
patient-facing rewrite must keep: a diagnosis, a medication with its dose and a change,
dates, a questionnaire score, and negated risk findings.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Mapping
from dataclasses import dataclass

from mindcommons.suite.tasks._facts import lexicon

LANGUAGES = ("en", "es", "pt")

# medication (canonical INN), starting dose, raised dose (mg)
MEDICATIONS = (
    ("sertraline", 50, 100),
    ("fluoxetine", 20, 40),
    ("citalopram", 20, 30),
    ("escitalopram", 10, 20),
    ("mirtazapine", 15, 30),
    ("venlafaxine", 75, 150),
)

TEXT: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "en": {
        "opening": ("Follow-up review on {seen}.", "Outpatient psychiatric review on {seen}."),
        "diagnosis": (
            "Diagnosis: moderate depressive episode.",
            "Diagnosis: recurrent depressive disorder, current episode moderate.",
            "Diagnosis: generalised anxiety disorder with secondary depression.",
        ),
        "mse": (
            "Presents with anhedonia, psychomotor retardation and early-morning wakening; "
            "affect constricted, thought form coherent.",
            "Reports persistent low mood with diurnal variation and reduced appetite; "
            "concentration subjectively impaired.",
        ),
        "negations": (
            "Denies suicidal ideation. No psychotic symptoms elicited.",
            "No suicidal ideation or self-harm reported. No psychotic features.",
        ),
        "medication": (
            "Commenced {med} {dose} mg once daily on {start}; titrate to {dose2} mg after "
            "{weeks} weeks if tolerated.",
        ),
        "score": ("PHQ-9 score {score} today (previously {prev}).",),
        "plan": (
            "Plan: continue psychological therapy; next review on {next}.",
            "Plan: monitor for side effects; next review on {next}.",
        ),
    },
    "es": {
        "opening": (
            "Revisión de seguimiento el {seen}.",
            "Consulta ambulatoria de psiquiatría el {seen}.",
        ),
        "diagnosis": (
            "Diagnóstico: episodio depresivo moderado.",
            "Diagnóstico: trastorno depresivo recurrente, episodio actual moderado.",
            "Diagnóstico: trastorno de ansiedad generalizada con depresión secundaria.",
        ),
        "mse": (
            "Presenta anhedonia, enlentecimiento psicomotor y despertar precoz; afecto "
            "constreñido, discurso coherente.",
            "Refiere ánimo bajo persistente con variación diurna e hiporexia; refiere "
            "dificultad de concentración.",
        ),
        "negations": (
            "Niega ideación suicida. Sin síntomas psicóticos.",
            "No refiere ideación suicida ni autolesiones. Sin rasgos psicóticos.",
        ),
        "medication": (
            "Se inicia {med} {dose} mg una vez al día el {start}; aumentar a {dose2} mg tras "
            "{weeks} semanas si se tolera.",
        ),
        "score": ("Puntuación PHQ-9 de {score} hoy (previamente {prev}).",),
        "plan": (
            "Plan: continuar psicoterapia; próxima revisión el {next}.",
            "Plan: vigilar efectos secundarios; próxima revisión el {next}.",
        ),
    },
    "pt": {
        "opening": (
            "Consulta de seguimento em {seen}.",
            "Consulta ambulatorial de psiquiatria em {seen}.",
        ),
        "diagnosis": (
            "Diagnóstico: episódio depressivo moderado.",
            "Diagnóstico: transtorno depressivo recorrente, episódio atual moderado.",
            "Diagnóstico: transtorno de ansiedade generalizada com depressão secundária.",
        ),
        "mse": (
            "Apresenta anedonia, lentificação psicomotora e despertar precoce; afeto "
            "constrito, pensamento coerente.",
            "Refere humor deprimido persistente com variação diurna e hiporexia; refere "
            "dificuldade de concentração.",
        ),
        "negations": (
            "Nega ideação suicida. Sem sintomas psicóticos.",
            "Não refere ideação suicida nem autolesões. Sem sintomas psicóticos.",
        ),
        "medication": (
            "Iniciada {med} {dose} mg uma vez ao dia em {start}; aumentar para {dose2} mg após "
            "{weeks} semanas se tolerado.",
        ),
        "score": ("Pontuação PHQ-9 de {score} hoje (anteriormente {prev}).",),
        "plan": (
            "Plano: manter psicoterapia; próxima consulta em {next}.",
            "Plano: vigiar efeitos colaterais; próxima consulta em {next}.",
        ),
    },
}
SECTIONS = ("opening", "diagnosis", "mse", "negations", "medication", "score", "plan")


@dataclass(frozen=True)
class SyntheticNote:
    id: str
    language: str
    text: str


def _date(day: dt.date, language: str) -> str:
    month = lexicon()["months"][language][day.month - 1]
    if language == "en":
        return f"{day.day} {month.capitalize()} {day.year}"
    return f"{day.day} de {month} de {day.year}"


def _med_name(canonical: str, language: str) -> str:
    forms: list[str] = lexicon()["medications"][canonical]
    if language == "en":
        return forms[0]
    # the es/pt INN spelling is the first form ending in -a/-o, if there is one
    return next((f for f in forms[1:] if f.endswith(("a", "o"))), forms[0])


def generate_notes(n: int, seed: int = 0) -> list[SyntheticNote]:
    """``n`` notes, languages in turn (en, es, pt, en, ...), reproducible from ``seed``."""
    rng = random.Random(f"simplify-notes-{seed}")
    notes = []
    for i in range(n):
        language = LANGUAGES[i % len(LANGUAGES)]
        med, dose, dose2 = rng.choice(MEDICATIONS)
        seen = dt.date(2025, 1, 6) + dt.timedelta(days=rng.randrange(300))
        start = seen - dt.timedelta(days=rng.randrange(14, 60))
        fields = {
            "seen": _date(seen, language),
            "start": _date(start, language),
            "next": _date(seen + dt.timedelta(weeks=rng.choice((4, 6, 8))), language),
            "med": _med_name(med, language),
            "dose": dose,
            "dose2": dose2,
            "weeks": rng.choice((2, 3, 4)),
            "score": rng.randrange(10, 20),
            "prev": rng.randrange(20, 26),
        }
        parts = [rng.choice(TEXT[language][section]).format(**fields) for section in SECTIONS]
        notes.append(SyntheticNote(f"simplify-{seed}-{i:03d}", language, "\n".join(parts)))
    return notes
