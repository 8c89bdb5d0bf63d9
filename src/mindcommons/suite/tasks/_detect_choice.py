"""Closed-choice answers for the ``detect`` and ``xling`` tasks: the JSON schema that
constrains a model to one label, a lenient parser for backends that ignore the schema,
and the model's confidence when the backend reports one."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence

from mindcommons.models.base import Generation

_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.IGNORECASE)


def choice_schema(labels: Sequence[str], key: str = "label") -> dict[str, object]:
    """``{"<key>": one of labels}``: an object (OpenAI structured outputs need one at the top)
    whose only property is an enum, so a grammar-constrained model can say nothing else."""
    return {
        "type": "object",
        "properties": {key: {"type": "string", "enum": list(labels)}},
        "required": [key],
        "additionalProperties": False,
    }


def _json_value(text: str, key: str) -> str | None:
    cleaned = _FENCE.sub("", text.strip())
    for candidate in (cleaned, cleaned[cleaned.find("{") : cleaned.rfind("}") + 1]):
        if not candidate:
            continue
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict) and isinstance(value.get(key), str):
            return str(value[key])
        if isinstance(value, str):
            return value
    return None


def parse_choice(
    text: str,
    labels: Sequence[str],
    *,
    key: str = "label",
    aliases: Mapping[str, str] | None = None,
) -> str | None:
    """The label a model answered, or None when it named none (or several at once).

    First the JSON value under ``key`` (exact label, case-insensitive); otherwise the free
    text: a label (or an alias, e.g. "sí" for "yes") standing alone as words. When free
    text names two different labels, the answer is ambiguous and counts as unparsed.
    """
    table = {label.casefold(): label for label in labels}
    for alias, label in (aliases or {}).items():
        table.setdefault(alias.casefold(), label)
    value = _json_value(text, key)
    if value is not None:
        found = table.get(" ".join(value.split()).casefold().strip(" .!"))
        if found is not None:
            return found
        text = value
    hits: set[str] = set()
    lowered = text.casefold()
    for name in sorted(table, key=len, reverse=True):
        pattern = r"(?<!\w)" + re.escape(name) + r"(?!\w)"
        if re.search(pattern, lowered):
            hits.add(table[name])
            lowered = re.sub(pattern, " ", lowered)
    return hits.pop() if len(hits) == 1 else None


def confidence_of(generation: Generation, label: str | None) -> float | None:
    """The backend's probability for ``label``, when it reports one; None otherwise.

    A backend may put ``confidence`` (the probability of its answer) or ``label_probs``
    (a JSON object label -> probability) in ``Generation.metadata``. The embedded
    llama.cpp backend reports neither today, so its confidence is None (no calibration).
    """
    if label is None:
        return None
    meta = generation.metadata or {}
    probs_raw = meta.get("label_probs")
    if probs_raw:
        try:
            probs = json.loads(probs_raw)
        except json.JSONDecodeError:
            probs = None
        if isinstance(probs, dict) and isinstance(probs.get(label), int | float):
            return _probability(float(probs[label]))
    raw = meta.get("confidence")
    if raw:
        try:
            return _probability(float(raw))
        except ValueError:
            return None
    return None


def _probability(value: float) -> float | None:
    return value if math.isfinite(value) and 0.0 <= value <= 1.0 else None
