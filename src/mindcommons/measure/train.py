"""Train a measurement model locally: examples -> embeddings -> head -> artifact with card.

Used by ``mindcommons train KIND --data PATH`` and by the benchmarks. The split is by
group (a thought, a pair, a participant) so near-duplicates never straddle train and
test; early stopping keeps the epoch with the best validation score (the kind's primary
metric). Test metrics carry 95% bootstrap intervals and go into the model card.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from mindcommons.errors import InputError
from mindcommons.measure import heads
from mindcommons.measure.kinds import MEASURES, Example, MeasureKind, load_examples, split_of
from mindcommons.measure.model import features, head_config, save_artifact
from mindcommons.measure.scores import bootstrap, score_outputs
from mindcommons.settings import Settings

if TYPE_CHECKING:
    from mindcommons.measure.finetune import FinetuneConfig

Progress = Callable[[str], None]


@dataclass
class TrainReport:
    path: Path | None
    kind: str
    metrics: dict[str, float]
    intervals: dict[str, list[float]]
    n_train: int
    n_val: int
    n_test: int
    seconds: float
    peak_rss_mb: float
    best_epoch: int
    weights: heads.Weights = field(default_factory=list, repr=False)


def encode_labels(kind: MeasureKind, examples: Sequence[Example]) -> NDArray[np.int64]:
    """``[n, n_outputs]`` label indices; -1 where an example has no label for that output."""
    y = np.full((len(examples), len(kind.outputs)), -1, dtype=np.int64)
    for i, ex in enumerate(examples):
        for j, o in enumerate(kind.outputs):
            if o.key in ex.labels:
                y[i, j] = o.labels.index(ex.labels[o.key])
    return y


def predict_labels(
    cfg: heads.HeadConfig, weights: heads.Weights, x: NDArray[np.float32]
) -> NDArray[np.int64]:
    probs = heads.predict_proba(cfg, weights, x)
    if not probs:
        return np.zeros((len(x), 0), dtype=np.int64)
    return np.stack([p.argmax(axis=1) for p in probs], axis=1).astype(np.int64)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def split_examples(
    examples: Sequence[Example], seed: int, val: float = 0.1, test: float = 0.1
) -> tuple[list[Example], list[Example], list[Example]]:
    """Train / validation / test by a hash of each example's group."""
    parts: tuple[list[Example], list[Example], list[Example]] = ([], [], [])
    for ex in examples:
        k = split_of(ex, seed, (test, val))
        parts[{0: 2, 1: 1}.get(k, 0)].append(ex)
    return parts


def fit_head(
    kind: MeasureKind,
    x_tr: NDArray[np.float32],
    y_tr: NDArray[np.int64],
    x_val: NDArray[np.float32],
    y_val: NDArray[np.int64],
    *,
    hidden: int = 0,
    epochs: int = 60,
    lr: float = 3e-3,
    weight_decay: float = 1e-4,
    patience: int = 8,
    seed: int = 0,
    progress: Progress | None = None,
) -> tuple[heads.Weights, int, dict[str, list[float]]]:
    """Best-on-validation weights, the epoch they came from, and the class weights used."""
    cfg = head_config(kind, hidden)
    class_weights = heads.balanced_class_weights(cfg, heads.label_counts(cfg, y_tr))
    best: dict[str, Any] = {"score": -1.0, "epoch": 0, "weights": heads.init_weights(cfg, seed)}

    def on_epoch(epoch: int, weights: heads.Weights) -> bool:
        if len(x_val) == 0:
            best.update(epoch=epoch, weights=weights)
            return False
        score = score_outputs(kind.outputs, y_val, predict_labels(cfg, weights, x_val))
        value = score[kind.primary_metric]
        if value > best["score"]:
            best.update(score=value, epoch=epoch, weights=weights)
        if progress is not None and (epoch % 5 == 0 or epoch == epochs - 1):
            progress(f"epoch {epoch + 1}/{epochs}: validation {kind.primary_metric} {value:.3f}")
        return epoch - int(best["epoch"]) >= patience

    opts = heads.FitOptions(
        epochs=epochs, lr=lr, weight_decay=weight_decay, class_weights=class_weights,
        seed=seed, on_epoch=on_epoch,
    )  # fmt: skip
    heads.fit(cfg, best["weights"], x_tr, y_tr, opts)
    return list(best["weights"]), int(best["epoch"]), class_weights


