"""Which matrices an adapter holds, their shapes and names (torch side and GGUF side).

The order of ``adapter_layout`` is the order of the weight list a federated round sends:
for each layer, for each target, A (rank x in) then B (out x rank). This is the same
orientation llama.cpp expects of ``<tensor>.lora_a`` / ``.lora_b`` (GGUF dims reversed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mindcommons.errors import ConfigError

# target -> (module name in transformers' LlamaAttention, tensor name in llama.cpp)
TARGETS: dict[str, tuple[str, str]] = {
    "q": ("q_proj", "attn_q"),
    "k": ("k_proj", "attn_k"),
    "v": ("v_proj", "attn_v"),
    "o": ("o_proj", "attn_output"),
}


@dataclass(frozen=True)
class LoraSpec:
    """Rank, alpha (llama.cpp scales by alpha / rank) and which projections get adapters.

    ``layers``: adapt only the last N transformer blocks (0 = all). Backpropagation then
    stops at the lowest adapted block, which makes a CPU step up to ~2x cheaper.
    """

    rank: int = 4
    alpha: float = 8.0
    targets: tuple[str, ...] = ("q", "v")
    layers: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.rank <= 64:
            raise ConfigError(f"LoRA rank {self.rank} is out of range (expected 1..64)")
        if self.layers < 0:
            raise ConfigError(f"LoRA layers={self.layers} must be 0 (all) or a positive count")
        if self.alpha <= 0:
            raise ConfigError(f"LoRA alpha {self.alpha} must be positive")
        unknown = [t for t in self.targets if t not in TARGETS]
        if unknown or not self.targets or len(set(self.targets)) != len(self.targets):
            raise ConfigError(
                f"LoRA targets {list(self.targets)} are not valid "
                f"(expected distinct names from {', '.join(TARGETS)})"
            )

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    def to_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "alpha": self.alpha,
            "targets": list(self.targets),
            "layers": self.layers,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> LoraSpec:
        """From job params / a card: ``rank``, ``alpha``, ``targets`` (list or "q,v"), layers."""
        targets = params.get("targets", ("q", "v"))
        if isinstance(targets, str):
            targets = [t.strip() for t in targets.split(",") if t.strip()]
        try:
            return cls(
                rank=int(params.get("rank", 4)),
                alpha=float(params.get("alpha", 8.0)),
                targets=tuple(str(t) for t in targets),
                layers=int(params.get("layers", 0) or 0),
            )
        except (TypeError, ValueError) as err:
            raise ConfigError(f"LoRA settings are not valid: {err}") from None


@dataclass(frozen=True)
class ModelShape:
    """The few architecture numbers the layout needs (from GGUF metadata or a HF config)."""

    n_layers: int
    hidden: int
    n_head: int
    n_head_kv: int
    head_dim: int

    def dims(self, target: str) -> tuple[int, int]:
        """(in, out) of a target projection."""
        q_out, kv_out = self.n_head * self.head_dim, self.n_head_kv * self.head_dim
        return {
            "q": (self.hidden, q_out),
            "k": (self.hidden, kv_out),
            "v": (self.hidden, kv_out),
            "o": (q_out, self.hidden),
        }[target]


@dataclass(frozen=True)
class Slot:
    """One matrix of an adapter."""

    layer: int
    target: str
    part: str  # "a" | "b"
    shape: tuple[int, int]

    @property
    def gguf_name(self) -> str:
        return f"blk.{self.layer}.{TARGETS[self.target][1]}.weight.lora_{self.part}"


def adapter_layout(shape: ModelShape, spec: LoraSpec) -> list[Slot]:
    """Every matrix of an adapter for ``shape``, in weight-list order."""
    if spec.layers > shape.n_layers:
        raise ConfigError(f"LoRA layers={spec.layers} exceeds the model's {shape.n_layers} blocks")
    first = shape.n_layers - spec.layers if spec.layers else 0
    slots = []
    for layer in range(first, shape.n_layers):
        for target in spec.targets:
            d_in, d_out = shape.dims(target)
            slots.append(Slot(layer, target, "a", (spec.rank, d_in)))
            slots.append(Slot(layer, target, "b", (d_out, spec.rank)))
    return slots


def gguf_shape(path: str) -> ModelShape:
    """Architecture numbers read from a llama GGUF's metadata (no tensor is loaded)."""
    import gguf

    reader = gguf.GGUFReader(path)

    def value(key: str) -> int:
        field = reader.fields.get(key)
        if field is None:
            raise ConfigError(f"{path} has no '{key}' (expected a llama-architecture GGUF)")
        return int(field.contents())

    hidden = value("llama.embedding_length")
    n_head = value("llama.attention.head_count")
    return ModelShape(
        n_layers=value("llama.block_count"),
        hidden=hidden,
        n_head=n_head,
        n_head_kv=value("llama.attention.head_count_kv"),
        head_dim=hidden // n_head,
    )
