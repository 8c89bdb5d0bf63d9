"""Measurement-model artifacts (weights + model card) and the stable predict API.

An artifact is a directory ``<MINDCOMMONS_HOME>/models/<name>/<version>/`` (versions
``v1``, ``v2``, ... in order of training) holding ``weights.npz`` (the head),
``card.json`` (everything needed to rebuild and judge the model: kind, encoder, head,
data, metrics with bootstrap intervals, intended use, limits) and ``card.md`` (the same,
for people). It is written to a temporary folder and renamed, so it is whole or absent.
"""

from __future__ import annotations

import hashlib
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
    weights: Weights = []
    try:
        card = json.loads((path / "card.json").read_text(encoding="utf-8"))
        if "combined" not in card:
            with np.load(path / "weights.npz") as data:
                weights = [np.asarray(data[f"w{i}"], np.float32) for i in range(len(data.files))]
    except (OSError, ValueError, KeyError) as err:
        raise InputError(f"unreadable model artifact: {err}", file=str(path)) from err
    if card.get("card_version") != CARD_VERSION:
        raise ConfigError(f"{path}: card version {card.get('card_version')} is not supported")
    if "combined" in card:
        return _load_combined(path, card, settings)
    measurer = Measurer(path, card, weights)
    from mindcommons.measure.heads import check_weights

    try:
        check_weights(measurer.config, weights)
    except ValueError as err:
        raise InputError(str(err), file=str(path / "weights.npz")) from err
    return measurer


class CombinedMeasurer(Measurer):
    """One model assembled from per-output models (``combine_artifacts``): each output's
    labels come from its own artifact, as EPITOME's one model per mechanism, or from the
    mean of several artifacts' probabilities (an ensemble, e.g. training seeds)."""

    def __init__(self, path: Path, card: dict[str, Any], parts: dict[str, list[Measurer]]) -> None:
        kind = MEASURES.get(str(card["kind"]))
        config = HeadConfig(in_dim=0, outputs=kind.outputs, hidden=0)
        self.path, self.card, self.kind, self.config = path, card, kind, config
        self.weights, self.finetuned = [], None
        self.parts = parts  # output key -> the measurers whose probabilities it averages

    def predict_features(self, x: NDArray[np.float32]) -> list[Prediction]:
        raise ConfigError(
            f"{self.path}: a combined model predicts from texts (each part has its own encoder)"
        )

    def predict(
        self, inputs: Sequence[MeasureInput], *, cache: Path | None = None
    ) -> list[Prediction]:
        by_part: dict[int, list[Prediction]] = {}
        for members in self.parts.values():  # each distinct part runs once
            for m in members:
                if id(m) not in by_part:
                    by_part[id(m)] = m.predict(inputs, cache=cache)
        out = []
        for i in range(len(inputs)):
            labels: dict[str, str] = {}
            dist: dict[str, dict[str, float]] = {}
            for o in self.kind.outputs:
                got = [by_part[id(m)][i].probs[o.key] for m in self.parts[o.key]]
                mean = [sum(g[lab] for g in got) / len(got) for lab in o.labels]
                dist[o.key] = dict(zip(o.labels, mean, strict=True))
                labels[o.key] = o.labels[int(np.argmax(mean))]  # ties: the first label
            out.append(Prediction(labels, dist))
        return out


def _card_sha256(path: Path) -> str:
    return hashlib.sha256((path / "card.json").read_bytes()).hexdigest()


def combine_artifacts(
    kind_name: str,
    parts: Mapping[str, str | Path | Sequence[str | Path]],
    *,
    settings: Settings,
    out: Path | None = None,
) -> Path:
    """Write a combined ``kind_name`` model taking each output from its own artifact(s).

    ``parts`` maps every output key of the kind to an artifact (``name@vN`` or a folder)
    that predicts it (trained with ``outputs``, or a whole model), or to several: that
    output's probabilities are then their mean (an ensemble). The combined card points at
    each part by a path relative to itself and its card's SHA-256, so the home can move,
    and a replaced part is refused when loading. Returns the new folder.
    """
    kind = MEASURES.get(kind_name)
    keys = [o.key for o in kind.outputs]
    wrong = sorted(set(parts) - set(keys))
    missing = [k for k in keys if k not in parts]
    if wrong or missing:
        raise ConfigError(
            f"a combined {kind.name} model needs one artifact for each of its outputs "
            f"{', '.join(keys)}"
            + (f"; unknown: {', '.join(wrong)}" if wrong else "")
            + (f"; missing: {', '.join(missing)}" if missing else "")
        )
    target, version = _new_target(settings, kind.name, out)
    entries: dict[str, Any] = {}
    for key in keys:
        refs = parts[key]
        refs = [refs] if isinstance(refs, str | Path) else list(refs)
        if not refs:
            raise ConfigError(f"a combined {kind.name} model needs an artifact for {key}")
        members: list[dict[str, str]] = []
        for ref in refs:
            part = load_measurer(ref, settings)
            if isinstance(part, CombinedMeasurer):
                raise ConfigError(f"{part.path}: is itself combined; give the artifacts it joins")
            if part.kind.name != kind.name or key not in [o.key for o in part.config.outputs]:
                raise ConfigError(
                    f"{part.path}: a {part.kind.name} model with outputs "
                    f"{', '.join(o.key for o in part.config.outputs)} "
                    f"cannot give {kind.name} {key}"
                )
            where = Path(os.path.relpath(part.path.resolve(), target.resolve())).as_posix()
            if any(m["artifact"] == where for m in members):
                raise ConfigError(f"{part.path}: named twice for {key}; give each model once")
            members.append({"artifact": where, "card_sha256": _card_sha256(part.path)})
        entries[key] = members[0] if len(members) == 1 else members
    card: dict[str, Any] = {
        "card_version": CARD_VERSION, "name": kind.name, "kind": kind.name,
        "title": kind.title, "version": version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"), "combined": entries,
        "data": {"description": kind.data, "licence": kind.licence},
        "intended_use": kind.intended_use, "limits": kind.limits,
    }  # fmt: skip
    return _publish(target, card, lambda _tmp: None)


