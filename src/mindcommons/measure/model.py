"""Measurement-model artifacts (weights + model card) and the stable predict API.

An artifact is a directory ``<MINDCOMMONS_HOME>/models/<name>/<version>/`` (versions
``v1``, ``v2``, ... in order of training) holding ``weights.npz`` (the head),
``card.json`` (everything needed to rebuild and judge the model: kind, encoder, head,
data, metrics with bootstrap intervals, intended use, limits) and ``card.md`` (the same,
for people). It is written to a temporary folder and renamed, so it is whole or absent.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mindcommons.errors import ConfigError, InputError, PrerequisiteError
from mindcommons.measure import embed as emb
from mindcommons.measure.heads import HeadConfig, OutputSpec, Weights, predict_proba
from mindcommons.measure.kinds import MEASURES, MeasureKind
from mindcommons.settings import Settings, load_settings

CARD_VERSION = 1
MeasureInput = str | tuple[str, str] | Sequence[str] | Mapping[str, str]


@dataclass(frozen=True)
class Prediction:
    """One input's result: the most likely label and every label's probability, per key."""

    labels: dict[str, str]
    probs: dict[str, dict[str, float]]


def models_dir(settings: Settings) -> Path:
    return settings.resolved_home() / "models"


def head_config(kind: MeasureKind, hidden: int = 0) -> HeadConfig:
    dim = emb.DIM * 4 if kind.pair else emb.DIM
    return HeadConfig(in_dim=dim, outputs=kind.outputs, hidden=hidden)


def _pair_of(kind: MeasureKind, item: MeasureInput, index: int) -> tuple[str, ...]:
    if kind.pair:
        if isinstance(item, Mapping):
            post, response = item.get("post"), item.get("response")
        elif isinstance(item, Sequence) and not isinstance(item, str) and len(item) == 2:
            post, response = item[0], item[1]
        else:
            post = response = None
        if not isinstance(post, str) or not isinstance(response, str):
            raise InputError(
                "an empathy input is a (seeker post, response) pair",
                record=index,
                expected="a 2-tuple of strings or {'post': ..., 'response': ...}",
            )
        return (post, response)
    if isinstance(item, Mapping):
        item = item.get("text", "")
    if not isinstance(item, str):
        raise InputError("input is not a text", record=index, expected="a string")
    return (item,)


def features(
    kind: MeasureKind,
    texts: Sequence[tuple[str, ...]],
    *,
    cache: Path | None = None,
    progress: emb.Progress | None = None,
) -> NDArray[np.float32]:
    """The head's input for each example: an embedding, or pair features for pair kinds."""
    if kind.pair:
        flat = [t for pair in texts for t in pair]
        vecs = emb.embed(flat, cache=cache, progress=progress)
        return emb.pair_features(vecs[0::2], vecs[1::2])
    return emb.embed([t[0] for t in texts], cache=cache, progress=progress)


class Measurer:
    """A loaded measurement model. ``predict`` takes texts (or pairs) and returns labels."""

    def __init__(self, path: Path, card: dict[str, Any], weights: Weights) -> None:
        self.path = path
        self.card = card
        self.kind = MEASURES.get(str(card["kind"]))
        outputs = tuple(OutputSpec(o["key"], tuple(o["labels"])) for o in card["head"]["outputs"])
        self.config = HeadConfig(
            in_dim=int(card["head"]["in_dim"]), outputs=outputs, hidden=int(card["head"]["hidden"])
        )
        self.weights = weights
        self.finetuned: Any = None  # a fine-tuned encoder (measure.finetune), loaded lazily
        if isinstance(card.get("encoder"), Mapping) and card["encoder"].get("finetuned"):
            from mindcommons.measure.finetune import FinetunedEncoder

            self.finetuned = FinetunedEncoder(path, card)

    @property
    def name(self) -> str:
        return str(self.card["name"])

    @property
    def version(self) -> str:
        return str(self.card["version"])

    def predict_features(self, x: NDArray[np.float32]) -> list[Prediction]:
        probs = predict_proba(self.config, self.weights, x)
        out = []
        for i in range(len(x)):
            labels: dict[str, str] = {}
            dist: dict[str, dict[str, float]] = {}
            for o, p in zip(self.config.outputs, probs, strict=True):
                row = p[i]
                labels[o.key] = o.labels[int(np.argmax(row))]
                dist[o.key] = {lab: float(v) for lab, v in zip(o.labels, row, strict=True)}
            out.append(Prediction(labels, dist))
        return out

    def predict(
        self, inputs: Sequence[MeasureInput], *, cache: Path | None = None
    ) -> list[Prediction]:
        """Predictions in input order. Empathy inputs are (seeker post, response) pairs."""
        texts = [_pair_of(self.kind, item, i) for i, item in enumerate(inputs)]
        if not texts:
            return []
        if self.finetuned is not None:  # its own encoder: no shared embedding cache
            return self.predict_features(self.finetuned.features(texts))
        return self.predict_features(features(self.kind, texts, cache=cache))


