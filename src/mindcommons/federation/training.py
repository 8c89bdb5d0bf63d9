"""The federated-training contract: a ``Trainer`` fits weights on one site's own data.

The coordinator (``server_app``) runs rounds: it sends the global weights to each
site, each site's installed ``Trainer`` (looked up by name in ``TRAINERS``, after the
site's policy allows the ``train`` job) fits locally and returns new weights, the
number of examples and numeric metrics; the coordinator aggregates (FedAvg, FedProx,
optional clipping and noise) and repeats. Weights are lists of numpy arrays; nothing
else leaves a site.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from mindcommons.registry import Registry
from mindcommons.settings import Settings

Weights = list[NDArray[np.float32]]


@dataclass(frozen=True)
class FitResult:
    weights: Weights
    n_examples: int
    metrics: Mapping[str, float] = field(default_factory=dict)


@runtime_checkable
class Trainer(Protocol):
    """A model family that can be trained federatedly (heads, LoRA adapters, ...)."""

    @property
    def name(self) -> str: ...

    def initial_weights(self, params: Mapping[str, Any]) -> Weights:
        """Round-0 global weights, computed at the coordinator without site data."""
        ...

    def fit(
        self, site: str, settings: Settings, weights: Weights, params: Mapping[str, Any]
    ) -> FitResult:
        """Train locally from ``weights`` on the site's own data; return new weights."""
        ...

    def evaluate(
        self, site: str, settings: Settings, weights: Weights, params: Mapping[str, Any]
    ) -> FitResult:
        """Validation on the site's held-out data (``weights`` in the result unused)."""
        ...


TRAINERS: Registry[Trainer] = Registry("trainer")
