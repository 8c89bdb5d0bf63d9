"""mindcommons: pool mental-health language data without moving it."""

from mindcommons.errors import (
    ConfigError,
    InputError,
    MindcommonsError,
    PolicyError,
    PrerequisiteError,
)

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "InputError",
    "MindcommonsError",
    "PolicyError",
    "PrerequisiteError",
    "__version__",
]
