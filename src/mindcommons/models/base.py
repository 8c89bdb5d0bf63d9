"""The one model interface every backend implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True)
class GenerateConfig:
    max_tokens: int = 256
    temperature: float = 0.0
    seed: int = 0
    stop: tuple[str, ...] = ()
    json_schema: dict[str, object] | None = None  # ask for JSON matching this schema


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    output_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class Generation:
    text: str
    usage: Usage
    model: str
    seconds: float
    finish_reason: str = "stop"
    metadata: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class ModelBackend(Protocol):
    """A chat model. ``generate`` is synchronous; temperature 0 must be deterministic."""

    @property
    def name(self) -> str: ...

    def generate(self, messages: list[Message], config: GenerateConfig) -> Generation: ...

    def describe(self) -> dict[str, str]:
        """Model identity and versions for reports (backend, model, file hash, library)."""
        ...

    def close(self) -> None: ...