def _versions(folder: Path) -> list[Path]:
    found = [p for p in folder.iterdir() if p.is_dir() and (p / "card.json").exists()]
    found = [p for p in found if p.name.startswith("v") and p.name[1:].isdigit()]
    return sorted(found, key=lambda p: int(p.name[1:]))


def resolve_artifact(name_or_path: str | Path, settings: Settings | None = None) -> Path:
    """A folder with ``card.json``: the path itself, or ``<home>/models/<name>[/<version>]``.

    ``name`` may carry a version (``empathy@v2`` or ``empathy/v2``); without one the
    latest version is used.
    """
    path = Path(name_or_path)
    if (path / "card.json").exists():
        return path
    settings = settings or load_settings()
    text = str(name_or_path)
    name, _, version = text.replace("/", "@").partition("@")
    folder = models_dir(settings) / name
    if version:
        if (folder / version / "card.json").exists():
            return folder / version
    elif folder.is_dir():
        versions = _versions(folder)
        if versions:
            return versions[-1]
    raise PrerequisiteError(
        f"no trained measurement model '{text}' in {models_dir(settings)}: train one with "
        f"`mindcommons train {name} --data PATH` (kinds: {', '.join(MEASURES.names())})"
    )


def load_measurer(name_or_path: str | Path, settings: Settings | None = None) -> Measurer:
    """Load a measurement model by name (latest version), ``name@vN`` or artifact folder."""
    path = resolve_artifact(name_or_path, settings)
    try:
        card = json.loads((path / "card.json").read_text(encoding="utf-8"))
        with np.load(path / "weights.npz") as data:
            weights = [np.asarray(data[f"w{i}"], np.float32) for i in range(len(data.files))]
    except (OSError, ValueError, KeyError) as err:
        raise InputError(f"unreadable model artifact: {err}", file=str(path)) from err
    if card.get("card_version") != CARD_VERSION:
        raise ConfigError(f"{path}: card version {card.get('card_version')} is not supported")
    measurer = Measurer(path, card, weights)
    from mindcommons.measure.heads import check_weights

    try:
        check_weights(measurer.config, weights)
    except ValueError as err:
        raise InputError(str(err), file=str(path / "weights.npz")) from err
    return measurer


def next_version(settings: Settings, name: str) -> str:
    folder = models_dir(settings) / name
    versions = _versions(folder) if folder.is_dir() else []
    return f"v{int(versions[-1].name[1:]) + 1 if versions else 1}"


