"""The embedded model's GGUF dequantized into a PyTorch ``LlamaForCausalLM`` for training.

No HF-format weights of SmolLM2 exist offline; transformers reads the GGUF itself (it
dequantizes every tensor with the ``gguf`` package and undoes llama.cpp's q/k row
permutation), and builds the tokenizer from the GGUF's vocabulary. That conversion takes
15-300 s on 2 shared cores, and a federated round runs each site's step in a fresh process
(Flower's ClientApp), so the converted model is also kept on disk, keyed by the GGUF's
SHA-256 (``MINDCOMMONS_LORA_CACHE``, default ``$XDG_CACHE_HOME/mindcommons/lora-base``,
``off`` to disable; ~0.5 GB float32 of the public base model, no site data); a later
process loads it in seconds. The result is also cached per process.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mindcommons.errors import ConfigError, PrerequisiteError
from mindcommons.lora.layout import ModelShape
from mindcommons.settings import model_threads

TORCH_INSTALL = "pip install torch transformers gguf (see requirements.lock)"
DEFAULT_THREADS = 2


def torch_threads() -> int:
    """Threads for training: ``MINDCOMMONS_MODEL_THREADS`` or 2 (sites share small machines)."""
    return model_threads() or DEFAULT_THREADS


@dataclass
class BaseModel:
    """The base model in PyTorch (float32, frozen), its tokenizer and where it came from."""

    model: Any  # transformers LlamaForCausalLM
    tokenizer: Any
    path: Path
    shape: ModelShape


_CACHE: dict[Path, BaseModel] = {}
_LOCK = threading.Lock()
CACHE_ENV = "MINDCOMMONS_LORA_CACHE"
_WEIGHTS = "model.safetensors"
_DONE = "complete"  # written last: a folder without it is ignored and rebuilt


def disk_cache_dir() -> Path | None:
    """Where converted base models are kept (None: ``MINDCOMMONS_LORA_CACHE=off``)."""
    env = os.environ.get(CACHE_ENV, "").strip()
    if env.lower() in {"off", "0", "none"}:
        return None
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg) if xdg else Path.home() / ".cache") / "mindcommons" / "lora-base"


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
        from mindcommons.models.embedded import file_sha256

        root = disk_cache_dir()
        stored = root / file_sha256(gguf_path)[:32] if root is not None else None
        found = load_converted(stored) if stored is not None else None
        if found is not None:
            model, tokenizer = found
        else:
            folder, name = str(gguf_path.parent), gguf_path.name
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
            model = AutoModelForCausalLM.from_pretrained(
                folder, gguf_file=name, dtype=torch.float32
            )
            if stored is not None:
                store_converted(model, tokenizer, stored)
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


def load_converted(folder: Path) -> tuple[Any, Any] | None:
    """(model, tokenizer) from a folder ``store_converted`` completed; None otherwise."""
    if not (folder / _DONE).is_file():
        return None
    import torch
    from safetensors.torch import load_model
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    config = AutoConfig.from_pretrained(str(folder))
    auto: Any = AutoModelForCausalLM  # from_config is untyped
    model = auto.from_config(config, dtype=torch.float32)
    load_model(model, str(folder / _WEIGHTS))
    return model, tokenizer


def store_converted(model: Any, tokenizer: Any, folder: Path) -> bool:
    """Write the converted model and tokenizer to ``folder`` (whole or not at all).

    Best effort: a cache that cannot be written (read-only home, full disk) only costs
    the next process the conversion again, so the reason is printed, not raised.
    """
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
        try:
            # transformers will not save_pretrained a model read from a GGUF: weights
            # (tied embeddings kept shared), config and tokenizer are written here
            from safetensors.torch import save_model

            save_model(model, str(tmp / _WEIGHTS))
            config = model.config.to_dict()
            config.pop("quantization_config", None)
            (tmp / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
            tokenizer.save_pretrained(str(tmp))
            (tmp / _DONE).write_text("ok\n", encoding="utf-8")
            if not (folder / _DONE).is_file():  # else another process stored it first
                if folder.exists():  # an incomplete earlier attempt
                    shutil.rmtree(folder)
                tmp.rename(folder)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
    except (OSError, ValueError, RuntimeError) as err:
        print(f"[mindcommons] could not cache the converted base model in {folder}: {err} "
              f"(set {CACHE_ENV}=off to stop trying)", file=sys.stderr)  # fmt: skip
        return False
    return True
