"""Reading ease in the text's own language (en, es, pt), computed offline.

Each language uses its own published Flesch-family formula, all on a "higher is easier"
scale of roughly 0-100:

- ``en``: Flesch Reading Ease, 206.835 - 1.015 * words/sentence - 84.6 * syllables/word.
- ``es``: Fernández Huerta (1959), 206.84 - 60 * syllables/word - 1.02 * words/sentence
  (the formula ``textstat.fernandez_huerta`` computes).
- ``pt``: Flesch adapted to Brazilian Portuguese by Martins et al. (1996),
  248.835 - 1.015 * words/sentence - 84.6 * syllables/word.

Syllables are counted with Pyphen's hyphenation dictionaries (installed with textstat) as
hyphenation points + 1 - the same fallback textstat uses. textstat itself is not called
for English because its English syllable counter downloads NLTK's CMUdict on first use,
and nothing may download at run time. Words are runs of letters (numbers are not words
here); sentences end at ``.!?;`` or a line break.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

# (base, words-per-sentence weight, syllables-per-word weight, formula name, pyphen dict)
FORMULAS: dict[str, tuple[float, float, float, str, str]] = {
    "en": (206.835, 1.015, 84.6, "Flesch Reading Ease", "en_US"),
    "es": (206.84, 1.02, 60.0, "Fernández Huerta", "es"),
    "pt": (248.835, 1.015, 84.6, "Flesch (Martins et al. 1996, pt-BR)", "pt_BR"),
}
SUPPORTED = tuple(sorted(FORMULAS))

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_SENTENCE_END = re.compile(r"[.!?;]+(?=\s|$)|\n+")


@dataclass(frozen=True)
class Readability:
    """A text's reading ease and the counts it came from."""

    language: str
    formula: str
    ease: float  # higher is easier
    words: int
    sentences: int
    syllables: int

    @property
    def words_per_sentence(self) -> float:
        return self.words / self.sentences if self.sentences else 0.0

    @property
    def syllables_per_word(self) -> float:
        return self.syllables / self.words if self.words else 0.0


def language_root(language: str) -> str:
    """``pt-BR`` -> ``pt``; lower case."""
    return language.strip().lower().replace("_", "-").split("-")[0]


def supports(language: str) -> bool:
    """Whether reading ease can be computed for ``language``."""
    return language_root(language) in FORMULAS


@functools.cache
def _hyphenator(dictionary: str) -> Any:
    import pyphen  # type: ignore[import-untyped]

    return pyphen.Pyphen(lang=dictionary)


def count_syllables(word: str, language: str) -> int:
    """Syllables of one word: Pyphen hyphenation points + 1 (at least 1)."""
    dictionary = FORMULAS[language_root(language)][4]
    return len(_hyphenator(dictionary).positions(word.lower())) + 1


def words(text: str) -> list[str]:
    """The words of ``text`` (runs of letters, inner apostrophes kept)."""
    return _WORD.findall(text)


def count_sentences(text: str) -> int:
    """Sentences: pieces between sentence ends that contain at least one word."""
    return sum(1 for piece in _SENTENCE_END.split(text) if _WORD.search(piece))


def readability(text: str, language: str) -> Readability | None:
    """Reading ease of ``text`` in ``language``; None for an unsupported language.

    A text with no words has ease 0.0 (nothing to read is not "easy").
    """
    root = language_root(language)
    if root not in FORMULAS:
        return None
    base, wps_weight, spw_weight, name, _ = FORMULAS[root]
    tokens = words(text)
    n_sentences = max(count_sentences(text), 1 if tokens else 0)
    n_syllables = sum(count_syllables(token, root) for token in tokens)
    if not tokens:
        return Readability(root, name, 0.0, 0, 0, 0)
    ease = base - wps_weight * (len(tokens) / n_sentences) - spw_weight * n_syllables / len(tokens)
    return Readability(root, name, round(ease, 2), len(tokens), n_sentences, n_syllables)
