"""The ``lora`` Trainer: federated LoRA fine-tuning, weights = the adapter's A/B matrices.

Registered in ``TRAINERS`` as ``lora`` for the generic ``train`` job (see
``federation.training``): at each round a site loads the global adapter into its copy of
the base model, trains a few steps on instruction examples built from its own records
(``lora.data``: the ``phq9`` task's prompt and JSON, the site's questionnaire scores) and
returns the new A/B matrices with its number of examples; the coordinator averages them
(FedAvg on A and B separately, as in OpenFedLLM / FlowerTune; note avg(B)·avg(A) is not
avg(B·A), the usual approximation). ``evaluate`` returns additive held-out statistics
(training-objective loss sum, teacher-forced item-score error sum, counts). ``run_rounds``
is the same flow as a plain loop over site folders on one machine (no Flower), used by
tests and ``benchmarks/lora.py``.

Params (all optional): ``rank`` 4, ``alpha`` 8, ``targets`` "q,v", ``layers`` 0 (all),
``steps`` 8 per round, ``train_split`` "train" ("all": no held-out part),
``lr`` 1e-3, ``seed``, ``round``, ``limit`` (training examples per site), ``val_limit`` 4,
``heldout_fraction`` 0.2, ``max_length`` 1536, ``task`` "phq9", ``score_weight`` 1 (loss
weight of the score digits, see ``lora.train``), ``out`` (adapter folder).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mindcommons.errors import ConfigError, PolicyError
from mindcommons.federation.training import TRAINERS, FitResult, Weights
from mindcommons.federation.training import fedavg as training_fedavg
from mindcommons.lora.data import Example, Split, site_examples
from mindcommons.lora.layout import LoraSpec, gguf_shape
from mindcommons.settings import Settings


def _spec(params: Mapping[str, Any]) -> LoraSpec:
    return LoraSpec.from_params(params)


def _examples(
    site: str, settings: Settings, params: Mapping[str, Any], split: Split, limit_key: str
) -> list[Example]:
    limit = int(params.get(limit_key, 0) or 0) or None
    return site_examples(
        site, settings, task=str(params.get("task", "phq9")), split=split,
        heldout_fraction=float(params.get("heldout_fraction", 0.2)), limit=limit,
        seed=int(params.get("seed", 0)),
    )  # fmt: skip


def _model(params: Mapping[str, Any]) -> Any:
    from mindcommons.lora.convert import load_base
    from mindcommons.lora.train import LoraModel

    return LoraModel(load_base(), _spec(params))


class LoraTrainer:
    """Trains a LoRA adapter of the embedded model on a site's own notes and PHQ-9s."""

    @property
    def name(self) -> str:
        return "lora"

    def initial_weights(self, params: Mapping[str, Any]) -> Weights:
        """A seeded, B zero: round 0 is exactly the base model (no site data needed)."""
        from mindcommons.lora.train import initial_weights
        from mindcommons.models.embedded import embedded_model_path

        shape = gguf_shape(str(embedded_model_path()))
        return initial_weights(shape, _spec(params), int(params.get("seed", 0)))

    def describe(
        self, site: str, settings: Settings, params: Mapping[str, Any]
    ) -> dict[str, float]:
        """How many training and held-out examples the site has (numbers only)."""
        train = _examples(site, settings, params, "train", "limit")
        held = _examples(site, settings, params, "heldout", "val_limit")
        return {"n_train": float(len(train)), "n_validation": float(len(held))}

    def fit(
        self, site: str, settings: Settings, weights: Weights, params: Mapping[str, Any]
    ) -> FitResult:
        from mindcommons.lora.train import TrainConfig
        from mindcommons.models.embedded import cpu_turn

        split: Split = "all" if params.get("train_split") == "all" else "train"
        examples = _examples(site, settings, params, split, "limit")
        floor = int(params.get("min_n", 0) or 0)
        if len(examples) < max(floor, 1):
            raise PolicyError(
                f"suppressed: {site} has {len(examples)} training examples, under its minimum "
                f"of {max(floor, 1)}"
            )
        config = TrainConfig(
            steps=int(params.get("steps", 8)),
            lr=float(params.get("lr", 1e-3)),
            seed=int(params.get("seed", 0)) * 1000 + int(params.get("round", 0)),
            max_length=int(params.get("max_length", 1536)),
            score_weight=float(params.get("score_weight", 1.0)),
        )
        with cpu_turn():
            model = _model(params)
            model.set_weights(weights)
            result = model.train(examples, config)
        return FitResult(result.weights, result.n_examples, result.metrics())

    def evaluate(
        self, site: str, settings: Settings, weights: Weights, params: Mapping[str, Any]
    ) -> FitResult:
        """Held-out statistics as additive sums: ``loss_sum`` (the training objective, score
        digits weighted ``score_weight``), ``score_abs_sum`` / ``score_items`` (teacher-forced
        item-score error) and ``n``. The coordinator keeps the round with the lowest loss."""
        from mindcommons.models.embedded import cpu_turn

        held = _examples(site, settings, params, "heldout", "val_limit")
        if not held:
            return FitResult(weights=[], n_examples=0, metrics={})
        with cpu_turn():
            model = _model(params)
            model.set_weights(weights)
            loss_sum, n, err_sum, items = model.validate(
                held, int(params.get("max_length", 1536)),
                float(params.get("score_weight", 1.0)),
            )  # fmt: skip
        if not n:
            return FitResult(weights=[], n_examples=0, metrics={})
        stats = {"loss_sum": loss_sum, "score_abs_sum": err_sum, "score_items": float(items)}
        return FitResult(weights=[], n_examples=n, metrics=stats)

    def summarize(self, pooled: Mapping[str, float], params: Mapping[str, Any]) -> dict[str, float]:
        """Pooled held-out loss and teacher-forced item-score MAE (sums over sites / counts)."""
        n = float(pooled.get("n", pooled.get("n_examples", 0.0)))
        out = {"heldout_loss": float(pooled.get("loss_sum", 0.0)) / n} if n > 0 else {}
        items = float(pooled.get("score_items", 0.0))
        if items > 0:
            out["score_mae"] = float(pooled.get("score_abs_sum", 0.0)) / items
        return out

    def save_artifact(
        self,
        settings: Settings,
        weights: Weights,
        params: Mapping[str, Any],
        summary: Mapping[str, Any],
    ) -> str:
        """Write the averaged adapter (GGUF + matrices + card) at the coordinator."""
        from mindcommons.lora.export import save_adapter
        from mindcommons.models.embedded import embedded_model_path

        out = Path(str(params["out"])) if params.get("out") else default_out(settings)
        card = {
            "training": {"mode": "federated", **_numbers(summary)},
            "data": "instruction examples built at each site from its own records; "
            "none left a site",
            "task": str(params.get("task", "phq9")),
        }
        return str(save_adapter(out, embedded_model_path(), _spec(params), weights, card))


