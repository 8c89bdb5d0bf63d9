"""The ``simplify`` task: a clinical note rewritten for the patient, in the note's language.

Scored on two things a patient-facing rewrite must get right at once:

* **readability** in the note's language before and after (``_readability``: Flesch
  Reading Ease for en, Fernández Huerta for es, the Martins et al. Flesch adaptation for
  pt; another language gets no readability values, flagged);
* **faithfulness** (``_facts``): the share of the note's medications, doses, dates,
  numbers and diagnoses/findings (with their negation) the rewrite kept; how many
  medications, doses, dates or numbers it *invented*; how many negated findings it turned
  into affirmed ones ("denies suicidal ideation" -> "you have suicidal thoughts").

A sample passes when every fact is kept, none is invented or flipped, and the rewrite is
easier to read than the note.

Sources: ``load(None)`` generates project-written notes in en/es/pt; ``load(path)`` reads
a JSONL file with one ``{"id", "text", "language"}`` object per line (``attributes``, an
object of subgroup columns, optional).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mindcommons.errors import InputError
from mindcommons.jsonl import need_text, read_jsonl
from mindcommons.models.base import GenerateConfig, Generation, Message
from mindcommons.suite import SUITE_TASKS
from mindcommons.suite.base import Aggregate, Sample, Score
from mindcommons.suite.tasks._facts import FactKind, check_facts
from mindcommons.suite.tasks._readability import readability
from mindcommons.suite.tasks._simplify_notes import generate_notes

SYNTHETIC_NOTES = 12
MAX_TOKENS = 320

INSTRUCTIONS: Mapping[str, str] = {
    "en": (
        "Rewrite this clinical note for the patient in plain English, with short sentences "
        "and everyday words. Keep every medicine, dose, date, number and diagnosis exactly "
        "as written, keep what the note says is absent, and add nothing that is not in "
        "the note. Address the patient as 'you'."
    ),
    "es": (
        "Reescribe esta nota clínica para el paciente en español sencillo, con frases cortas "
        "y palabras cotidianas. Conserva exactamente cada medicamento, dosis, fecha, número "
        "y diagnóstico, conserva lo que la nota dice que no hay, y no añadas nada que no "
        "esté en la nota. Habla al paciente de 'tú'."
    ),
    "pt": (
        "Reescreva esta nota clínica para o paciente em português simples, com frases "
        "curtas e palavras do dia a dia. Mantenha exatamente cada medicamento, dose, data, "
        "número e diagnóstico, mantenha o que a nota diz que não existe, e não acrescente "
        "nada que não esteja na nota. Fale com o paciente como 'você'."
    ),
}
NOTE_LABEL = {"en": "Note", "es": "Nota", "pt": "Nota"}
KIND_VALUES: Mapping[str, FactKind] = {
    "medications_kept": "medication",
    "doses_kept": "dose",
    "dates_kept": "date",
    "numbers_kept": "number",
}


def _instruction(language: str) -> tuple[str, str]:
    root = language.lower().split("-")[0]
    return INSTRUCTIONS.get(root, INSTRUCTIONS["en"]), NOTE_LABEL.get(root, "Note")


def note_sample(
    sample_id: str, text: str, language: str, attributes: Mapping[str, str] | None = None
) -> Sample:
    """The Sample asking for a patient-facing rewrite of ``text``."""
    instruction, label = _instruction(language)
    return Sample(
        id=sample_id,
        messages=(Message("user", f"{instruction}\n\n{label}:\n{text.strip()}"),),
        language=language,
        attributes=dict(attributes or {}),
        data={"note": text},
    )


def read_notes(path: Path) -> list[Sample]:
    """Samples from a JSONL file of ``{"id", "text", "language"[, "attributes"]}`` lines."""
    if not path.is_file():
        raise InputError("file not found", file=str(path), expected="a JSONL file of notes")
    samples: list[Sample] = []
    seen: set[str] = set()
    for n, obj in read_jsonl(path):
        for key in ("id", "text", "language"):
            need_text(obj, key, file=str(path), record=n)
        if obj["id"] in seen:
            raise InputError(f"duplicate id {obj['id']!r}", file=str(path), record=n, field="id")
        seen.add(obj["id"])
        attributes = obj.get("attributes", {})
        if not isinstance(attributes, dict) or not all(
            isinstance(v, str) for v in attributes.values()
        ):
            raise InputError(
                "bad attributes",
                file=str(path),
                record=n,
                field="attributes",
                expected="an object of string values",
            )
        samples.append(note_sample(obj["id"], obj["text"], obj["language"], attributes))
    if not samples:
        raise InputError("no notes", file=str(path), expected="at least one JSONL line")
    return samples


def score_rewrite(sample_id: str, note: str, rewrite: str, language: str) -> Score:
    """Readability before/after and the fact check of ``rewrite`` against ``note``."""
    values: dict[str, float] = {}
    flags: list[str] = []
    if not rewrite.strip():
        flags.append("empty_output")
    before, after = readability(note, language), readability(rewrite, language)
    gain: float | None = None
    if before is not None and after is not None:
        gain = after.ease - before.ease
        values.update(
            readability_source=before.ease,
            readability_output=after.ease,
            readability_gain=round(gain, 2),
            words_per_sentence_output=round(after.words_per_sentence, 2),
        )
        if gain <= 0:
            flags.append("not_simpler")
    else:
        flags.append("readability_unsupported_language")
    check = check_facts(note, rewrite, language)
    kept = check.kept_fraction
    if kept is not None:
        values["facts_kept"] = kept
    for name, kind in KIND_VALUES.items():
        fraction = check.kept_fraction_of(kind)
        if fraction is not None:
            values[name] = fraction
    for name, negated in (("findings_kept", False), ("negations_kept", True)):
        fraction = check.kept_fraction_of("concept", negated=negated)
        if fraction is not None:
            values[name] = fraction
    values["facts_invented"] = float(len(check.invented))
    values["invented_any"] = 1.0 if check.invented else 0.0
    values["negations_flipped"] = float(len(check.flipped))
    if check.invented:
        flags.append("fact_invented")
    if check.flipped:
        flags.append("negation_flipped")
    passed = (
        (kept is None or kept == 1.0)
        and not check.invented
        and not check.flipped
        and (gain is None or gain > 0)
        and bool(rewrite.strip())
    )
    values["pass"] = 1.0 if passed else 0.0
    return Score(sample_id=sample_id, values=values, flags=tuple(flags))


@dataclass(frozen=True)
class SimplifyTask:
    """Rewrite a clinical note for the patient; score readability and faithfulness."""

    name: str = "simplify"
    description: str = (
        "Clinical note rewritten for the patient in its own language: readability gain "
        "and facts kept / invented / negations flipped (rule-based)"
    )
    aggregates: tuple[Aggregate, ...] = (
        Aggregate("facts_kept", "mean", "facts_kept"),
        Aggregate("pass", "mean", "pass"),
        Aggregate("readability_gain", "mean", "readability_gain"),
        Aggregate("facts_invented", "mean", "facts_invented", higher_is_better=False),
        Aggregate("invented_any", "mean", "invented_any", higher_is_better=False),
        Aggregate("negations_kept", "mean", "negations_kept"),
        Aggregate("negations_flipped", "mean", "negations_flipped", higher_is_better=False),
    )
    primary: str = "facts_kept"
    max_tokens: int = MAX_TOKENS

    def load(self, source: Path | None, *, limit: int | None = None, seed: int = 0) -> list[Sample]:
        if source is None:
            count = SYNTHETIC_NOTES if limit is None else limit
            notes = generate_notes(count, seed)
            return [note_sample(note.id, note.text, note.language) for note in notes]
        samples = read_notes(Path(source))
        return samples if limit is None else samples[:limit]

    def generate_config(self, sample: Sample, seed: int = 0) -> GenerateConfig:
        return GenerateConfig(max_tokens=self.max_tokens, temperature=0.0, seed=seed)

    def score(self, sample: Sample, generation: Generation) -> Score:
        note = _note(sample)
        score = score_rewrite(sample.id, note, generation.text, sample.language)
        if generation.finish_reason == "length":
            return Score(score.sample_id, score.values, flags=(*score.flags, "truncated"))
        return score


def _note(sample: Sample) -> str:
    note: Any = sample.data.get("note")
    if not isinstance(note, str):
        raise InputError(
            "sample has no source note", record=sample.id, field="data.note", expected="text"
        )
    return note


SIMPLIFY = SimplifyTask()
SUITE_TASKS.add(SIMPLIFY.name, SIMPLIFY)
