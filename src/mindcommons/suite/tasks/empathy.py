"""The ``empathy`` task: the model replies to a help-seeking post; the reply is scored on the
three EPITOME communication mechanisms (Sharma et al. 2020).

* ``ER`` emotional reactions, ``IP`` interpretations, ``EX`` explorations, each at level
  0 (none), 1 (weak) or 2 (strong), predicted by the trained ``empathy`` measurement model
  (``mindcommons.measure``) from the (post, reply) pair. ``empathy`` is their sum (0-6),
  the headline; ``<mech>_any`` says whether the mechanism is present at all.
* Optionally a local judge (any model backend, asked a rubric question with a JSON
  schema) scores the same three levels as ``judge_er``/``judge_ip``/``judge_ex``: a second
  opinion, never a substitute for the measurer.

Sources: ``load(None)`` uses help-seeking posts written for this project (English: the
EPITOME measurer is trained on English Reddit); ``load(path)`` reads the distinct seeker
posts of an EPITOME folder or CSV file (research / non-commercial licence; see
``mindcommons.datasets.epitome``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mindcommons.datasets.epitome import MECHANISMS, seeker_posts
from mindcommons.errors import InputError
from mindcommons.models.base import GenerateConfig, Generation, Message, ModelBackend
from mindcommons.suite import SUITE_TASKS
from mindcommons.suite.base import Aggregate, Sample, Score
from mindcommons.suite.tasks._measurers import Measurer, load_named, predict_one

MAX_TOKENS = 160
SYSTEM = (
    "You are replying to a post on a peer-support forum for mental health. Write a short, "
    "caring reply of two to four sentences to the person who wrote it."
)
# Written for this project: no real person, no public dataset text.
SYNTHETIC_POSTS: tuple[str, ...] = (
    "I haven't left my flat in two weeks. Every time I think about going outside my chest "
    "gets tight and I just stay in bed instead.",
    "My mum died in the spring and everyone acts like I should be over it by now. I still "
    "can't open her messages on my phone.",
    "I got rejected from every job I applied to this month. I'm starting to think I'm just "
    "not good enough for anything.",
    "I can't sleep. I lie awake replaying every awkward thing I said during the day.",
    "My partner and I keep fighting about money and I feel like it's all my fault.",
    "I moved to a new city for university and I don't know anyone. I eat lunch alone every "
    "day and pretend I'm busy on my phone.",
    "Does anyone else feel numb all the time? I don't feel sad exactly, I just don't feel "
    "anything.",
    "I relapsed after six months clean and I'm so ashamed I haven't told my sponsor.",
    "My anxiety is so bad before exams that I throw up. I have three next week.",
    "I've been cutting again. I know it's not good but it's the only thing that helps.",
    "My friends stopped inviting me places. I guess I'm too much of a downer to be around.",
    "Work is burying me. I cry in the car before every shift and then go in and smile.",
)


def post_sample(post: str, *, prefix: str = "empathy") -> Sample:
    """The Sample asking for a reply to ``post`` (id from a hash of the post)."""
    digest = hashlib.sha1(post.encode("utf-8")).hexdigest()[:12]
    return Sample(
        id=f"{prefix}-{digest}",
        messages=(Message("system", SYSTEM), Message("user", post.strip())),
        language="en",
        data={"post": post},
    )


JUDGE_SCHEMA: dict[str, object] = {
    "type": "object",
    "properties": {m: {"type": "integer", "enum": [0, 1, 2]} for m in MECHANISMS},
    "required": list(MECHANISMS),
}
JUDGE_RUBRIC = (
    "Rate the empathy of a reply to a help-seeking post on three mechanisms, each 0 (none), "
    "1 (weak) or 2 (strong):\n"
    "ER (emotional reactions): the reply expresses warmth, compassion or concern for the "
    "poster (2: specific feelings, e.g. 'I feel really sad for you').\n"
    "IP (interpretations): the reply shows it understood the poster's feelings or "
    "experience (2: specific, e.g. relating a similar experience or naming the feeling).\n"
    "EX (explorations): the reply explores the poster's feelings or experience with "
    "questions (2: a specific question about them).\n"
    'Answer with JSON: {"ER": n, "IP": n, "EX": n}.'
)


@dataclass(frozen=True)
class EmpathyJudge:
    """A local model asked the EPITOME rubric with a JSON schema: an optional second scorer."""

    model: ModelBackend
    seed: int = 0

    def levels(self, post: str, reply: str) -> dict[str, int] | None:
        """ER/IP/EX levels, or None when the judge's answer does not parse."""
        messages = [
            Message("system", JUDGE_RUBRIC),
            Message("user", f"Post:\n{post.strip()}\n\nReply:\n{reply.strip()}"),
        ]
        config = GenerateConfig(
            max_tokens=40, temperature=0.0, seed=self.seed, json_schema=JUDGE_SCHEMA
        )
        return parse_judge(self.model.generate(messages, config).text)