def save_artifact(
    kind: MeasureKind,
    config: HeadConfig,
    weights: Weights,
    card_fields: dict[str, Any],
    *,
    settings: Settings,
    out: Path | None = None,
    name: str | None = None,
    extra_files: Mapping[str, Callable[[Path], None]] | None = None,
) -> Path:
    """Write weights, card.json and card.md to ``out`` (or the next version); return it.

    ``extra_files`` maps a file name to a function writing it (a fine-tuned encoder's
    weights); they are written into the same temporary folder before the rename.
    """
    name = name or kind.name
    version = out.name if out is not None else next_version(settings, name)
    target = out if out is not None else models_dir(settings) / name / version
    if target.exists() and any(target.iterdir()):
        raise ConfigError(f"{target} already exists and is not empty: choose another --out")
    card: dict[str, Any] = {
        "card_version": CARD_VERSION,
        "name": name,
        "kind": kind.name,
        "title": kind.title,
        "version": version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "encoder": {
            "id": emb.ENCODER_ID,
            "package": emb.ENCODER_PACKAGE,
            "dim": emb.DIM,
            "max_seq_length": emb.MAX_SEQ_LENGTH,
            "input": "[u, v, |u-v|, u*v] of (seeker post, response)" if kind.pair else "text",
        },
        "head": {
            "in_dim": config.in_dim,
            "hidden": config.hidden,
            "outputs": [{"key": o.key, "labels": list(o.labels)} for o in config.outputs],
        },
        "data": {"description": kind.data, "licence": kind.licence},
        "intended_use": kind.intended_use,
        "limits": kind.limits,
        **card_fields,
    }
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    arrays: dict[str, Any] = {f"w{i}": w for i, w in enumerate(weights)}
    np.savez(tmp / "weights.npz", **arrays)
    (tmp / "card.json").write_text(json.dumps(card, indent=2, sort_keys=True), encoding="utf-8")
    (tmp / "card.md").write_text(render_card(card), encoding="utf-8")
    try:
        for file_name, write in (extra_files or {}).items():
            write(tmp / file_name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if target.exists():
        target.rmdir()
    tmp.rename(target)
    return target


def _fmt_metric(
    metrics: Mapping[str, float], intervals: Mapping[str, Sequence[float]], key: str
) -> str:
    value = metrics.get(key)
    if value is None:
        return "-"
    ci = intervals.get(key)
    return f"{value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def _finetuned_line(card: Mapping[str, Any]) -> list[str]:
    tuned = card["encoder"].get("finetuned")
    if not tuned:
        return ["The encoder is frozen (the packaged weights)."]
    return [
        f"The encoder is fine-tuned: its top {tuned['layers']} of {tuned['of_layers']} layers "
        f"(`{tuned['file']}`, applied to the packaged weights with SHA-256 "
        f"{str(tuned['base_sha256'])[:12]}…), {card['encoder']['max_seq_length']} tokens."
    ]


def render_card(card: Mapping[str, Any]) -> str:
    """The model card as Markdown."""
    hidden = int(card["head"]["hidden"])
    lines = [
        f"# {card['name']} {card['version']} — {card['title']}",
        "",
        f"Created {card['created']}. Kind `{card['kind']}`; encoder {card['encoder']['id']} "
        f"(packaged as `{card['encoder']['package']}`, input: {card['encoder']['input']}); "
        f"head: {'linear' if not hidden else f'MLP, {hidden} hidden units'}.",
        *_finetuned_line(card),
        "",
        "## Intended use",
        "",
        str(card["intended_use"]),
        "",
        "## Limits",
        "",
        str(card["limits"]),
        "",
        "## Data",
        "",
        f"{card['data']['description']}. Licence: {card['data']['licence']}",
    ]
    training = card.get("training", {})
    if training:
        lines += ["", "## Training", ""]
        lines += [f"- {k}: {v}" for k, v in sorted(training.items())
                  if not isinstance(v, dict | list)]  # fmt: skip
    metrics = card.get("metrics", {})
    values = metrics.get("test", {})
    intervals = metrics.get("intervals", {})
    if values:
        lines += ["", f"## Metrics (held-out test, n = {int(metrics.get('n_test', 0))}, "
                  f"95% bootstrap intervals)", ""]  # fmt: skip
        lines += ["| metric | value |", "|---|---|"]
        for key in sorted(values):
            if key.endswith(".n"):
                continue
            lines.append(f"| {key} | {_fmt_metric(values, intervals, key)} |")
    return "\n".join(lines) + "\n"