def train_examples(
    kind: MeasureKind,
    train: Sequence[Example],
    val: Sequence[Example],
    test: Sequence[Example],
    *,
    settings: Settings,
    out: Path | None = None,
    save: bool = True,
    hidden: int = 0,
    epochs: int = 60,
    lr: float = 3e-3,
    seed: int = 0,
    n_boot: int = 1000,
    cache: Path | None = None,
    data_note: str = "",
    progress: Progress | None = None,
) -> TrainReport:
    """Embed, fit, score on ``test`` with intervals and (``save``) write the artifact."""
    if not train:
        raise InputError("no training examples", expected="at least one labelled example")
    started = time.perf_counter()
    say = progress or (lambda _m: None)
    say(f"{kind.name}: {len(train)} train / {len(val)} validation / {len(test)} test examples")
    x_tr = features(kind, [e.texts for e in train], cache=cache, progress=progress)
    x_val = features(kind, [e.texts for e in val], cache=cache, progress=progress)
    x_te = features(kind, [e.texts for e in test], cache=cache, progress=progress)
    y_tr, y_val, y_te = (encode_labels(kind, s) for s in (train, val, test))
    cfg = head_config(kind, hidden)
    weights, best_epoch, class_weights = fit_head(
        kind, x_tr, y_tr, x_val, y_val, hidden=hidden, epochs=epochs, lr=lr, seed=seed,
        progress=progress,
    )  # fmt: skip
    metrics: dict[str, float] = {}
    intervals: dict[str, list[float]] = {}
    if len(test):
        pred = predict_labels(cfg, weights, x_te)
        metrics = score_outputs(kind.outputs, y_te, pred)
        intervals = bootstrap(kind.outputs, y_te, pred, n_boot=n_boot, seed=seed)
    seconds = time.perf_counter() - started
    report = TrainReport(
        path=None, kind=kind.name, metrics=metrics, intervals=intervals, n_train=len(train),
        n_val=len(val), n_test=len(test), seconds=round(seconds, 2),
        peak_rss_mb=round(peak_rss_mb(), 1), best_epoch=best_epoch, weights=weights,
    )  # fmt: skip
    if save:
        report.path = save_artifact(
            kind, cfg, weights,
            {
                "training": {
                    "mode": "local", "n_train": len(train), "n_validation": len(val),
                    "n_test": len(test), "epochs_max": epochs, "best_epoch": best_epoch + 1,
                    "learning_rate": lr, "seed": seed, "seconds": report.seconds,
                    "peak_rss_mb": report.peak_rss_mb, "data": data_note,
                    "class_weights": class_weights,
                    "label_counts_train": heads.label_counts(cfg, y_tr),
                },
                "metrics": {"test": metrics, "intervals": intervals, "n_test": len(test),
                            "n_boot": n_boot},
            },
            settings=settings, out=out,
        )  # fmt: skip
    return report


def restrict(
    kind: MeasureKind, examples: list[Example], outputs: Sequence[str], source: str
) -> tuple[MeasureKind, list[Example]]:
    """``kind`` restricted to ``outputs`` and the examples labelled for at least one of
    them (both unchanged if no outputs are given); ``source`` names the data in errors."""
    if not outputs:
        return kind, examples
    part = kind.only(outputs)
    kept = [e for e in examples if any(k in e.labels for k in outputs)]
    if not kept:
        raise InputError(
            f"no example has a label for {', '.join(outputs)}", file=source, field="labels",
            expected=f"examples labelled for {', '.join(outputs)}, or other --outputs",
        )  # fmt: skip
    return part, kept


def train_kind(
    kind_name: str,
    data: Path,
    *,
    settings: Settings,
    out: Path | None = None,
    hidden: int = 0,
    epochs: int = 60,
    seed: int = 0,
    progress: Progress | None = None,
    finetune: FinetuneConfig | None = None,
    outputs: Sequence[str] = (),
) -> TrainReport:
    """``mindcommons train KIND --data PATH``: public folder or JSONL, split by group.

    ``finetune``: fine-tune the encoder too (``measure.finetune``) instead of a head on
    frozen embeddings; ``hidden`` and ``epochs`` then do not apply. ``outputs``: train
    only these of the kind's outputs (one model per output; ``model.combine_artifacts``
    joins such models into one).
    """
    kind = MEASURES.get(kind_name)
    kind, examples = restrict(kind, load_examples(kind, data), outputs, str(data))
    train, val, test = split_examples(examples, seed)
    if finetune is not None:
        from mindcommons.measure.finetune import train_finetuned

        return train_finetuned(kind, train, val, test, finetune, settings=settings, out=out,
                               data_note=data.name, progress=progress)  # fmt: skip
    return train_examples(
        kind, train, val, test, settings=settings, out=out, hidden=hidden, epochs=epochs,
        seed=seed, cache=settings.resolved_home() / "cache" / "embeddings.sqlite",
        data_note=data.name, progress=progress,
    )  # fmt: skip


def train_site(
    kind_name: str,
    site: str,
    *,
    settings: Settings,
    out: Path | None = None,
    hidden: int = 0,
    epochs: int = 60,
    seed: int = 0,
    progress: Progress | None = None,
    finetune: FinetuneConfig | None = None,
    outputs: Sequence[str] = (),
) -> TrainReport:
    """Train on one site's own data (its ``train/<kind>.jsonl`` or repository), locally."""
    from mindcommons.measure.kinds import site_examples

    kind = MEASURES.get(kind_name)
    kind, examples = restrict(kind, site_examples(kind, settings, site), outputs, f"site {site}")
    train, val, test = split_examples(examples, seed, val=0.15, test=0.15)
    if finetune is not None:
        from mindcommons.measure.finetune import train_finetuned

        return train_finetuned(kind, train, val, test, finetune, settings=settings, out=out,
                               data_note=f"site {site}", progress=progress)  # fmt: skip
    return train_examples(
        kind, train, val, test, settings=settings, out=out, hidden=hidden, epochs=epochs,
        seed=seed, cache=settings.site_dir(site) / "cache" / "embeddings.sqlite",
        data_note=f"site {site}", progress=progress,
    )  # fmt: skip
