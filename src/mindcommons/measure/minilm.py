"""all-MiniLM-L6-v2 sentence embeddings in plain PyTorch: a BERT encoder, mean pooling, L2.

The same computation as ``SentenceTransformer(all-MiniLM-L6-v2).encode(...,
normalize_embeddings=True)`` (a test checks the two agree to 1e-5), written out so that
scoring a reply does not import sentence-transformers and transformers: importing those
takes 4-8 s of CPU, which an audit run would pay once per process for a 30 ms
measurement. Weights come from the packaged ``model.safetensors``, the tokenizer from its
``tokenizer.json`` (the Rust ``tokenizers`` library); nothing is downloaded.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mindcommons.errors import PrerequisiteError
from mindcommons.settings import model_threads

TORCH_INSTALL = "pip install torch==2.13.0 tokenizers safetensors (see requirements.lock)"


def _imports() -> tuple[Any, Any, Any]:
    try:
        import torch
        from safetensors.torch import load_file
        from tokenizers import Tokenizer
    except ImportError as err:
        raise PrerequisiteError(f"the MiniLM encoder needs torch: {TORCH_INSTALL}") from err
    return torch, load_file, Tokenizer


def inference_threads(n_texts: int) -> int:
    """Torch threads for encoding ``n_texts``: ``MINDCOMMONS_MODEL_THREADS`` if set, else
    one for a handful of texts (a reply being scored: as fast as two threads, and a
    multi-threaded pool stalls 10x when another process holds a core), else every core."""
    return model_threads() or (1 if n_texts <= 4 else max(1, os.cpu_count() or 1))


@contextmanager
def threads_during(torch: Any, n: int) -> Iterator[None]:
    """Run the block with ``n`` intra-op threads, then restore the process setting."""
    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n != before:
            torch.set_num_threads(before)


class MiniLM:
    """The packaged MiniLM as a function ``encode(texts) -> float32[n, 384]`` (L2-normalised)."""

    def __init__(self, folder: Path, max_seq_length: int) -> None:
        torch, load_file, tokenizer_cls = _imports()
        self._torch = torch
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu":
            raise PrerequisiteError(
                f"{folder / 'config.json'} is not a BERT encoder with GELU "
                f"(model_type {config.get('model_type')!r}): reinstall the encoder package"
            )
        self.hidden = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config["layer_norm_eps"])
        self.w = load_file(str(folder / "model.safetensors"), device="cpu")
        missing = [
            k
            for k in ("embeddings.word_embeddings.weight", "embeddings.LayerNorm.weight")
            if k not in self.w
        ]
        if missing:
            raise PrerequisiteError(f"{folder / 'model.safetensors'} lacks {', '.join(missing)}")
        self.tokenizer = tokenizer_cls.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_seq_length)
        self.tokenizer.enable_padding(pad_id=int(config.get("pad_token_id", 0)))

    def _ln(self, x: Any, prefix: str) -> Any:
        return self._torch.nn.functional.layer_norm(
            x, (self.hidden,), self.w[f"{prefix}.weight"], self.w[f"{prefix}.bias"], self.eps
        )

    def _linear(self, x: Any, prefix: str) -> Any:
        return self._torch.nn.functional.linear(
            x, self.w[f"{prefix}.weight"], self.w[f"{prefix}.bias"]
        )

    def _forward(self, ids: Any, mask: Any) -> Any:
        torch, w = self._torch, self.w
        f = torch.nn.functional
        n, length = ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:length].unsqueeze(0)
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = self._ln(x, "embeddings.LayerNorm")
        head_dim = self.hidden // self.heads
        # additive mask: padded keys get -inf-like scores (as transformers does)
        bias = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min

        def split(t: Any) -> Any:  # [n, length, hidden] -> [n, heads, length, head_dim]
            return t.view(n, length, self.heads, head_dim).transpose(1, 2)

        for i in range(self.layers):
            p = f"encoder.layer.{i}"
            q = split(self._linear(x, f"{p}.attention.self.query"))
            k = split(self._linear(x, f"{p}.attention.self.key"))
            v = split(self._linear(x, f"{p}.attention.self.value"))
            scores = q @ k.transpose(-1, -2) / math.sqrt(head_dim) + bias
            ctx = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(n, length, self.hidden)
            x = self._ln(
                self._linear(ctx, f"{p}.attention.output.dense") + x,
                f"{p}.attention.output.LayerNorm",
            )
            h = f.gelu(self._linear(x, f"{p}.intermediate.dense"))
            x = self._ln(self._linear(h, f"{p}.output.dense") + x, f"{p}.output.LayerNorm")
        return x

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> NDArray[np.float32]:
        """Mean-pooled, L2-normalised embeddings ``[len(texts), hidden]`` in input order."""
        torch = self._torch
        out = np.zeros((len(texts), self.hidden), dtype=np.float32)
        # longest first, so padded batches waste little work
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        with threads_during(torch, inference_threads(len(texts))), torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                encoded = self.tokenizer.encode_batch([texts[i] for i in idx])
                ids = torch.tensor([e.ids for e in encoded], dtype=torch.long)
                mask = torch.tensor([e.attention_mask for e in encoded], dtype=torch.long)
                hidden = self._forward(ids, mask)
                m = mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out[idx] = pooled.numpy()
        return out
