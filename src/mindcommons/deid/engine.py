"""The de-identification engine: detector registry, ``detect`` and ``deidentify``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from mindcommons.deid.clues import clue_spans
from mindcommons.deid.context import name_spans, place_spans
from mindcommons.deid.learned import learned_step, load_model
from mindcommons.deid.patterns import regex_spans
from mindcommons.deid.repeats import repeat_spans
from mindcommons.deid.resources import data_version, rules
from mindcommons.deid.spans import Span, merge_spans
from mindcommons.errors import ConfigError
from mindcommons.registry import Registry

DetectFn = Callable[[str, str], list[Span]]


@dataclass(frozen=True)
class Detector:
    """A named, versioned detector; its behaviour lives mostly in the data files."""

    name: str
    version: str
    fn: DetectFn

    def __call__(self, text: str, language: str) -> list[Span]:
        return self.fn(text, language)


DETECTORS: Registry[Detector] = Registry("de-identification detector")
DETECTORS.add("pattern", Detector("pattern", "1", regex_spans))
DETECTORS.add("name", Detector("name", "1", name_spans))
DETECTORS.add("place", Detector("place", "1", place_spans))
DETECTORS.add("clue", Detector("clue", "1", clue_spans))


_STEPS = ("repeat", "learned")  # run after the detectors, on their output


def detector_versions() -> dict[str, str]:
    """Detector name -> version@data-hash, stored with every de-identified document."""
    data = data_version()
    out = {name: f"{DETECTORS.get(name).version}@{data}" for name in DETECTORS}
    out["repeat"] = f"1@{data}"  # the step after the detectors (deid.repeats)
    out["learned"] = f"1@{data}"  # the token classifier after that (deid.learned)
    return out


Sensitivity = Literal["high", "balanced"]
# The recall/precision trade-off, explicit: every span carries a score (how sure its detector
# is); a sensitivity keeps spans scoring at least its floor. "high" (the default) keeps every
# candidate: recall first, as nothing identifying may enter a repository. "balanced" drops the
# weakest candidates (score < 0.66): number ranges shaped like local phone numbers, weekdays and
# ordinal days beside a date, bare long numbers, lone gazetteer surnames, US regions, unknown
# words after "in"/"from" or a weak verb, words joined to a name by "and", repeats of a word
# found elsewhere in the note. docs/deid.md has the measured cost of each.
SENSITIVITY_FLOOR: dict[str, float] = {"high": 0.0, "balanced": 0.66}


def detect(
    text: str,
    language: str = "en",
    *,
    detectors: list[str] | None = None,
    sensitivity: Sensitivity = "high",
) -> list[Span]:
    """Every identifier in ``text`` at ``sensitivity``: merged, non-overlapping, by offset."""
    rules(language)  # validates the language
    if sensitivity not in SENSITIVITY_FLOOR:
        raise ConfigError(
            f"unknown de-identification sensitivity '{sensitivity}'; use high or balanced"
        )
    floor = SENSITIVITY_FLOOR[sensitivity]
    found = candidates(text, language, detectors=detectors, sensitivity=sensitivity)
    return merge_spans([s for s in found if s.score >= floor], text)


def candidates(
    text: str,
    language: str = "en",
    *,
    detectors: list[str] | None = None,
    sensitivity: Sensitivity = "high",
) -> list[Span]:
    """Every candidate span before the sensitivity floor and merging: the detectors, then the
    ``repeat`` step, then the ``learned`` token classifier, which sees all of them, adds the
    words it scores as identifiers and vetoes the rule spans it scores as ordinary words (at
    the sensitivity's veto threshold; see ``deid.learned``)."""
    found: list[Span] = []
    for name in detectors or DETECTORS.names():
        if name not in _STEPS:
            found.extend(DETECTORS.get(name)(text, language))
    if detectors is None or "repeat" in detectors:
        found.extend(repeat_spans(text, language, found))
    if (detectors is None or "learned" in detectors) and load_model(language) is not None:
        added, vetoed = learned_step(text, language, found, sensitivity)
        dropped = {id(s) for s in vetoed}
        found = [s for s in found if id(s) not in dropped] + added
    return found


@dataclass
class DeidResult:
    """The de-identified text, the spans found in the input, and the audit record."""

    text: str
    spans: list[Span]
    counts_by_type: dict[str, int] = field(default_factory=dict)
    detector_versions: dict[str, str] = field(default_factory=dict)

    def record(self) -> dict[str, object]:
        """What a repository may keep about this de-identification (no original text)."""
        return {"counts_by_type": self.counts_by_type, "detector_versions": self.detector_versions}


def deidentify(
    text: str,
    *,
    language: str = "en",
    patient_key: str = "",
    secret: bytes | str,
    mode: Literal["pseudonymise", "redact"] = "pseudonymise",
    sensitivity: Sensitivity = "high",
) -> DeidResult:
    """Replace every detected identifier by a consistent surrogate (or ``[TYPE]``)."""
    from mindcommons.deid.surrogates import Surrogates

    if mode not in ("pseudonymise", "redact"):
        raise ConfigError(f"unknown de-identification mode '{mode}'; use pseudonymise or redact")
    key = secret.encode() if isinstance(secret, str) else secret
    if mode == "pseudonymise" and not key:
        raise ConfigError("pseudonymisation needs a non-empty site secret")
    spans = detect(text, language, sensitivity=sensitivity)
    surrogates = Surrogates(key, patient_key, language)
    pieces: list[str] = []
    pos = 0
    for span in spans:
        pieces.append(text[pos : span.start])
        original = text[span.start : span.end]
        if mode == "redact":
            pieces.append(f"[{span.type}]")
        else:
            pieces.append(surrogates.replace(original, span.type))
        pos = span.end
    pieces.append(text[pos:])
    counts = dict(sorted(Counter(s.type for s in spans).items()))
    return DeidResult("".join(pieces), spans, counts, detector_versions())
