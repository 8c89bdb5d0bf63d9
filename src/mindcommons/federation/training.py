"""The federated-training contract: a ``Trainer`` fits weights on one site's own data.

The coordinator (``server_app``) runs rounds: it sends the global weights to each
site, each site's installed ``Trainer`` (looked up by name in ``TRAINERS``, after the
site's policy allows the ``train`` job) fits locally and returns new weights, the
number of examples and numeric metrics; the coordinator aggregates (FedAvg, FedProx,
optional clipping and noise), steps from the average with its own optimizer
(``server_step``: FedAvgM; ``server_adam``: FedAdam) and repeats. Weights are lists of
numpy arrays; nothing else leaves a site.
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


# ---------------------------------------------------------------- compatible extensions
# (used by the coordinator flow in ``server_app`` and the ``train`` job at the sites)


@runtime_checkable
class Describer(Protocol):
    """Optional: a Trainer that can describe a site's data before round 1.

    Returns released numbers only: ``n_train``, ``n_validation`` and label counts under
    keys starting with ``count.`` (the site's cell floor is applied to those).
    """

    def describe(
        self, site: str, settings: Settings, params: Mapping[str, Any]
    ) -> dict[str, float]: ...


@runtime_checkable
class ArtifactWriter(Protocol):
    """Optional: a Trainer that saves the final global weights at the coordinator."""

    def save_artifact(
        self,
        settings: Settings,
        weights: Weights,
        params: Mapping[str, Any],
        summary: Mapping[str, Any],
    ) -> str:
        """Write the model; return its path (goes into the run's result)."""
        ...

    def summarize(self, pooled: Mapping[str, float], params: Mapping[str, Any]) -> dict[str, float]:
        """Headline validation metrics from validation statistics summed over sites."""
        ...


WEIGHTS_KEY = "weights."


def weights_to_payload(weights: Weights) -> dict[str, list[float] | list[int]]:
    """Weights as numbers-only payload fields (``weights.<i>`` flat, ``weights.<i>.shape``).

    The site's numbers-only guard checks them like any other field; they travel in the
    reply's ``MetricRecord`` and the coordinator rebuilds them with ``split_weights``.
    """
    out: dict[str, list[float] | list[int]] = {}
    for i, w in enumerate(weights):
        arr = np.asarray(w, dtype=np.float32)
        out[f"{WEIGHTS_KEY}{i}"] = arr.ravel().astype(np.float64).tolist()
        out[f"{WEIGHTS_KEY}{i}.shape"] = [int(d) for d in arr.shape]
    return out


def split_weights(payload: Mapping[str, Any]) -> tuple[Weights, dict[str, Any]]:
    """Separate ``weights.*`` fields (rebuilt as float32 arrays) from the other numbers."""
    rest = {k: v for k, v in payload.items() if not str(k).startswith(WEIGHTS_KEY)}
    count = sum(1 for k in payload if str(k).startswith(WEIGHTS_KEY) and k.endswith(".shape"))
    weights: Weights = []
    for i in range(count):
        shape = tuple(int(d) for d in payload[f"{WEIGHTS_KEY}{i}.shape"])
        flat = np.asarray(payload[f"{WEIGHTS_KEY}{i}"], dtype=np.float32)
        weights.append(flat.reshape(shape))
    return weights, rest


def weights_to_config(weights: Weights) -> dict[str, bytes | list[int]]:
    """The global weights as Flower ``ConfigRecord`` values (float32 bytes and shapes).

    They travel inside the job's own record, so the ClientApp needs no special case;
    ``weights_from_job`` rebuilds them at the site.
    """
    out: dict[str, bytes | list[int]] = {}
    for i, w in enumerate(weights):
        arr = np.ascontiguousarray(w, dtype="<f4")
        out[f"{WEIGHTS_KEY}{i}"] = arr.tobytes()
        out[f"{WEIGHTS_KEY}{i}.shape"] = [int(d) for d in arr.shape]
    return out


def weights_from_job(job: Mapping[str, Any]) -> Weights:
    """Weights a coordinator put in a job (``weights_to_config``); [] when there are none."""
    weights: Weights = []
    i = 0
    while f"{WEIGHTS_KEY}{i}" in job:
        raw = job[f"{WEIGHTS_KEY}{i}"]
        shape = tuple(int(d) for d in job[f"{WEIGHTS_KEY}{i}.shape"])
        arr = np.frombuffer(bytes(raw), dtype="<f4").astype(np.float32)
        weights.append(arr.reshape(shape))
        i += 1
    return weights


def weights_to_arrays(weights: Weights) -> Any:
    """Weights as a Flower ``ArrayRecord`` (``weights.<i>``, float32, shape kept).

    Both directions of a plain training round carry weights this way; the ClientApp
    turns them into the job fields ``weights_from_job`` reads (and a Trainer's returned
    ``weights.*`` payload fields back into an ``ArrayRecord``).
    """
    from flwr.app import Array, ArrayRecord

    return ArrayRecord(
        array_dict={
            f"{WEIGHTS_KEY}{i}": Array(np.ascontiguousarray(w, dtype="<f4"))
            for i, w in enumerate(weights)
        }
    )


def weights_from_arrays(record: Mapping[str, Any]) -> Weights:
    """Weights from an ``ArrayRecord`` written by ``weights_to_arrays`` (in index order)."""
    weights: Weights = []
    i = 0
    while f"{WEIGHTS_KEY}{i}" in record:
        weights.append(np.asarray(record[f"{WEIGHTS_KEY}{i}"].numpy(), dtype=np.float32))
        i += 1
    if len(weights) != len(record):
        raise ValueError(f"weights record holds keys other than {WEIGHTS_KEY}0..{i - 1}")
    return weights


def fedavg(results: list[tuple[Weights, int]]) -> Weights:
    """Average of the sites' weights, weighted by their numbers of examples (FedAvg)."""
    total = sum(n for _, n in results)
    if not results or total <= 0:
        raise ValueError("no site returned weights trained on any example")
    out: Weights = []
    for layer in zip(*(w for w, _ in results), strict=True):
        acc = np.zeros(layer[0].shape, dtype=np.float64)
        for arr, (_, n) in zip(layer, results, strict=True):
            acc += np.asarray(arr, dtype=np.float64) * n
        out.append((acc / total).astype(np.float32))
    return out


def pool_sums(metrics: list[Mapping[str, float]]) -> dict[str, float]:
    """Sum every field over sites (Trainers report additive statistics: sums and counts)."""
    pooled: dict[str, float] = {}
    for m in metrics:
        for k, v in m.items():
            pooled[k] = pooled.get(k, 0.0) + float(v)
    return pooled


def server_step(
    previous: Weights,
    averaged: Weights,
    velocity: Weights | None,
    lr: float = 1.0,
    momentum: float = 0.0,
) -> tuple[Weights, Weights | None]:
    """Server optimizer on the round's average (FedAvgM, Hsu et al. 2019).

    The sites' average is read as a pseudo-gradient ``d = previous - averaged``; with
    ``v = momentum * v + d`` the new global weights are ``previous - lr * v``. ``lr = 1``
    and ``momentum = 0`` is plain FedAvg (``averaged`` returned unchanged). It uses only
    the aggregate, so with DP it is post-processing (no privacy cost), and it works on
    the masked sum of secure aggregation too. Returns the weights and the new velocity.
    """
    if lr <= 0 or not 0.0 <= momentum < 1.0:
        raise ValueError(f"server lr must be > 0 and momentum in [0, 1), got {lr}, {momentum}")
    if lr == 1.0 and momentum == 0.0:
        return averaged, None
    new_v: Weights = []
    out: Weights = []
    for i, (p, a) in enumerate(zip(previous, averaged, strict=True)):
        avg = np.asarray(a, dtype=np.float64)
        d = np.asarray(p, dtype=np.float64) - avg
        v = d if velocity is None else momentum * np.asarray(velocity[i], np.float64) + d
        new_v.append(v.astype(np.float32))
        # previous - lr * v, written from the average: lr 1 with no history is exact FedAvg
        out.append((avg - (lr - 1.0) * d - lr * (v - d)).astype(np.float32))
    return out, new_v


SERVER_OPTIMIZERS = ("sgd", "adam")


def server_adam(
    previous: Weights,
    averaged: Weights,
    state: Any,
    lr: float,
    weight_decay: float = 0.0,
) -> tuple[Weights, Any]:
    """Server Adam on the round's pseudo-gradient ``previous - averaged`` (FedAdam).

    Reddi et al. 2021, "Adaptive Federated Optimization": the heads' own Adam
    (``measure.heads.Adam``: torch's bias correction and L2 weight decay) stepping float64
    copies of the global weights; ``state`` is that optimizer (None in round 1). When every
    site takes one full-batch step of plain gradient descent at step size 1 (FedSGD: it
    returns ``w - its mean gradient``), the example-weighted average of those gradients is
    the gradient on the union of the sites' data, so these rounds follow full-batch Adam on
    the pooled data step for step (``tests/test_fedtrain.py`` checks it). Like
    ``server_step`` it reads only the aggregate: post-processing under DP, and it runs on
    the result of secure aggregation.
    """
    from mindcommons.measure.heads import Adam

    if lr <= 0 or weight_decay < 0:
        raise ValueError(
            f"server Adam needs lr > 0 and weight_decay >= 0, got {lr}, {weight_decay}"
        )
    params = [np.array(p, dtype=np.float64) for p in previous]
    grads = [p - np.asarray(a, dtype=np.float64) for p, a in zip(params, averaged, strict=True)]
    opt = state if isinstance(state, Adam) else Adam(params, lr, weight_decay)
    opt.lr, opt.wd = lr, weight_decay
    opt.step(params, grads)
    return [p.astype(np.float32) for p in params], opt
