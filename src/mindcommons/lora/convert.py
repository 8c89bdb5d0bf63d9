"""The embedded model's GGUF dequantized into a PyTorch ``LlamaForCausalLM`` for training.

No HF-format weights of SmolLM2 exist offline; transformers reads the GGUF itself (it
dequantizes every tensor with the ``gguf`` package and undoes llama.cpp's q/k row
permutation), and builds the tokenizer from the GGUF's vocabulary. The result is cached
per process (loading takes ~15 s on 2 cores).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mindcommons.errors import ConfigError, PrerequisiteError
from mindcommons.lora.layout import ModelShape

TORCH_INSTALL = "pip install torch transformers gguf (see requirements.lock)"
DEFAULT_THREADS = 2


def torch_threads() -> int:
    """Threads for training: ``MINDCOMMONS_MODEL_THREADS`` or 2 (sites share small machines)."""
    env = os.environ.get("MINDCOMMONS_MODEL_THREADS", "").strip()
    if not env:
        return DEFAULT_THREADS
    if not env.isdigit() or int(env) < 1:
        raise ConfigError(
            f"MINDCOMMONS_MODEL_THREADS={env!r} is not valid (expected a positive integer)"
        )
    return int(env)


@dataclass
class BaseModel:
    """The base model in PyTorch (float32, frozen), its tokenizer and where it came from."""

    model: Any  # transformers LlamaForCausalLM
    tokenizer: Any
    path: Path
    shape: ModelShape


_CACHE: dict[Path, BaseModel] = {}
_LOCK = threading.Lock()


def load_base(path: Path | None = None) -> BaseModel:
    """The GGUF at ``path`` (default: the embedded model) as a frozen float32 torch model."""
    from mindcommons.models.embedded import embedded_model_path

    gguf_path = Path(path) if path else embedded_model_path()
    if not gguf_path.is_file():
        raise ConfigError(f"model file '{gguf_path}' does not exist (expected a .gguf file)")
    with _LOCK:
        if gguf_path in _CACHE:
            return _CACHE[gguf_path]
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
            from transformers.utils import logging as _hf_logging
        except ImportError as err:
            raise PrerequisiteError(f"LoRA training needs {err.name}; {TORCH_INSTALL}") from err
        torch.set_num_threads(torch_threads())
        hf_logging: Any = _hf_logging
        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
        folder, name = str(gguf_path.parent), gguf_path.name
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model: Any = AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=name, dtype=torch.float32
        )
        model.eval()
        for param in model.parameters():
            param.requires_grad_(False)
        cfg = model.config
        shape = ModelShape(
            n_layers=int(cfg.num_hidden_layers),
            hidden=int(cfg.hidden_size),
            n_head=int(cfg.num_attention_heads),
            n_head_kv=int(cfg.num_key_value_heads),
            head_dim=int(getattr(cfg, "head_dim", 0) or cfg.hidden_size // cfg.num_attention_heads),
        )
        base = BaseModel(model=model, tokenizer=tokenizer, path=gguf_path, shape=shape)
        _CACHE[gguf_path] = base
        return base
