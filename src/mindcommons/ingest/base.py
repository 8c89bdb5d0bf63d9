"""Contracts shared by the ingest formats: locators, the format registry, error collection."""

from __future__ import annotations

import datetime as dt
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from mindcommons.errors import InputError
from mindcommons.records import Record
from mindcommons.registry import Registry

MAX_ERRORS = 20


@dataclass(frozen=True)
class Locator:
    """Where a record came from: a file and a line (CSV, JSONL) or a Bundle entry (FHIR)."""

    file: str
    line: int | None = None
    entry: int | None = None
    resource: str | None = None  # "Patient/abc"

    @property
    def record(self) -> str | int | None:
        """What ``InputError(record=...)`` expects: a line number or ``entry N (Type/id)``."""
        if self.line is not None:
            return self.line
        if self.entry is not None:
            return (
                f"entry {self.entry} ({self.resource})" if self.resource else f"entry {self.entry}"
            )
        return None

    def error(
        self, message: str, *, field: str | None = None, expected: str | None = None
    ) -> InputError:
        return InputError(
            message, file=self.file, record=self.record, field=field, expected=expected
        )


ParsedRecord = tuple[Locator, Record]


class FormatParser(Protocol):
    """One input format. Register an instance in ``FORMATS`` to add a format."""

    name: str
    suffixes: tuple[str, ...]  # file name endings handled, e.g. (".csv",)

    def parse(self, path: Path, issues: Issues) -> Iterator[ParsedRecord]:
        """Yield every record of ``path``; report per-record problems to ``issues`` and go on.

        Raise ``InputError`` for a problem that makes the rest of the file unreadable.
        """
        ...


FORMATS: Registry[FormatParser] = Registry("ingest format")


def format_for(path: Path) -> FormatParser | None:
    """The registered format whose suffix matches ``path`` (longest suffix wins)."""
    name = path.name.lower()
    best: tuple[int, FormatParser] | None = None
    for key in FORMATS:
        fmt = FORMATS.get(key)
        for suffix in fmt.suffixes:
            if name.endswith(suffix) and (best is None or len(suffix) > best[0]):
                best = (len(suffix), fmt)
    return best[1] if best else None


class BatchInputError(InputError):
    """Several input problems; the first line is the first problem, the rest list the others."""

    def __init__(self, errors: list[InputError], *, truncated: bool = False) -> None:
        self.errors = errors
        self.truncated = truncated
        first = errors[0]
        super().__init__(
            first.detail,
            file=first.file,
            record=first.record,
            field=first.field,
            expected=first.expected,
        )

    def _render(self) -> str:
        errors = getattr(self, "errors", None)
        if not errors:
            return super()._render()
        head = InputError._render(self)
        more = "at least " if self.truncated else ""
        lines = [head, f"{more}{len(errors)} problems in this batch; nothing was stored:"]
        lines += [f"  - {err}" for err in errors]
        if self.truncated:
            lines.append(f"  (stopped after {len(errors)} problems)")
        return "\n".join(lines)


class Issues:
    """Collects input problems; stops the batch after ``limit`` of them."""

    def __init__(self, limit: int = MAX_ERRORS) -> None:
        self.limit = limit
        self.errors: list[InputError] = []

    def add(self, err: InputError) -> None:
        if isinstance(err, BatchInputError):
            self.errors.extend(err.errors)
        else:
            self.errors.append(err)
        if len(self.errors) >= self.limit:
            raise BatchInputError(self.errors[: self.limit], truncated=True)

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_if_any(self) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise BatchInputError(self.errors)


def build(model: type[BaseModel], data: dict[str, Any], where: Locator) -> BaseModel:
    """Validate ``data`` into ``model``, turning the first pydantic error into an InputError."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise pydantic_error(exc, model, where) from None


def pydantic_error(exc: ValidationError, model: type[BaseModel], where: Locator) -> InputError:
    err = exc.errors()[0]
    loc = err.get("loc", ())
    field = loc_to_field(loc)
    top = str(loc[0]) if loc else None
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        known = ", ".join(model.model_fields)
        return where.error("unknown field", field=field, expected=f"one of: {known}")
    if kind == "missing":
        return where.error(
            "required value is missing", field=field, expected=expected_for(model, top)
        )
    message = str(err.get("msg", "invalid value"))
    if "input" in err and kind != "missing":
        message += f"; got {_short(err['input'])}"
    return where.error(message, field=field, expected=expected_for(model, top))


def loc_to_field(loc: tuple[int | str, ...]) -> str | None:
    if not loc:
        return None
    out = str(loc[0])
    for part in loc[1:]:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


_TYPE_HINTS: dict[Any, str] = {
    dt.date: "a date YYYY-MM-DD",
    dt.datetime: "a date-time YYYY-MM-DDTHH:MM:SS",
    float: "a number",
    int: "an integer",
    str: "text",
}


def expected_for(model: type[BaseModel], name: str | None) -> str | None:
    """A short human description of what field ``name`` of ``model`` accepts."""
    if name is None or name not in model.model_fields:
        return None
    ann = model.model_fields[name].annotation
    origin = typing.get_origin(ann)
    if origin is typing.Literal:
        return "one of: " + ", ".join(str(a) for a in typing.get_args(ann))
    if origin is list:
        (inner,) = typing.get_args(ann) or (str,)
        return f"a list of {_TYPE_HINTS.get(inner, 'values')}"
    args = [a for a in typing.get_args(ann) if a is not type(None)]
    if args:
        ann = args[0]
    hint = _TYPE_HINTS.get(ann)
    if hint == "text":
        return "non-empty text" if model.model_fields[name].is_required() else None
    return hint


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
