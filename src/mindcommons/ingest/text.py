"""Reading input files as UTF-8 text, with the line and byte of any decoding failure."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mindcommons.errors import InputError

_BOM = b"\xef\xbb\xbf"


FieldLocator = Callable[[str, int], str | None]


def read_text(path: Path, locate_field: FieldLocator | None = None) -> str:
    """The file's text (a UTF-8 BOM is dropped); InputError names line and byte otherwise.

    ``locate_field(text_with_replacements, line)`` may name the field holding the bad bytes.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror}", file=str(path)) from None
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise decode_error(path, data, exc, locate_field) from None


def decode_error(
    path: Path, data: bytes, exc: UnicodeDecodeError, locate_field: FieldLocator | None = None
) -> InputError:
    start = exc.start
    line = data.count(b"\n", 0, start) + 1
    line_start = data.rfind(b"\n", 0, start) + 1
    column = start - line_start + 1
    bad = data[start : max(exc.end, start + 1)].hex(" ")
    field = None
    if locate_field is not None:
        try:
            field = locate_field(data.decode("utf-8", errors="replace"), line)
        except Exception:  # best effort only: the line and byte are already precise
            field = None
    return InputError(
        f"file is not valid UTF-8: byte(s) {bad} at byte {start} (column {column} of the line) "
        "cannot be decoded; re-save the file as UTF-8",
        file=str(path),
        record=line,
        field=field,
        expected="UTF-8 text",
    )
