"""The exception tree every user-facing failure goes through.

MindcommonsError            base; the CLI prints ``str(err)`` without a traceback
├── InputError              bad input data: names file, record (line) and field
├── ConfigError             bad settings or arguments; says which and what to do
├── PrerequisiteError       something is not installed or not running; says how to fix
└── PolicyError             a site refused: the job, purpose or release is not allowed
"""

from __future__ import annotations


class MindcommonsError(Exception):
    """Base of every error mindcommons raises on purpose."""

    exit_code = 1


class InputError(MindcommonsError):
    """Input data is invalid. Always says where (file, record, field) and what is expected."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        record: str | int | None = None,
        field: str | None = None,
        expected: str | None = None,
    ) -> None:
        self.file = file
        self.record = record
        self.field = field
        self.expected = expected
        self.detail = message
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.file is not None:
            where.append(str(self.file))
        if self.record is not None:
            rec = self.record
            where.append(f"line {rec}" if isinstance(rec, int) else f"record {rec}")
        if self.field is not None:
            where.append(f"field '{self.field}'")
        prefix = ": ".join([", ".join(where)]) if where else ""
        text = f"{prefix}: {self.detail}" if prefix else self.detail
        if self.expected:
            text += f" (expected {self.expected})"
        return text


class ConfigError(MindcommonsError):
    """Settings or command-line arguments are wrong."""

    exit_code = 3


class PrerequisiteError(MindcommonsError):
    """A dependency, model file or service is missing; the message says how to get it."""

    exit_code = 4


class PolicyError(MindcommonsError):
    """A site's policy refused the request; the message carries the site's reason."""

    exit_code = 5
