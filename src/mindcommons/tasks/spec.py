"""The task contract and the questionnaire-from-text task that PHQ-9 and GAD-7 share."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from mindcommons.models.base import GenerateConfig, Generation, Message
from mindcommons.tasks.base import EvalItem, SampleResult
from mindcommons.tasks.parsing import evidence_options, is_verbatim, parse_items

ALL_KINDS = ("clinical_note", "therapy_transcript", "patient_message", "other")
EVIDENCE_MAX_CHARS = 120


@runtime_checkable
class TaskSpec(Protocol):
    """What every registered task provides."""

    @property
    def name(self) -> str: ...

    @property
    def instrument(self) -> str: ...

    @property
    def document_kinds(self) -> tuple[str, ...]: ...

    def build_messages(self, item: EvalItem) -> list[Message]: ...

    def output_schema(self) -> dict[str, object]: ...

    def output_schema_for(self, item: EvalItem) -> dict[str, object]: ...

    def generate_config(self, seed: int = 0) -> GenerateConfig: ...

    def score(self, item: EvalItem, generation: Generation) -> SampleResult: ...


@dataclass(frozen=True)
class QuestionnaireTask:
    """Score each item of a questionnaire from a note/transcript, quoting evidence.

    ``item_labels`` are short English paraphrases of the items (short on purpose:
    the embedded model has 135M parameters). ``example`` is one worked example
    (text, per-item (score, evidence)) shown to the model as a prior turn
    (``show_example``). ``evidence_choices``: each item's evidence is constrained by the
    grammar to one of the text's sentences (``evidence_options``) or "", so every quote
    is verbatim; ``evidence_first``: each item object gives its evidence before its score.
    """

    name: str
    instrument: str
    item_labels: tuple[str, ...]
    example_text: str
    example_answers: tuple[tuple[int, str], ...]
    document_kinds: tuple[str, ...] = ALL_KINDS
    min_answer: int = 0
    max_answer: int = 3
    max_tokens: int = 576  # 9 x (~40-token evidence + ~17 structure); measured 170-310
    show_example: bool = True
    # evidence_first is off: on SmolLM2-135M it made item MAE worse (phq9_quality.py)
    evidence_choices: bool = False
    evidence_first: bool = False
    max_options: int = 24

    @property
    def n_items(self) -> int:
        return len(self.item_labels)

    def system_prompt(self) -> str:
        items = "; ".join(f"{n} {label}" for n, label in enumerate(self.item_labels, 1))
        return (
            f"Rate the {self.n_items} {self.instrument} items from the text. "
            "Score: 0 not at all, 1 several days, 2 more than half the days, "
            f"3 nearly every day. {self._evidence_rule()}\n"
            f"Items: {items}."
        )

    def _evidence_rule(self) -> str:
        if self.evidence_choices:
            return (
                "Evidence: copy the one sentence of the text about the item; "
                'use "" and score 0 if the item is not mentioned.'
            )
        return (
            "Evidence: copy a short phrase exactly from the text, "
            'in its language; use "" and score 0 if the item is not mentioned.'
        )

    def answer_json(self, answers: tuple[tuple[int, str], ...]) -> str:
        rows = [
            {"item": n, "evidence": quote, "score": score}
            if self.evidence_first
            else {"item": n, "score": score, "evidence": quote}
            for n, (score, quote) in enumerate(answers, 1)
        ]
        return json.dumps({"items": rows}, ensure_ascii=False)

    def build_messages(self, item: EvalItem) -> list[Message]:
        example = [
            Message("user", "Text:\n" + self.example_text),
            Message("assistant", self.answer_json(self.example_answers)),
        ]
        return [
            Message("system", self.system_prompt()),
            *(example if self.show_example else []),
            Message("user", "Text:\n" + item.text),
        ]

    def output_schema(self) -> dict[str, object]:
        """The schema without a text: evidence is any string up to EVIDENCE_MAX_CHARS."""
        return self._schema({"type": "string", "maxLength": EVIDENCE_MAX_CHARS})

    def output_schema_for(self, item: EvalItem) -> dict[str, object]:
        """The schema for one text: with ``evidence_choices``, evidence from its sentences."""
        if not self.evidence_choices:
            return self.output_schema()
        options = evidence_options(item.text, self.max_options, EVIDENCE_MAX_CHARS)
        return self._schema({"type": "string", "enum": ["", *options]})

    def _schema(self, evidence: dict[str, object]) -> dict[str, object]:
        """Exactly ``n_items`` entries, numbered in order, scores from an enum."""
        scores = list(range(self.min_answer, self.max_answer + 1))
        # enum, not minimum/maximum: llama.cpp grammars ignore bounds
        score = {"type": "integer", "enum": scores}
        order = (
            ("item", "evidence", "score") if self.evidence_first else ("item", "score", "evidence")
        )

        def entry(number: int) -> dict[str, object]:
            fields = {"item": {"type": "integer", "const": number}, "score": score}
            fields["evidence"] = evidence
            return {
                "type": "object",
                "properties": {key: fields[key] for key in order},
                "required": list(order),
                "additionalProperties": False,
            }

        return {
            "type": "object",
            "properties": {
                "items": {
                    "type": "array",
                    "prefixItems": [entry(n) for n in range(1, self.n_items + 1)],
                    "items": False,
                    "minItems": self.n_items,
                    "maxItems": self.n_items,
                }
            },
            "required": ["items"],
            "additionalProperties": False,
        }

    def generate_config(self, seed: int = 0) -> GenerateConfig:
        """Settings for every text; the runners swap in ``output_schema_for(item)``."""
        return GenerateConfig(
            max_tokens=self.max_tokens,
            temperature=0.0,
            seed=seed,
            json_schema=self.output_schema(),
        )

    def score(self, item: EvalItem, generation: Generation) -> SampleResult:
        result = parse_items(generation.text, self.n_items, self.min_answer, self.max_answer)
        verbatim = tuple(
            result.parsed and is_verbatim(quote, score, item.text)
            for score, quote in zip(result.scores, result.evidence, strict=True)
        )
        return SampleResult(
            sample_id=item.document_id,
            language=item.language,
            kind=item.kind,
            instrument=item.instrument,
            true_items=tuple(item.true_items),
            true_total=item.true_total,
            predicted_items=result.scores,
            parsed=result.parsed,
            evidence_verbatim=verbatim,
            input_tokens=generation.usage.input_tokens,
            output_tokens=generation.usage.output_tokens,
            seconds=generation.seconds,
            attributes=dict(item.attributes),
        )
