"""The ``detect`` audit task: mental-health classification of posts (IMHI-style).

The model reads a post with its question and the allowed labels and answers
``{"label": ...}``; ``GenerateConfig.json_schema`` holds an enum of the labels, so a
grammar-constrained backend (llama.cpp for the embedded model) can only name one of
them. Headline: weighted F1 (as in Yang et al. 2024, Table 2), with accuracy and the
parse rate. Labels in Scores are prefixed with their set (``DR:yes``) so that a run
over several sets never merges two sets' "yes".

Sources: ``None`` = project-written synthetic posts (``_detect_synth``); the IMHI
``test_instruction`` folder (all eight sets, interleaved) or one of its CSVs
(``mindcommons.datasets.imhi``); or a JSONL file with one object per line:
``{"id", "text", "labels": [...], "label"}`` and optionally ``"question"``,
``"language"``, ``"set"``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from mindcommons.datasets.imhi import IMHI_SETS, IMHIRecord, imhi_set, load_imhi, read_imhi_csv
from mindcommons.errors import InputError
from mindcommons.jsonl import need_text, read_jsonl
from mindcommons.models.base import GenerateConfig, Generation, Message
from mindcommons.suite import SUITE_TASKS
from mindcommons.suite.base import Aggregate, Sample, Score
from mindcommons.suite.tasks._detect_choice import choice_schema, confidence_of, parse_choice
from mindcommons.suite.tasks._detect_synth import (
    DEPRESSION_LABELS,
    STRESS_LABELS,
    synthetic_posts,
)

DEFAULT_SYNTHETIC = 24
SYSTEM = (
    "You classify social-media posts for mental-health research. Read the post, then "
    "answer the question with exactly one of the allowed labels."
)


# Every label a Score can carry for the IMHI sets and the synthetic sets (a site's own
# JSONL may add others; a federated run over such a file lists them in its own task).
KNOWN_LABELS: tuple[str, ...] = (
    *(f"{spec.name}:{label}" for spec in IMHI_SETS.values() for label in spec.labels),
    *(f"synth-depression:{label}" for label in DEPRESSION_LABELS),
    *(f"synth-stress:{label}" for label in STRESS_LABELS),
)


def build_messages(query: str, labels: tuple[str, ...]) -> tuple[Message, ...]:
    """The prompt: the post with its question, the allowed labels, the answer format."""
    allowed = ", ".join(f'"{label}"' for label in labels)
    user = (
        f"{query.strip()}\n\nAllowed labels: {allowed}.\n"
        'Answer with JSON only: {"label": "<one allowed label>"}'
    )
    return (Message("system", SYSTEM), Message("user", user))


def _sample(
    sample_id: str,
    query: str,
    labels: tuple[str, ...],
    label: str,
    set_name: str,
    *,
    language: str = "en",
    aspect: str | None = None,
) -> Sample:
    attributes = {"dataset": set_name}
    if aspect:
        attributes["aspect"] = aspect
    return Sample(
        id=sample_id,
        messages=build_messages(query, labels),
        target=label,
        language=language,
        attributes=attributes,
        data={"labels": list(labels), "set": set_name},
    )


def _from_imhi(record: IMHIRecord) -> Sample:
    spec = imhi_set(record.set_name)
    return _sample(
        record.id, record.query, spec.labels, record.label, spec.name, aspect=record.aspect
    )


def read_detect_jsonl(path: str | Path) -> list[Sample]:
    """Samples from the task's own JSONL; every problem names file, line and field."""
    where = str(path)
    out: list[Sample] = []
    seen: set[str] = set()
    for number, raw in read_jsonl(path):
        for key in ("id", "text", "label"):
            need_text(raw, key, file=where, record=number)
        labels = raw.get("labels")
        if (
            not isinstance(labels, list)
            or len(labels) < 2
            or not all(isinstance(x, str) and x.strip() for x in labels)
            or len(set(labels)) != len(labels)
        ):
            raise InputError(
                "bad label list",
                file=where,
                record=number,
                field="labels",
                expected="at least two distinct non-empty strings",
            )
        if raw["label"] not in labels:
            raise InputError(
                f"label {raw['label']!r} is not one of the labels",
                file=where,
                record=number,
                field="label",
                expected=" | ".join(labels),
            )
        if raw["id"] in seen:
            raise InputError(f"duplicate id {raw['id']!r}", file=where, record=number, field="id")
        seen.add(raw["id"])
        question = raw.get("question") or "Which label fits this post?"
        query = f'Consider this post: "{raw["text"].strip()}" Question: {question}'
        out.append(
            _sample(
                raw["id"],
                query,
                tuple(labels),
                raw["label"],
                str(raw.get("set") or Path(where).stem),
                language=str(raw.get("language") or "en"),
            )
        )
    if not out:
        raise InputError("no samples", file=where, expected="one JSON object per line")
    return out