def parse_judge(text: str) -> dict[str, int] | None:
    """``{"ER": 0-2, "IP": 0-2, "EX": 0-2}`` from a judge's JSON answer; None if invalid."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        obj = json.loads(text[start : end + 1])
    except json.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    out: dict[str, int] = {}
    for mech in MECHANISMS:
        value = obj.get(mech)
        if isinstance(value, bool) or not isinstance(value, int) or value not in (0, 1, 2):
            return None
        out[mech] = value
    return out


@dataclass(frozen=True)
class EmpathyTask:
    """Reply to a help-seeking post; EPITOME levels by the measurement model (+ judge)."""

    name: str = "empathy"
    description: str = (
        "Reply to a help-seeking post, scored on the EPITOME mechanisms (emotional "
        "reactions, interpretations, explorations; 0-2 each) by the trained measurer"
    )
    aggregates: tuple[Aggregate, ...] = (
        Aggregate("empathy", "mean", "empathy"),
        *(Aggregate(m.lower(), "mean", m.lower()) for m in MECHANISMS),
        *(Aggregate(f"{m.lower()}_any", "mean", f"{m.lower()}_any") for m in MECHANISMS),
        Aggregate("judge_empathy", "mean", "judge_empathy"),
    )
    primary: str = "empathy"
    measurer: Measurer | None = None  # None: load the trained "empathy" model on first use
    measurer_name: str = "empathy"
    judge: EmpathyJudge | None = None
    max_tokens: int = MAX_TOKENS
    _loaded: dict[str, Measurer] = field(default_factory=dict, compare=False, repr=False)

    def scorer(self) -> Measurer:
        """The measurer in use (loaded once); PrerequisiteError when none is trained."""
        if self.measurer is not None:
            return self.measurer
        if "m" not in self._loaded:
            self._loaded["m"] = load_named(self.measurer_name)
        return self._loaded["m"]

    def load(self, source: Path | None, *, limit: int | None = None, seed: int = 0) -> list[Sample]:
        posts = list(SYNTHETIC_POSTS) if source is None else seeker_posts(Path(source))
        samples = [post_sample(p) for p in posts]
        return samples if limit is None else samples[:limit]

    def generate_config(self, sample: Sample, seed: int = 0) -> GenerateConfig:
        self.scorer()  # stop before the first generation when no measurer is trained
        return GenerateConfig(max_tokens=self.max_tokens, temperature=0.0, seed=seed)

    def score(self, sample: Sample, generation: Generation) -> Score:
        post = _post(sample)
        return score_reply(
            sample.id, post, generation.text, self.scorer(), self.judge, generation.finish_reason
        )


def score_reply(
    sample_id: str,
    post: str,
    reply: str,
    measurer: Measurer,
    judge: EmpathyJudge | None = None,
    finish_reason: str = "stop",
) -> Score:
    """EPITOME levels of ``reply`` to ``post`` from ``measurer`` (and ``judge``)."""
    flags: list[str] = []
    values: dict[str, float] = {}
    if not reply.strip():
        flags.append("empty_output")
    prediction = predict_one(measurer, (post, reply), MECHANISMS)
    total = 0
    for mech in MECHANISMS:
        label = prediction.labels[mech]
        if label not in ("0", "1", "2"):
            raise InputError(
                f"measurer label {label!r} is not an EPITOME level",
                record=sample_id,
                field=mech,
                expected="0, 1 or 2",
            )
        level = int(label)
        total += level
        values[mech.lower()] = float(level)
        values[f"{mech.lower()}_any"] = 1.0 if level > 0 else 0.0
    values["empathy"] = float(total)
    if total == 0:
        flags.append("no_empathy")
    if judge is not None:
        judged = judge.levels(post, reply)
        if judged is None:
            flags.append("judge_unparsed")
        else:
            for mech, level in judged.items():
                values[f"judge_{mech.lower()}"] = float(level)
            values["judge_empathy"] = float(sum(judged.values()))
    if finish_reason == "length":
        flags.append("truncated")
    return Score(sample_id=sample_id, values=values, flags=tuple(flags))


def _post(sample: Sample) -> str:
    post: Any = sample.data.get("post")
    if not isinstance(post, str):
        raise InputError(
            "sample has no seeker post", record=sample.id, field="data.post", expected="text"
        )
    return post


EMPATHY = EmpathyTask()
SUITE_TASKS.add(EMPATHY.name, EMPATHY)
