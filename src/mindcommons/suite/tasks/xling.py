"""The ``xling`` audit task: the same health questions in several languages (XLingHealth).

Verifiability, as in XLingEval (Jin et al. 2024): given a question and a candidate answer,
is the answer a correct answer to the question? The instruction is written in the
sample's language and the model answers "Yes" or "No" in English (enum-constrained
JSON), as in the original protocol. Headline: macro F1 over yes/no; per language through
``Sample.language``, and the gap to English through ``pair`` (one question-answer
item), ``variant`` (its language) and ``baseline = "en"``. Published GPT-3.5 macro F1
on LiveQA, en/es/zh/hi: .714 / .662 / .626 / .666.

Sources: ``None`` = project-written questions in the four languages (``_xling_synth``);
an XLingHealth workbook (``LiveQA.xlsx``) or its folder
(``mindcommons.datasets.xlinghealth``; rows missing a language are left out in all).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from mindcommons.datasets.xlinghealth import LANGUAGES, XLingItem, load_xlinghealth
from mindcommons.errors import ConfigError
from mindcommons.models.base import GenerateConfig, Generation, Message
from mindcommons.suite import SUITE_TASKS
from mindcommons.suite.base import Aggregate, Sample, Score
from mindcommons.suite.tasks._detect_choice import choice_schema, confidence_of, parse_choice

ANSWERS = ("Yes", "No")
BASELINE_LANGUAGE = "en"

# Project-written instructions; the answer word stays English in every language.
_PROMPT: dict[str, str] = {
    "en": (
        "Answer with one English word, 'Yes' or 'No', and give no reasons: is the response "
        "below a factually correct answer to the question below?\n"
        "Question:\n```\n{question}\n```\nResponse:\n```\n{answer}\n```\n"
        'Reply as JSON: {{"answer": "Yes"}} or {{"answer": "No"}}'
    ),
    "es": (
        "Responde con una sola palabra en inglés, 'Yes' o 'No', sin dar razones: ¿es la "
        "respuesta de abajo una respuesta correcta a la pregunta de abajo?\n"
        "Pregunta:\n```\n{question}\n```\nRespuesta:\n```\n{answer}\n```\n"
        'Responde en JSON: {{"answer": "Yes"}} o {{"answer": "No"}}'
    ),
    "zh": (
        "请只用一个英文单词回答（'Yes' 或 'No'，不要解释）：下面的回答是否是下面问题的正确答案？\n"
        "问题：\n```\n{question}\n```\n回答：\n```\n{answer}\n```\n"
        '请用 JSON 回复：{{"answer": "Yes"}} 或 {{"answer": "No"}}'
    ),
    "hi": (
        "केवल एक अंग्रेज़ी शब्द, 'Yes' या 'No', में उत्तर दें और कोई कारण न दें: क्या नीचे दिया "
        "गया जवाब नीचे दिए गए प्रश्न का तथ्यात्मक रूप से सही उत्तर है?\n"
        "प्रश्न:\n```\n{question}\n```\nजवाब:\n```\n{answer}\n```\n"
        'JSON में उत्तर दें: {{"answer": "Yes"}} या {{"answer": "No"}}'
    ),
}
# Answers in the instruction's language, for backends that ignore the schema.
_ALIASES = {
    "sí": "Yes",
    "si": "Yes",
    "是": "Yes",
    "对": "Yes",
    "否": "No",
    "不是": "No",
    "हाँ": "Yes",
    "हां": "Yes",
    "नहीं": "No",
}


def build_messages(item: XLingItem, language: str) -> tuple[Message, ...]:
    """The verifiability prompt for ``item`` in ``language``."""
    text = _PROMPT[language].format(
        question=item.questions[language], answer=item.answers[language]
    )
    return (Message("user", text),)


def _samples(items: list[XLingItem], languages: tuple[str, ...]) -> list[Sample]:
    out: list[Sample] = []
    for item in items:
        for lang in languages:
            out.append(
                Sample(
                    id=f"xling-{item.id}-{lang}",
                    messages=build_messages(item, lang),
                    target="yes" if item.correct else "no",
                    language=lang,
                    pair=f"xling-{item.id}",
                    variant=lang,
                    baseline=BASELINE_LANGUAGE,
                    data={"question_id": item.question_id},
                )
            )
    return out


@dataclass(frozen=True)
class XlingTask:
    """Is this answer correct for this question? Per language, and the gap to English."""

    name: str = "xling"
    description: str = (
        "Cross-lingual health QA verifiability (XLingHealth LiveQA or synthetic): yes/no "
        "macro F1 per language (en/es/zh/hi) and the paired gap to English."
    )
    aggregates: tuple[Aggregate, ...] = (
        Aggregate("macro_f1", "macro_f1", labels=("yes", "no")),
        Aggregate("accuracy", "accuracy", labels=("yes", "no")),
        Aggregate("parse_rate", "mean", value="parsed"),
    )
    primary: str = "macro_f1"
    languages: tuple[str, ...] = tuple(LANGUAGES)  # English first
    max_tokens: int = 12

    def __post_init__(self) -> None:
        unknown = [x for x in self.languages if x not in _PROMPT]
        if unknown or not self.languages or self.languages[0] != BASELINE_LANGUAGE:
            raise ConfigError(
                f"xling languages {list(self.languages)} must start with 'en' and be among "
                f"{', '.join(_PROMPT)}"
            )

    def load(self, source: Path | None, *, limit: int | None = None, seed: int = 0) -> list[Sample]:
        """Every language of each item together (English first); questions in a seeded
        order, each question's candidate answers together (true answer first).

        ``limit`` caps the number of samples; use a multiple of the number of languages
        to keep whole items (a smaller remainder keeps English and the next languages).
        """
        if source is None:
            items = _shuffled(_synthetic(), seed)
        else:
            items = _shuffled(load_xlinghealth(source).items, seed)
        if limit is None:
            return _samples(items, self.languages)
        per = len(self.languages)
        return _samples(items[: -(-limit // per)], self.languages)[:limit]

    def generate_config(self, sample: Sample, seed: int = 0) -> GenerateConfig:
        return GenerateConfig(
            max_tokens=self.max_tokens,
            temperature=0.0,
            seed=seed,
            json_schema=choice_schema(ANSWERS, key="answer"),
        )

    def score(self, sample: Sample, generation: Generation) -> Score:
        answer = parse_choice(generation.text, ANSWERS, key="answer", aliases=_ALIASES)
        predicted = answer.lower() if answer is not None else None
        return Score(
            sample_id=sample.id,
            values={
                "parsed": float(predicted is not None),
                "correct": float(predicted == sample.target),
            },
            label_true=sample.target,
            label_pred=predicted,
            confidence=confidence_of(generation, answer),
            flags=() if predicted is not None else ("unparsed",),
        )


def _synthetic() -> list[XLingItem]:
    from mindcommons.suite.tasks._xling_synth import synthetic_items

    return synthetic_items()


def _shuffled(items: list[XLingItem], seed: int) -> list[XLingItem]:
    """Questions in a seeded order, each with all its candidate answers together (true one
    first), so any limit that is a multiple of 5 answers keeps the data's 1:4 ratio."""
    by_question: dict[str, list[XLingItem]] = {}
    for item in items:
        by_question.setdefault(item.question_id, []).append(item)
    order = list(by_question)
    random.Random(f"xling:{seed}").shuffle(order)
    return [
        item
        for qid in order
        for item in sorted(by_question[qid], key=lambda x: (not x.correct, x.row))
    ]


XLING = XlingTask()
SUITE_TASKS.add("xling", XLING)
