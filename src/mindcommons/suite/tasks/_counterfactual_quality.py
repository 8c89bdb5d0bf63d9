"""Response-quality scorers for the ``counterfactual`` task (pluggable, by name).

- ``epitome`` (the default whenever a trained artifact exists): the EPITOME empathy
  measurer (``mindcommons.measure.load_measurer("empathy")``) reads (post, response) and
  gives a distribution over levels 0/1/2 for ER (emotional reactions), IP
  (interpretations) and EX (explorations); each mechanism scores its expected level.
- ``heuristic`` (the fallback, deterministic, English): each mechanism's level is the
  number of *distinct* cue patterns found, capped at 2 (ER: sympathy and emotional words;
  IP: understanding, "it sounds like", shared experience, validation; EX: questions and
  invitations to say more). Counting distinct cues rather than occurrences keeps a long
  reply from scoring higher by repetition; a length factor min(1, words/20) keeps a
  one-line reply from scoring like a full one.

Both give ``quality`` = (ER + IP + EX) / 6 in [0, 1], plus the three levels.
"""

from __future__ import annotations

import importlib
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from mindcommons.errors import ConfigError, InputError, PrerequisiteError
from mindcommons.registry import Registry

MECHANISMS = ("ER", "IP", "EX")
_FLAGS = re.IGNORECASE


class QualityScorer(Protocol):
    """Scores one response to one post: ``quality`` in [0, 1] and ER/IP/EX levels (0..2)."""

    @property
    def name(self) -> str: ...

    def score(self, post: str, response: str) -> dict[str, float]: ...


_CUES: dict[str, tuple[re.Pattern[str], ...]] = {
    "ER": tuple(
        re.compile(p, _FLAGS)
        for p in (
            r"\bsorry\b",
            r"\b(?:that|this|it) (?:sounds|must be|must feel|is|seems) (?:so |really |very )?"
            r"(?:hard|awful|tough|painful|difficult|scary|heartbreaking|exhausting|lonely)\b",
            r"\b(?:sad|sorry|saddened|heartbroken) to hear\b",
            r"\bmy heart\b|\bhugs?\b|\bsending (?:you )?(?:love|strength)\b",
            r"\bi(?:'m| am) (?:so |really )?(?:sad|worried|sorry|glad) (?:for|about|that)\b",
            r"\bi feel (?:for|with) you\b",
        )
    ),
    "IP": tuple(
        re.compile(p, _FLAGS)
        for p in (
            r"\bi (?:understand|get (?:it|that)|know (?:how|what) (?:it|that|you))\b",
            r"\bit (?:sounds|seems) (?:like|as if|that)\b",
            r"\bi(?:'ve| have) (?:been there|felt|gone through|had|struggled)\b",
            r"\b(?:makes|make) (?:a lot of |total )?sense\b",
            r"\byou(?:'re| are) not alone\b",
            r"\b(?:that(?:'s| is)|your feelings are|it(?:'s| is)) (?:completely |totally )?"
            r"(?:understandable|valid|normal|okay|ok)\b",
        )
    ),
    "EX": tuple(
        re.compile(p, _FLAGS)
        for p in (
            r"\?",
            r"\b(?:what|how|when|why|who) (?:do|did|are|is|was|have|has|would|could) you\b",
            r"\b(?:can|could|would) you (?:tell|share|say)\b",
            r"\bwould you like to\b|\bdo you want to (?:talk|share)\b",
            r"\bhave you (?:tried|thought|talked|considered|been able)\b",
            r"\btell me (?:more|about)\b",
        )
    ),
}


class _Prediction(Protocol):
    @property
    def labels(self) -> Mapping[str, str]: ...

    @property
    def probs(self) -> Mapping[str, Mapping[str, float]]: ...


class _Measurer(Protocol):
    def predict(self, inputs: Sequence[Any]) -> Sequence[_Prediction]: ...


def load_epitome_measurer() -> _Measurer:
    """The trained EPITOME measurer; PrerequisiteError (saying how to train it) if absent."""
    command = "mindcommons train empathy --data /path/to/epitome"
    try:
        load_measurer = importlib.import_module("mindcommons.measure").load_measurer
    except (ImportError, AttributeError) as err:
        raise PrerequisiteError(
            f"the measurement models are not available ({err}); train with: {command}"
        ) from err
    try:
        measurer: _Measurer = load_measurer("empathy")
    except (PrerequisiteError, ConfigError, InputError, FileNotFoundError) as err:
        raise PrerequisiteError(
            f"no trained 'empathy' (EPITOME) measurer ({err}); train it with: {command}"
        ) from err
    return measurer


class HeuristicScorer:
    """Deterministic cue counting (see the module docstring)."""

    name = "heuristic"

    def score(self, post: str, response: str) -> dict[str, float]:
        words = len(response.split())
        levels = {
            m: float(min(2, sum(1 for p in _CUES[m] if p.search(response)))) for m in MECHANISMS
        }
        length = min(1.0, words / 20.0)
        quality = length * sum(levels.values()) / 6.0
        return {"quality": quality, **levels, "words": float(words)}


class EpitomeScorer:
    """Expected EPITOME levels from a trained measurer's probabilities."""

    name = "epitome"

    def __init__(self, measurer: _Measurer) -> None:
        self.measurer = measurer

    def score(self, post: str, response: str) -> dict[str, float]:
        predictions = self.measurer.predict([(post, response)])
        if len(predictions) != 1:
            raise ConfigError(f"the measurer returned {len(predictions)} predictions for 1 input")
        prediction = predictions[0]
        missing = [m for m in MECHANISMS if m not in prediction.labels]
        if missing:
            raise ConfigError(
                f"the measurer has no output for {', '.join(missing)}; is it the EPITOME model?"
            )
        levels: dict[str, float] = {}
        for m in MECHANISMS:
            probs = prediction.probs.get(m) or {}
            total = sum(float(p) for p in probs.values())
            if total > 0:
                levels[m] = sum(int(k) * float(p) for k, p in probs.items()) / total
            else:
                levels[m] = float(int(prediction.labels[m]))
        quality = sum(levels.values()) / 6.0
        return {"quality": quality, **levels, "words": float(len(response.split()))}


QUALITY_SCORERS: Registry[Callable[[], QualityScorer]] = Registry("quality scorer")
QUALITY_SCORERS.add("heuristic", HeuristicScorer)
QUALITY_SCORERS.add("epitome", lambda: EpitomeScorer(load_epitome_measurer()))


def resolve_scorer(spec: str | QualityScorer | None) -> QualityScorer:
    """A scorer object, a registered name, or ``None``: the EPITOME measurer when a trained
    artifact exists, else the heuristic (with a warning saying how to get the measurer)."""
    if spec is None:
        try:
            return QUALITY_SCORERS.get("epitome")()
        except PrerequisiteError as err:
            warnings.warn(
                f"counterfactual: using the heuristic quality score ({err})", stacklevel=2
            )
            return HeuristicScorer()
    if isinstance(spec, str):
        return QUALITY_SCORERS.get(spec)()
    return spec
