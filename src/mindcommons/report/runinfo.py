"""What a report says about its run: identity, model, sites, timing and package versions."""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from importlib import metadata
from typing import Literal

from mindcommons.errors import ConfigError

Mode = Literal["federated", "local"]

_DISTRIBUTIONS = {
    "mindcommons": "mindcommons",
    "flwr": "flwr",
    "inspect_ai": "inspect-ai",
    "llama_cpp_python": "llama-cpp-python",
}


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a result depends on, plus Python and platform."""
    versions: dict[str, str] = {}
    for key, dist in _DISTRIBUTIONS.items():
        try:
            versions[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[key] = "not installed"
    versions["python"] = platform.python_version()
    versions["platform"] = platform.platform()
    return versions


@dataclass(frozen=True)
class RunInfo:
    """The run a report describes. Times are ISO 8601 strings chosen by the caller."""

    run_id: str
    task: str
    instrument: str
    mode: Mode
    model: dict[str, str]
    sites_requested: list[str]
    sites_missing: dict[str, str]  # site -> reason it has no results
    started: str
    finished: str
    wall_seconds: float
    limit_per_site: int | None = None
    seed: int = 0
    versions: dict[str, str] = field(default_factory=package_versions)

    def __post_init__(self) -> None:
        if self.mode not in ("federated", "local"):
            raise ConfigError(f"run mode '{self.mode}' is not valid: use 'federated' or 'local'")
