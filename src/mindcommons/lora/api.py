"""One call per way of training an adapter: at one site, over sites here, or federated."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mindcommons.errors import ConfigError
from mindcommons.settings import Settings, validate_site_name

Progress = Callable[[str], None]


def lora_params(
    *,
    rank: int = 4,
    alpha: float = 8.0,
    targets: str = "q,v",
    layers: int = 0,
    steps: int = 8,
    lr: float = 1e-3,
    limit: int | None = None,
    val_limit: int = 4,
    seed: int = 0,
    max_length: int = 1536,
    task: str = "phq9",
    score_weight: float = 1.0,
) -> dict[str, Any]:
    """The settings every way of training shares, as job params (see ``lora.federated``)."""
    from mindcommons.lora.layout import LoraSpec
    from mindcommons.lora.train import TrainConfig

    LoraSpec.from_params({"rank": rank, "alpha": alpha, "targets": targets, "layers": layers})
    # checked here, before any model loads or job is sent
    TrainConfig(steps=steps, lr=lr, seed=seed, max_length=max_length, score_weight=score_weight)
    return {
        "trainer": "lora", "rank": rank, "alpha": alpha, "targets": targets, "layers": layers,
        "steps": steps,
        "lr": lr, "limit": limit or 0, "val_limit": val_limit, "seed": seed,
        "max_length": max_length, "task": task, "score_weight": score_weight,
    }  # fmt: skip


def train_local(
    settings: Settings,
    sites: Sequence[str],
    params: Mapping[str, Any],
    *,
    rounds: int = 1,
    out: Path | None = None,
    progress: Progress | None = None,
) -> Path:
    """Train in this process on the sites' own folders; FedAvg when there are several.

    Returns the adapter folder (``adapter.gguf``, ``weights.npz``, ``card.json``).
    """
    from mindcommons.lora.export import save_adapter
    from mindcommons.lora.federated import default_out, run_rounds
    from mindcommons.models.embedded import embedded_model_path

    if not sites:
        raise ConfigError("name at least one site (--site)")
    for site in sites:
        validate_site_name(site)
        if not settings.site_dir(site).is_dir():
            raise ConfigError(f"site '{site}' has no folder under {settings.resolved_home()}")
    result = run_rounds(settings, list(sites), params, rounds=rounds, progress=progress)
    last = [r for r in result.rounds if r["round"] == rounds]
    card = {
        "training": {
            "mode": "local" if len(sites) == 1 else "local-fedavg",
            "sites": len(sites),
            "rounds": rounds,
            "steps_per_round": int(params.get("steps", 8)),
            "lr": float(params.get("lr", 1e-3)),
            "examples": sum(int(r["n_examples"]) for r in last),
            "tokens": int(sum(r["tokens"] for r in result.rounds)),
            "loss_first": float(result.rounds[0]["loss_first"]),
            "loss_last_mean": float(sum(r["loss_last"] for r in last) / max(len(last), 1)),
            "seconds": round(result.seconds, 1),
            "peak_rss_mb": result.peak_rss_mb,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
        "data": "instruction examples (phq9 task format) built from each site's own records",
        "task": str(params.get("task", "phq9")),
    }
    folder = out or default_out(settings)
    return save_adapter(folder, embedded_model_path(), _spec(params), result.weights, card)


def _spec(params: Mapping[str, Any]) -> Any:
    from mindcommons.lora.layout import LoraSpec

    return LoraSpec.from_params(params)


def train_federated(
    settings: Settings,
    params: Mapping[str, Any],
    *,
    sites: list[str] | None = None,
    rounds: int = 2,
    out: Path | None = None,
    timeout: float = 3600.0,
    debug_dump: Path | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Rounds through the running federation (the generic ``train`` job, trainer ``lora``).

    Each site's policy must allow ``train``. The averaged adapter is saved at the
    coordinator (``out`` or ``<home>/models/lora-<time>``); the result names it.
    """
    from mindcommons.federation.runner import run_job
    from mindcommons.lora.federated import default_out

    job_params = {
        **params, "trainer": "lora", "rounds": rounds, "patience": rounds,
        "stop_metric": "loss", "out": str((out or default_out(settings)).resolve()),
    }  # fmt: skip
    return run_job(
        settings, {"job": "train", "params": job_params}, sites=sites, timeout=timeout,
        debug_dump=debug_dump, progress=progress,
    )  # fmt: skip
