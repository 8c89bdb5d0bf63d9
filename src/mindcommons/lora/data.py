"""Instruction examples from a site's own records: note -> PHQ-9 items with evidence.

Each example is exactly what the ``phq9`` task sends the model (``build_messages``: system
prompt, worked example, the note) and, as the answer, the task's own JSON
(``answer_json``) holding the site's questionnaire scores for the visit paired with the
note (``SiteRepository.eval_items``). Records hold no evidence annotations, so each item's
evidence is picked from the note's sentences the task's grammar allows
(``evidence_options``) by word-stem cues per language (``cues.json``): the sentence with
the most cue hits for the item, "" when none matches. Examples never leave the site.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from mindcommons.errors import ConfigError
from mindcommons.settings import Settings
from mindcommons.tasks.base import EvalItem
from mindcommons.tasks.parsing import evidence_options, normalise
from mindcommons.tasks.spec import EVIDENCE_MAX_CHARS, QuestionnaireTask

CUES_FILE = Path(__file__).with_name("cues.json")
Split = Literal["train", "heldout", "all"]


@dataclass(frozen=True)
class Example:
    """One training example: chat messages (the task's prompt) and the target answer."""

    messages: tuple[dict[str, str], ...]
    answer: str
    document_id: str
    true_items: tuple[int, ...]


@cache
def _cues() -> dict[str, dict[int, tuple[str, ...]]]:
    raw = json.loads(CUES_FILE.read_text(encoding="utf-8"))
    return {
        lang: {int(k): tuple(v) for k, v in items.items()}
        for lang, items in raw.items()
        if not lang.startswith("_")
    }


def questionnaire_task(task: str) -> QuestionnaireTask:
    """The registered task, which must be a questionnaire-from-text task (phq9, gad7)."""
    from mindcommons.tasks import TASKS

    spec = TASKS.get(task)
    if not isinstance(spec, QuestionnaireTask):
        raise ConfigError(
            f"task '{task}' is not a questionnaire task; LoRA data needs one such as phq9"
        )
    return spec


def pick_evidence(spec: QuestionnaireTask, item: EvalItem) -> tuple[tuple[int, str], ...]:
    """(score, evidence) per item: the site's scores, evidence chosen by cues (see module)."""
    options = evidence_options(item.text, spec.max_options, EVIDENCE_MAX_CHARS)
    cues = _cues().get(item.language[:2].lower(), _cues()["en"])
    folded = [normalise(option) for option in options]
    out = []
    for number, score in enumerate(item.true_items, 1):
        stems = cues.get(number, ()) if spec.instrument == "PHQ-9" else ()
        hits = [sum(stem in text for stem in stems) for text in folded]
        best = max(range(len(options)), key=lambda i: hits[i], default=None)
        quote = options[best] if best is not None and hits[best] > 0 else ""
        out.append((int(score), quote))
    return tuple(out)


def build_examples(items: Sequence[EvalItem], task: str = "phq9") -> list[Example]:
    """One example per item, in the task's exact chat format and output JSON."""
    spec = questionnaire_task(task)
    examples = []
    for item in items:
        if len(item.true_items) != spec.n_items:
            raise ConfigError(
                f"document {item.document_id}: its {item.instrument} has "
                f"{len(item.true_items)} items, the task expects {spec.n_items}"
            )
        messages = tuple({"role": m.role, "content": m.content} for m in spec.build_messages(item))
        answer = spec.answer_json(pick_evidence(spec, item))
        examples.append(Example(messages, answer, item.document_id, tuple(item.true_items)))
    return examples


def in_heldout(participant_id: str, fraction: float, seed: int) -> bool:
    """A participant's fixed side of the split (all their documents go the same way)."""
    digest = hashlib.sha256(f"{seed}:{participant_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def split_items(
    items: Sequence[EvalItem], split: Split, fraction: float, seed: int
) -> list[EvalItem]:
    """``train`` / ``heldout`` by participant (no person on both sides), or ``all``."""
    if split == "all":
        return list(items)
    if not 0 < fraction < 1:
        raise ConfigError(f"held-out fraction {fraction} must be between 0 and 1")
    want = split == "heldout"
    return [i for i in items if in_heldout(i.participant_id, fraction, seed) == want]


def site_examples(
    site: str,
    settings: Settings,
    *,
    task: str = "phq9",
    split: Split = "train",
    heldout_fraction: float = 0.2,
    limit: int | None = None,
    seed: int = 0,
) -> list[Example]:
    """Examples from the site's repository (decrypted in this process, never sent)."""
    from mindcommons.repository import SiteRepository

    spec = questionnaire_task(task)
    with SiteRepository.for_site(settings, site) as repo:
        items = repo.eval_items(instrument=spec.instrument, seed=seed)
    chosen = split_items(items, split, heldout_fraction, seed)
    return build_examples(chosen[:limit] if limit else chosen, task)
