"""The measurement models the ``empathy`` and ``reframe`` tasks score with, behind a protocol.

A measurer is anything with ``predict(inputs) -> [prediction]`` where each prediction has
``labels`` (output key -> label) and ``probs`` (output key -> label -> probability):
``mindcommons.measure.load_measurer`` returns one for a trained artifact ("empathy":
inputs are (seeker post, response) pairs, outputs ER/IP/EX with labels "0"/"1"/"2";
"thinking-traps": inputs are texts, one output per trap with labels "1"/"0"). A task takes
a ready measurer (tests, notebooks) or loads one by name on first use; when no trained
artifact exists it stops with ``PrerequisiteError`` naming the command that trains it -
it never falls back to scoring something else.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from mindcommons.errors import ConfigError, InputError, PrerequisiteError

TRAIN_COMMANDS: Mapping[str, str] = {
    "empathy": "mindcommons train empathy --data /path/to/epitome",
    "thinking-traps": "mindcommons train thinking-traps --data /path/to/cognitive-reframing",
}


class PredictionLike(Protocol):
    """One prediction: a label and a probability distribution per output key."""

    @property
    def labels(self) -> Mapping[str, str]: ...

    @property
    def probs(self) -> Mapping[str, Mapping[str, float]]: ...


@runtime_checkable
class Measurer(Protocol):
    """A trained measurement model."""

    def predict(self, inputs: Sequence[Any]) -> Sequence[PredictionLike]: ...


def load_named(name: str, settings: Any = None) -> Measurer:
    """The trained measurer ``name`` (or a path to an artifact); PrerequisiteError if absent."""
    command = TRAIN_COMMANDS.get(name, f"mindcommons train {name} --data <path>")
    reason = "mindcommons.measure has no load_measurer"
    try:
        module: Any = importlib.import_module("mindcommons.measure")
    except ImportError as err:
        module, reason = None, str(err)
    load_measurer = getattr(module, "load_measurer", None)
    if load_measurer is None:
        raise PrerequisiteError(
            f"the measurement models are not available ({reason}); install mindcommons "
            f"with them, then train the '{name}' model with: {command}"
        )
    try:
        measurer: Measurer = load_measurer(name, settings)
    except (PrerequisiteError, ConfigError, InputError, FileNotFoundError) as err:
        raise PrerequisiteError(
            f"no trained '{name}' measurement model ({err}); train it with: {command}"
        ) from err
    return measurer


def predict_one(measurer: Measurer, item: Any, keys: Sequence[str]) -> PredictionLike:
    """Predict one input and check the prediction carries every output in ``keys``."""
    predictions = measurer.predict([item])
    if len(predictions) != 1:
        raise ConfigError(f"the measurer returned {len(predictions)} predictions for 1 input")
    prediction = predictions[0]
    missing = [k for k in keys if k not in prediction.labels]
    if missing:
        raise ConfigError(
            f"the measurer has no output for {', '.join(missing)} "
            f"(it has {', '.join(sorted(prediction.labels)) or 'none'}); "
            "is it the right measurement model?"
        )
    return prediction
