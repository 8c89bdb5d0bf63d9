"""Shared CSV reading for the public-data loaders: decoding, required columns, errors.

Public research CSVs are not always clean UTF-8 (CAMS mixes Windows-1252 bytes in); the
loaders must still read them and must name the file, row and field of anything they
cannot use.
"""

from __future__ import annotations

import codecs
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


def _cp1252_bytes(err: UnicodeError) -> tuple[str, int]:
    """Codec error handler: the bytes UTF-8 cannot read, read as Windows-1252."""
    if not isinstance(err, UnicodeDecodeError):
        raise err
    bad = err.object[err.start : err.end]
    return bytes(bad).decode("cp1252", errors="replace"), err.end


codecs.register_error("mindcommons-cp1252", _cp1252_bytes)


def decode(path: Path) -> str:
    """UTF-8 (with or without BOM); a byte that is not UTF-8 is read as Windows-1252.

    Byte by byte, not the whole file: CAMS mixes Windows-1252 bytes into UTF-8 text, and
    reading all of it as Windows-1252 turned every UTF-8 character into mojibake
    (``\u2019`` into ``\u00e2\u20ac\u2122``), so the same post no longer matched
    its copy in other files. Bytes undefined in Windows-1252 become U+FFFD.
    """
    return path.read_bytes().decode("utf-8-sig", errors="mindcommons-cp1252")


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
