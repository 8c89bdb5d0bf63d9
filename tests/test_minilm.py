"""The plain-PyTorch MiniLM (measure.minilm) against sentence-transformers, and its threads."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest

from mindcommons.errors import ConfigError
from mindcommons.measure import embed
from mindcommons.measure.minilm import MiniLM, inference_threads, threads_during


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    words = [
        *(
            [
                "i",
                "feel",
                "low",
                "today",
                "sleep",
                "work",
                "family",
                "worried",
                "café",
                "naïve",
                "can't",
                "won't",
            ]
        ),
        *("😀", "-", ",", "."),
    ]
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 200))) for _ in range(n)]
    return [*texts, "", "A" * 600, "Short."]


@pytest.mark.slow
def test_matches_sentence_transformers_in_any_batching() -> None:
    from sentence_transformers import SentenceTransformer

    texts = _texts(9)
    ours = MiniLM(embed.encoder_path(), embed.MAX_SEQ_LENGTH)
    a = ours.encode(texts, batch_size=4)
    b = ours.encode(list(reversed(texts)), batch_size=32)[::-1]
    reference = SentenceTransformer(str(embed.encoder_path()), device="cpu")
    reference.max_seq_length = embed.MAX_SEQ_LENGTH
    c = reference.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    assert a.shape == (len(texts), embed.DIM) and a.dtype == np.float32
    assert np.abs(a - c).max() < 1e-5
    assert np.abs(a - b).max() < 1e-5
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    # truncation at MAX_SEQ_LENGTH: what comes after the limit changes nothing
    long = "word " * 300
    x, y = ours.encode([long, long + " entirely different ending"])
    assert np.abs(x - y).max() < 1e-6


def test_inference_threads_follow_the_model_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MINDCOMMONS_MODEL_THREADS", raising=False)
    assert inference_threads(1) == 1
    assert inference_threads(500) == max(1, os.cpu_count() or 1)
    monkeypatch.setenv("MINDCOMMONS_MODEL_THREADS", "3")
    assert inference_threads(1) == 3 and inference_threads(500) == 3
    monkeypatch.setenv("MINDCOMMONS_MODEL_THREADS", "two")  # the same check as the LLM's
    with pytest.raises(ConfigError, match="MINDCOMMONS_MODEL_THREADS='two'"):
        inference_threads(1)


def test_torch_threads_are_restored() -> None:
    import torch

    before = torch.get_num_threads()
    target = 1 if before != 1 else 2
    with threads_during(torch, target):
        assert torch.get_num_threads() == target
    assert torch.get_num_threads() == before
