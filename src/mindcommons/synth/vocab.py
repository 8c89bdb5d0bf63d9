"""Per-language phrase banks (``vocab/<lang>.json``) and phrase selection by item and level."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any, cast

VOCAB_DIR = Path(__file__).with_name("vocab")

Voice = str  # "third" (clinician writing about the patient) or "first" (the patient speaking)


class Vocab:
    """One language's phrase bank; every lookup is by instrument key, item number and level."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.language: str = data["language"]
        self._data = data

    def section(self, name: str) -> Mapping[str, Any]:
        """A top-level block: ``note``, ``transcript`` or ``message``."""
        return cast(Mapping[str, Any], self._data[name])

    def phrases(self, section: str, key: str) -> Sequence[str]:
        return cast(Sequence[str], self.section(section)[key])

    def choose(self, rng: random.Random, section: str, key: str) -> str:
        return rng.choice(self.phrases(section, key))

    def item_phrases(self, instrument: str, item: int) -> Mapping[str, Any]:
        """The phrase block of one item: ``third``, ``first``, ``absent_*``, ``ask``."""
        return cast(Mapping[str, Any], self._data["items"][instrument][str(item)])

    def frequencies(self, instrument: str, item: int, level: int) -> Sequence[str]:
        """How often, in words, for ``level`` 1-3 (an item may override the shared list)."""
        shared = self._data["frequency"]
        return cast(
            Sequence[str], self.item_phrases(instrument, item).get("frequency", shared)[str(level)]
        )

    def ask(self, rng: random.Random, instrument: str, item: int) -> str:
        """A therapist's question about an item."""
        return str(rng.choice(self.item_phrases(instrument, item)["ask"]))

    def absent(self, rng: random.Random, instrument: str, item: int, voice: Voice) -> str:
        """A sentence saying the symptom is absent (level 0)."""
        return str(rng.choice(self.item_phrases(instrument, item)[f"absent_{voice}"]))

    def present(
        self,
        rng: random.Random,
        instrument: str,
        item: int,
        level: int,
        voice: Voice,
        templates: Sequence[str],
    ) -> str:
        """A sentence describing the symptom at ``level`` (1-3): template + symptom + frequency."""
        if not 1 <= level <= 3:
            raise ValueError(f"level {level} has no 'present' phrasing (expected 1-3)")
        entry = self.item_phrases(instrument, item)
        symptom = rng.choice(entry[voice])
        frequency = rng.choice(self.frequencies(instrument, item, level))
        return str(rng.choice(templates).format(symptom=symptom, frequency=frequency))

    def phrase(
        self,
        rng: random.Random,
        instrument: str,
        item: int,
        level: int,
        voice: Voice,
        templates: Sequence[str],
    ) -> str:
        """The sentence for an item at any level (0 = absent)."""
        if level == 0:
            return self.absent(rng, instrument, item, voice)
        return self.present(rng, instrument, item, level, voice, templates)


@cache
def load_vocab(language: str) -> Vocab:
    """The phrase bank for ``language`` (``en``, ``es``, ``pt``)."""
    path = VOCAB_DIR / f"{language}.json"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in VOCAB_DIR.glob("*.json")))
        raise KeyError(f"no synthetic vocabulary for language '{language}' (known: {known})")
    return Vocab(json.loads(path.read_text(encoding="utf-8")))


def available_languages() -> list[str]:
    return sorted(p.stem for p in VOCAB_DIR.glob("*.json"))