def _interleave(groups: list[list[Sample]]) -> list[Sample]:
    out: list[Sample] = []
    for i in range(max((len(g) for g in groups), default=0)):
        out += [g[i] for g in groups if i < len(g)]
    return out


@dataclass(frozen=True)
class DetectTask:
    """Classify a post into one of its set's labels; weighted F1 is the headline."""

    name: str = "detect"
    description: str = (
        "Mental-health classification of posts (IMHI test sets or synthetic posts): the "
        "model picks one allowed label; weighted F1, accuracy, parse rate."
    )
    aggregates: tuple[Aggregate, ...] = (
        Aggregate("weighted_f1", "weighted_f1", labels=KNOWN_LABELS),
        Aggregate("accuracy", "accuracy", labels=KNOWN_LABELS),
        Aggregate("parse_rate", "mean", value="parsed"),
    )
    primary: str = "weighted_f1"
    max_tokens: int = 24

    def load(self, source: Path | None, *, limit: int | None = None, seed: int = 0) -> list[Sample]:
        """Samples from ``source`` (see the module docstring); ``limit`` caps the total.

        From the IMHI folder each set is shuffled with ``seed`` and the sets are taken in
        turn, so any limit spreads evenly over the eight sets.
        """
        if source is None:
            posts = synthetic_posts(limit if limit is not None else DEFAULT_SYNTHETIC, seed)
            return [
                _sample(f"detect-synth-{seed}-{i}", p.query, p.labels, p.label, p.set_name)
                for i, p in enumerate(posts)
            ]
        path = Path(source)
        if path.is_dir():
            groups = []
            for records in load_imhi(path).values():
                samples = [_from_imhi(r) for r in records]
                random.Random(f"{seed}:{records[0].set_name if records else ''}").shuffle(samples)
                groups.append(samples)
            return _interleave(groups)[:limit]
        if path.suffix.lower() == ".jsonl":
            return read_detect_jsonl(path)[:limit]
        samples = [_from_imhi(r) for r in read_imhi_csv(path)]
        if limit is not None and limit < len(samples):
            keep = sorted(random.Random(seed).sample(range(len(samples)), k=limit))
            samples = [samples[i] for i in keep]
        return samples

    def generate_config(self, sample: Sample, seed: int = 0) -> GenerateConfig:
        labels = [str(x) for x in sample.data["labels"]]
        return GenerateConfig(
            max_tokens=self.max_tokens,
            temperature=0.0,
            seed=seed,
            json_schema=choice_schema(labels),
        )

    def score(self, sample: Sample, generation: Generation) -> Score:
        labels = [str(x) for x in sample.data["labels"]]
        set_name = str(sample.data["set"])
        predicted = parse_choice(generation.text, labels)
        values = {
            "parsed": float(predicted is not None),
            "correct": float(predicted == sample.target),
        }
        return Score(
            sample_id=sample.id,
            values=values,
            label_true=f"{set_name}:{sample.target}",
            label_pred=f"{set_name}:{predicted}" if predicted is not None else None,
            confidence=confidence_of(generation, predicted),
            flags=() if predicted is not None else ("unparsed",),
        )


DETECT = DetectTask()
SUITE_TASKS.add("detect", DETECT)
