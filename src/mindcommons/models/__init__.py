"""Model backends behind one protocol: load_model("embedded") or load_model("openai/NAME")."""

from __future__ import annotations

from typing import Any, Protocol

from mindcommons.errors import ConfigError
from mindcommons.models.base import GenerateConfig, Generation, Message, ModelBackend, Usage
from mindcommons.models.embedded import embedded_model_path
from mindcommons.registry import Registry, import_providers

__all__ = [
    "BACKENDS",
    "BackendFactory",
    "GenerateConfig",
    "Generation",
    "Message",
    "ModelBackend",
    "Usage",
    "embedded_model_path",
    "load_model",
]


class BackendFactory(Protocol):
    """Builds a backend from the part of the spec after ``/`` (empty if none) and options."""

    def __call__(self, model: str, **options: Any) -> ModelBackend: ...


BACKENDS: Registry[BackendFactory] = Registry("model backend")


@BACKENDS.register("embedded")
def _embedded(model: str, **options: Any) -> ModelBackend:
    from mindcommons.models.embedded import EmbeddedModel

    if model and "model_path" not in options:
        options["model_path"] = model  # "embedded/<path-to.gguf>"
    return EmbeddedModel(**options)


@BACKENDS.register("openai")
def _openai(model: str, **options: Any) -> ModelBackend:
    from mindcommons.models.openai_compat import OpenAICompatModel

    return OpenAICompatModel(model, **options)


def load_model(spec: str = "embedded", **options: Any) -> ModelBackend:
    """A model backend from a spec: ``embedded`` or ``openai/<model-name>``.

    Options go to the backend: ``n_ctx``, ``n_threads``, ``seed``, ``model_path`` for
    ``embedded``; ``base_url``, ``api_key``, ``timeout``, ``retries`` for ``openai``.
    """
    kind, _, model = spec.strip().partition("/")
    if not kind:
        raise ConfigError(f"empty model spec; known backends: {', '.join(BACKENDS.names())}")
    factory = BACKENDS.get(kind)
    try:
        return factory(model, **options)
    except TypeError as err:
        if "unexpected keyword argument" not in str(err):
            raise
        raise ConfigError(f"bad option for model backend '{kind}': {err}") from err


# Backends defined in other modules register themselves in BACKENDS on import (the
# imports stay at the end: they import BACKENDS from here).
BACKEND_PROVIDERS = ("mindcommons.models.replay", "mindcommons.lora.backend")


import_providers(BACKEND_PROVIDERS)
