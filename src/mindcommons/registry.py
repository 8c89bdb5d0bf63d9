"""One small generic registry; each extension kind (task, model backend, ingest format,
job type, ...) owns one instance and built-ins register through the same door as plugins."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from mindcommons.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> object map with a decorator and a helpful lookup error."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            self.add(name, obj)
            return obj

        return decorator

    def add(self, name: str, obj: T) -> None:
        if name in self._items and self._items[name] is not obj:
            raise ConfigError(f"{self.kind} '{name}' is already registered")
        self._items[name] = obj

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise ConfigError(f"unknown {self.kind} '{name}'; known: {known}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))


def import_providers(modules: Iterable[str]) -> None:
    """Import the modules that register extensions into a registry (they register on import).

    Called at the end of the module that owns the registry, since providers import it.
    """
    for name in modules:
        importlib.import_module(name)
