"""Model backend ``lora/<adapter-dir>``: the embedded model with a trained LoRA adapter.

llama.cpp applies the adapter's GGUF (``adapter.gguf``) on top of the embedded SmolLM2
GGUF, so an adapted model is evaluated, audited and served like any other model
(``mindcommons audit --model lora/DIR``). The adapter's card must name the same base
model file hash as the installed embedded model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mindcommons.errors import ConfigError
from mindcommons.models import BACKENDS
from mindcommons.models.base import ModelBackend


@BACKENDS.register("lora")
def load_lora(model: str, **options: Any) -> ModelBackend:
    """``lora/<dir>``: base = ``model_path`` option or the embedded model; adapter from dir."""
    from mindcommons.lora.export import read_adapter
    from mindcommons.models.embedded import EmbeddedModel, embedded_model_path, file_sha256

    if not model:
        raise ConfigError("the lora backend needs an adapter folder: --model lora/<dir>")
    adapter = read_adapter(Path(model))
    base = Path(options.pop("model_path", None) or embedded_model_path())
    want = str((adapter.card.get("base_model") or {}).get("sha256", ""))
    if want and base.is_file() and file_sha256(base) != want:
        raise ConfigError(
            f"adapter '{adapter.path}' was trained on a different base model "
            f"(sha256 {want[:12]}..., this one is {file_sha256(base)[:12]}...)"
        )
    return EmbeddedModel(model_path=base, lora_path=adapter.gguf, **options)