def _members(entry: object) -> list[Mapping[str, Any]]:
    """A combined card's entry for one output: one part, or a list of them (an ensemble)."""
    found: list[Any] = entry if isinstance(entry, list) else [entry]
    keys = ("artifact", "card_sha256")
    valid = all(isinstance(m, Mapping) and all(isinstance(m.get(k), str) for k in keys)
                for m in found)  # fmt: skip
    return found if found and valid else []


def _load_combined(path: Path, card: dict[str, Any], settings: Settings | None) -> Measurer:
    kind = MEASURES.get(str(card["kind"]))
    loaded: dict[str, Measurer] = {}
    parts: dict[str, list[Measurer]] = {}
    for o in kind.outputs:
        members = _members(card["combined"].get(o.key))
        if not members:
            raise InputError(
                f"no part for output {o.key} (expected {{artifact, card_sha256}} or a list "
                "of them)", file=str(path / "card.json"), field=f"combined.{o.key}",
            )  # fmt: skip
        parts[o.key] = []
        for entry in members:
            folder = (path / str(entry["artifact"])).resolve()
            if not (folder / "card.json").exists() or _card_sha256(folder) != entry["card_sha256"]:
                raise InputError(
                    f"part {entry['artifact']} is missing or was replaced since it was "
                    "combined (card.json SHA-256 differs): combine again",
                    file=str(path / "card.json"), field=f"combined.{o.key}",
                )  # fmt: skip
            if str(folder) not in loaded:
                loaded[str(folder)] = load_measurer(folder, settings)
            parts[o.key].append(loaded[str(folder)])
    return CombinedMeasurer(path, card, parts)


def next_version(settings: Settings, name: str) -> str:
    folder = models_dir(settings) / name
    versions = _versions(folder) if folder.is_dir() else []
    return f"v{int(versions[-1].name[1:]) + 1 if versions else 1}"


def _new_target(settings: Settings, name: str, out: Path | None) -> tuple[Path, str]:
    """The folder a new artifact goes to (``out`` or the next version) and its version."""
    version = out.name if out is not None else next_version(settings, name)
    target = out if out is not None else models_dir(settings) / name / version
    if target.exists() and any(target.iterdir()):
        raise ConfigError(f"{target} already exists and is not empty: choose another --out")
    return target, version


def _publish(target: Path, card: Mapping[str, Any], write: Callable[[Path], None]) -> Path:
    """Write ``card.json``, ``card.md`` and what ``write`` adds into a temporary folder,
    then rename it to ``target``: the artifact is whole or absent."""
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        (tmp / "card.json").write_text(json.dumps(card, indent=2, sort_keys=True), "utf-8")
        (tmp / "card.md").write_text(render_card(card), encoding="utf-8")
        write(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if target.exists():
        target.rmdir()
    tmp.rename(target)
    return target


def artifact_name(kind: MeasureKind) -> str:
    """``kind.name``, or ``<kind>.<output>+...`` for a model of some of its outputs only
    (``MeasureKind.only``), so loading a kind by name never finds a partial model."""
    if [o.key for o in kind.outputs] == [o.key for o in MEASURES.get(kind.name).outputs]:
        return kind.name
    return f"{kind.name}." + "+".join(o.key for o in kind.outputs)


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
    name = name or artifact_name(kind)
    target, version = _new_target(settings, name, out)
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

    def write(tmp: Path) -> None:
        arrays: dict[str, Any] = {f"w{i}": w for i, w in enumerate(weights)}
        np.savez(tmp / "weights.npz", **arrays)
        for file_name, write_file in (extra_files or {}).items():
            write_file(tmp / file_name)

    return _publish(target, card, write)


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


def _render_combined(card: Mapping[str, Any]) -> str:
    lines = [
        f"# {card['name']} {card['version']} — {card['title']}",
        "",
        f"Created {card['created']}. Kind `{card['kind']}`, combined: each output comes "
        "from its own model (read each part's card for its data, training and metrics).",
        "",
        "| output | model (relative to this folder) | card SHA-256 |",
        "|---|---|---|",
        *(f"| {k} | `{m['artifact']}` | {str(m['card_sha256'])[:12]}… |"
          for k, v in card["combined"].items() for m in _members(v)),
        *(["", "An output with several rows is an ensemble: the mean of those models' "
            "probabilities."] if any(isinstance(v, list) for v in card["combined"].values())
          else []),
        "", "## Intended use", "", str(card["intended_use"]),
        "", "## Limits", "", str(card["limits"]),
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def render_card(card: Mapping[str, Any]) -> str:
    """The model card as Markdown."""
    if "combined" in card:
        return _render_combined(card)
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
