"""Clinical notes, therapy transcripts and patient messages whose wording follows the answers."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from mindcommons.synth.vocab import Vocab

PHQ9 = "phq9"
GAD7 = "gad7"
INSTRUMENT_NAMES = {PHQ9: "PHQ-9", GAD7: "GAD-7"}
RISK_ITEM = 9  # PHQ-9 item 9 (thoughts of death or self-harm) is always asked about
MENTION_ABSENT_NOTE = 0.35  # chance a level-0 item is documented as absent in a note
MENTION_ABSENT_TRANSCRIPT = 0.25


@dataclass(frozen=True)
class Mention:
    """One sentence of a document and the questionnaire answer it expresses."""

    instrument: str  # "PHQ-9" / "GAD-7"
    item: int  # 1-based item number
    level: int  # the answer (0-3) the sentence was written from
    sentence: str  # exact text as it appears in the document


@dataclass(frozen=True)
class Answers:
    """One visit's answers, 0-3 per item, in instrument order."""

    phq9: Sequence[int]
    gad7: Sequence[int]

    def of(self, key: str) -> Sequence[int]:
        return self.phq9 if key == PHQ9 else self.gad7


def _mention(key: str, item: int, level: int, sentence: str) -> Mention:
    return Mention(INSTRUMENT_NAMES[key], item, level, sentence)


def clinical_note(
    rng: random.Random, vocab: Vocab, answers: Answers, *, first_visit: bool
) -> tuple[str, list[Mention]]:
    """A clinician's note in the third person: mood, anxiety, risk and plan sections."""
    headings = vocab.section("note")["headings"]
    templates = vocab.phrases("note", "present")
    mentions: list[Mention] = []

    def sentences(key: str, items: Sequence[int]) -> list[str]:
        out = []
        for item in items:
            level = answers.of(key)[item - 1]
            if level == 0 and rng.random() >= MENTION_ABSENT_NOTE:
                continue
            sentence = vocab.phrase(rng, key, item, level, "third", templates)
            mentions.append(_mention(key, item, level, sentence))
            out.append(sentence)
        return out

    opening = vocab.choose(rng, "note", "opening_first" if first_visit else "opening_follow")
    mood = sentences(PHQ9, range(1, RISK_ITEM)) or [vocab.choose(rng, "note", "none_mood")]
    anxiety = sentences(GAD7, range(1, 8)) or [vocab.choose(rng, "note", "none_anxiety")]
    risk_level = answers.phq9[RISK_ITEM - 1]
    risk_sentence = vocab.phrase(rng, PHQ9, RISK_ITEM, risk_level, "third", templates)
    mentions.append(_mention(PHQ9, RISK_ITEM, risk_level, risk_sentence))
    risk = [risk_sentence]
    if risk_level > 0:
        risk.append(rng.choice(vocab.section("note")["safety"][str(risk_level)]))
    lines = [
        opening,
        f"{headings['mood']} {' '.join(mood)}",
        f"{headings['anxiety']} {' '.join(anxiety)}",
        f"{headings['risk']} {' '.join(risk)}",
        f"{headings['plan']} {vocab.choose(rng, 'note', 'plan')}",
    ]
    return "\n".join(lines), mentions


def therapy_transcript(
    rng: random.Random, vocab: Vocab, answers: Answers, *, first_visit: bool, severe: bool
) -> tuple[str, list[Mention]]:
    """A therapy session as ``Therapist:`` / ``Client:`` turns (labels in the document language)."""
    speakers = vocab.section("transcript")["speakers"]
    therapist, client = speakers["therapist"], speakers["client"]
    templates = vocab.phrases("transcript", "present")
    turns: list[tuple[str, str]] = [
        (
            therapist,
            vocab.choose(
                rng, "transcript", f"therapist_open_{'first' if first_visit else 'follow'}"
            ),
        ),
        (client, vocab.choose(rng, "transcript", f"client_open_{'high' if severe else 'low'}")),
    ]
    topics = [(PHQ9, i) for i in range(1, RISK_ITEM)] + [(GAD7, i) for i in range(1, 8)]
    rng.shuffle(topics)
    mentions: list[Mention] = []
    for key, item in topics:
        level = answers.of(key)[item - 1]
        if level == 0 and rng.random() >= MENTION_ABSENT_TRANSCRIPT:
            continue
        if level == 0 or rng.random() < 0.75:
            question = vocab.ask(rng, key, item)
        else:
            question = vocab.choose(rng, "transcript", "therapist_generic")
        sentence = vocab.phrase(rng, key, item, level, "first", templates)
        mentions.append(_mention(key, item, level, sentence))
        turns += [(therapist, question), (client, sentence)]
    risk_level = answers.phq9[RISK_ITEM - 1]
    risk_sentence = vocab.phrase(rng, PHQ9, RISK_ITEM, risk_level, "first", templates)
    mentions.append(_mention(PHQ9, RISK_ITEM, risk_level, risk_sentence))
    turns += [(therapist, vocab.ask(rng, PHQ9, RISK_ITEM)), (client, risk_sentence)]
    if risk_level > 0:
        turns += [
            (therapist, vocab.choose(rng, "transcript", "safety_follow")),
            (client, vocab.choose(rng, "transcript", "client_close")),
        ]
    turns += [
        (therapist, vocab.choose(rng, "transcript", "therapist_close")),
        (client, vocab.choose(rng, "transcript", "client_close")),
    ]
    return "\n".join(f"{who}: {said}" for who, said in turns), mentions


def patient_message(
    rng: random.Random, vocab: Vocab, answers: Answers
) -> tuple[str, list[Mention]]:
    """A short first-person message about the (up to three) most troubling symptoms."""
    candidates = [
        (answers.of(key)[item - 1], key, item)
        for key, count in ((PHQ9, RISK_ITEM - 1), (GAD7, 7))
        for item in range(1, count + 1)
        if answers.of(key)[item - 1] > 0
    ]
    rng.shuffle(candidates)
    candidates.sort(key=lambda c: -c[0])  # stable: ties keep the shuffled order
    templates = vocab.phrases("message", "present")
    mentions = []
    body = []
    for level, key, item in candidates[: rng.randint(1, 3)]:
        sentence = vocab.present(rng, key, item, level, "first", templates)
        mentions.append(_mention(key, item, level, sentence))
        body.append(sentence)
    if not body:
        body.append(vocab.choose(rng, "message", "calm"))
    parts = [
        vocab.choose(rng, "message", "opening"),
        *body,
        vocab.choose(rng, "message", "closing"),
    ]
    return " ".join(parts), mentions