def _numbers(summary: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if isinstance(v, int | float | str | list | dict)}


def default_out(settings: Settings) -> Path:
    """``<home>/models/lora-<UTC time>`` (a new folder per run)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return settings.resolved_home() / "models" / f"lora-{stamp}"


TRAINERS.add("lora", LoraTrainer())


def fedavg(results: Sequence[tuple[Weights, int]]) -> Weights:
    """Average of adapters weighted by examples, each matrix (A and B) separately: the
    coordinator's own ``federation.training.fedavg``, with the adapter's error."""
    try:
        return training_fedavg(list(results))
    except ValueError as err:
        raise ConfigError("no site returned an adapter trained on any example") from err


@dataclass
class RoundsResult:
    """What a plain-loop federated run produced (numbers only)."""

    weights: Weights
    rounds: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    bytes_per_site_round: int = 0


def run_rounds(
    settings: Settings,
    sites: Sequence[str],
    params: Mapping[str, Any],
    *,
    rounds: int = 2,
    progress: Callable[[str], None] | None = None,
) -> RoundsResult:
    """FedAvg over ``sites`` (folders of ``settings``) in this process: the coordinator's
    math without the transport. Each round every site fits from the global adapter."""
    from mindcommons.lora.train import peak_rss_mb

    if rounds < 1:
        raise ConfigError(f"rounds={rounds} must be at least 1")
    trainer = LoraTrainer()
    weights = trainer.initial_weights(params)
    size = int(sum(w.size for w in weights)) * 4
    history: list[dict[str, Any]] = []
    started = time.perf_counter()
    for number in range(1, rounds + 1):
        replies = []
        for site in sites:
            fitted = trainer.fit(site, settings, weights, {**params, "round": number})
            replies.append((fitted.weights, fitted.n_examples))
            history.append({"round": number, "site": site, "n_examples": fitted.n_examples,
                            **dict(fitted.metrics)})  # fmt: skip
            if progress is not None:
                m = fitted.metrics
                progress(f"round {number} {site}: loss {m['loss_first']:.3f} -> "
                         f"{m['loss_last']:.3f} ({m['train_seconds']:.0f} s)")  # fmt: skip
        weights = fedavg(replies)
    return RoundsResult(
        weights=weights, rounds=history, seconds=time.perf_counter() - started,
        peak_rss_mb=peak_rss_mb(), bytes_per_site_round=2 * size,
    )  # fmt: skip
