"""Adapter artifacts: a llama.cpp GGUF LoRA adapter, the raw matrices and a card.

``<dir>/adapter.gguf`` is what llama.cpp loads (``general.type=adapter``,
``adapter.type=lora``, ``adapter.lora.alpha``; tensors ``blk.N.attn_q.weight.lora_a`` with
numpy shape (rank, in) and ``.lora_b`` (out, rank), i.e. GGUF dims reversed as llama.cpp
checks). llama.cpp stores the q and k weights of Llama models with their rows permuted
(``convert_hf_to_gguf.LlamaModel.permute``) while transformers un-permutes them on load, so
B of q and k gets the same row permutation here (A acts on the input side: unchanged).
``<dir>/weights.npz`` keeps the matrices in training orientation (to continue or average);
``<dir>/card.json`` says what the adapter is: base model hash, data size, steps, loss.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mindcommons.errors import ConfigError
from mindcommons.federation.training import Weights
from mindcommons.lora.layout import LoraSpec, ModelShape, adapter_layout, gguf_shape

ADAPTER_FILE = "adapter.gguf"
WEIGHTS_FILE = "weights.npz"
CARD_FILE = "card.json"
CARD_VERSION = 1


def permute_rows(b: NDArray[np.float32], n_head: int) -> NDArray[np.float32]:
    """llama.cpp's q/k permutation (rotary halves interleaved per head) applied to rows."""
    rows = b.shape[0]
    return np.ascontiguousarray(
        b.reshape(n_head, 2, rows // n_head // 2, *b.shape[1:]).swapaxes(1, 2).reshape(b.shape)
    )


def gguf_tensors(shape: ModelShape, spec: LoraSpec, weights: Weights) -> list[tuple[str, Any]]:
    """(GGUF tensor name, float32 array) for every matrix, q/k B rows permuted."""
    from mindcommons.lora.train import check_weights

    slots = adapter_layout(shape, spec)
    check_weights(slots, weights)
    out = []
    for slot, w in zip(slots, weights, strict=True):
        arr = np.ascontiguousarray(w, dtype=np.float32)
        if slot.part == "b" and slot.target in ("q", "k"):
            arr = permute_rows(arr, shape.n_head if slot.target == "q" else shape.n_head_kv)
        out.append((slot.gguf_name, arr))
    return out


def write_gguf_adapter(
    path: Path, shape: ModelShape, spec: LoraSpec, weights: Weights, name: str
) -> None:
    """Write the llama.cpp adapter file (atomically: a temporary file renamed into place)."""
    import gguf

    tensors = gguf_tensors(shape, spec, weights)
    fd, tmp = tempfile.mkstemp(prefix=".adapter-", suffix=".gguf", dir=path.parent)
    os.close(fd)
    try:
        writer = gguf.GGUFWriter(tmp, arch="llama")
        writer.add_string("general.type", "adapter")
        writer.add_string("general.name", name)
        writer.add_string("adapter.type", "lora")
        writer.add_float32("adapter.lora.alpha", float(spec.alpha))
        for tensor_name, arr in tensors:
            writer.add_tensor(tensor_name, arr)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_adapter(
    out_dir: Path,
    base_path: Path,
    spec: LoraSpec,
    weights: Weights,
    card: Mapping[str, Any],
) -> Path:
    """Write ``adapter.gguf``, ``weights.npz`` and ``card.json`` into ``out_dir``; return it.

    The card gets the base model's file name and SHA-256 and the LoRA settings added.
    """
    from mindcommons.models.embedded import file_sha256

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shape = gguf_shape(str(base_path))
    write_gguf_adapter(out_dir / ADAPTER_FILE, shape, spec, weights, name=out_dir.name)
    arrays = {f"w{i:04d}": np.asarray(w, dtype=np.float32) for i, w in enumerate(weights)}
    tmp = out_dir / ".weights.tmp.npz"
    np.savez(tmp, **arrays)  # type: ignore[arg-type]
    os.replace(tmp, out_dir / WEIGHTS_FILE)
    full = {
        "card_version": CARD_VERSION,
        "kind": "lora-adapter",
        "base_model": {"file": base_path.name, "sha256": file_sha256(base_path)},
        "lora": spec.to_json(),
        "adapter_sha256": file_sha256(out_dir / ADAPTER_FILE),
        **dict(card),
    }
    (out_dir / CARD_FILE).write_text(json.dumps(full, indent=2, sort_keys=True), "utf-8")
    return out_dir


@dataclass(frozen=True)
class Adapter:
    """An adapter read back from its folder."""

    path: Path
    spec: LoraSpec
    weights: Weights
    card: dict[str, Any]

    @property
    def gguf(self) -> Path:
        return self.path / ADAPTER_FILE


def read_adapter(path: Path | str) -> Adapter:
    """Read an adapter folder written by ``save_adapter`` (card, matrices, GGUF present)."""
    folder = Path(path)
    card_file = folder / CARD_FILE
    missing = [n for n in (CARD_FILE, WEIGHTS_FILE, ADAPTER_FILE) if not (folder / n).is_file()]
    if not folder.is_dir() or missing:
        raise ConfigError(
            f"'{folder}' is not a LoRA adapter folder (missing: {', '.join(missing) or 'folder'}); "
            "create one with `mindcommons lora train`"
        )
    try:
        card = json.loads(card_file.read_text("utf-8"))
    except json.JSONDecodeError as err:
        raise ConfigError(f"{card_file}: not valid JSON ({err})") from None
    if not isinstance(card, dict) or card.get("kind") != "lora-adapter":
        raise ConfigError(f"{card_file}: not a LoRA adapter card (expected kind lora-adapter)")
    spec = LoraSpec.from_params(card.get("lora") or {})
    with np.load(folder / WEIGHTS_FILE) as data:
        weights = [np.asarray(data[k], dtype=np.float32) for k in sorted(data.files)]
    return Adapter(path=folder, spec=spec, weights=weights, card=card)
