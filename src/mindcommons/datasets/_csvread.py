"""Shared CSV reading for the public-data loaders: decoding, required columns, errors.

Public research CSVs are not always clean UTF-8 (CAMS mixes Windows-1252 bytes in); the
loaders must still read them and must name the file, row and field of anything they
cannot use.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from pathlib import Path

from mindcommons.errors import InputError


def resolve(path: str | Path, default_name: str) -> Path:
    """``path`` itself if it is a file, else ``path/default_name``; must exist."""
    p = Path(path)
    if p.is_dir():
        p = p / default_name
    if not p.is_file():
        raise InputError(
            "file not found",
            file=str(p),
            expected=f"the dataset folder or the file {default_name}",
        )
    return p


def decode(path: Path) -> str:
    """UTF-8 (with or without BOM); falls back to Windows-1252 with replacement."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def read_rows(path: Path, required: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line_number, row)`` for each data row; checks the header first."""
    text = decode(path)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(
            f"missing column(s) {', '.join(missing)}",
            file=str(path),
            record=1,
            field=missing[0],
            expected=f"a header with {', '.join(required)}",
        )
    for row in reader:
        if None in row:
            raise InputError(
                "row has more fields than the header",
                file=str(path),
                record=reader.line_num,
                expected=f"{len(header)} fields",
            )
        yield reader.line_num, {k: (v if v is not None else "") for k, v in row.items()}


def int_field(path: Path, line: int, row: dict[str, str], name: str, allowed: Sequence[int]) -> int:
    """Parse an integer field that must be one of ``allowed``."""
    value = row.get(name, "").strip()
    try:
        number = int(float(value)) if value else None
    except ValueError:
        number = None
    if number is None or number not in allowed:
        raise InputError(
            f"bad value {value!r}",
            file=str(path),
            record=line,
            field=name,
            expected="one of " + ", ".join(str(a) for a in allowed),
        )
    return number


def text_field(path: Path, line: int, row: dict[str, str], name: str) -> str:
    """A non-empty text field."""
    value = row.get(name, "")
    if not value.strip():
        raise InputError("empty text", file=str(path), record=line, field=name, expected="text")
    return value
