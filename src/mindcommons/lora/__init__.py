"""Federated LoRA fine-tuning of the embedded LLM (SmolLM2-135M GGUF) on CPU.

A site turns its own records into instruction examples in the ``phq9`` task's exact chat
format (``data``), trains a small-rank adapter on the q/v projections of the GGUF weights
dequantized into PyTorch (``convert``, ``train``), and exports it as a llama.cpp GGUF LoRA
adapter with a card (``export``). The ``lora`` trainer (``federated``) lets a coordinator
average adapters across sites; ``lora/<adapter-dir>`` (``backend``) loads base + adapter in
llama.cpp like any other model. torch and transformers are imported only when training.
"""

from __future__ import annotations

from mindcommons.lora.export import ADAPTER_FILE, CARD_FILE, WEIGHTS_FILE, read_adapter
from mindcommons.lora.layout import LoraSpec, adapter_layout

__all__ = [
    "ADAPTER_FILE",
    "CARD_FILE",
    "WEIGHTS_FILE",
    "LoraSpec",
    "adapter_layout",
    "read_adapter",
]
