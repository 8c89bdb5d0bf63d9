"""JSON Lines input: one JSON object a line; every problem names the file and the line.

``read_jsonl(path)`` reads a file, ``parse_jsonl(lines, file=...)`` lines already decoded
(by a caller with its own decoding rules). Both yield ``(line number, object)``, skip blank
lines and raise ``InputError`` for a line that is not valid JSON or not a JSON object.
Lines are split on ``\\n`` only (``\\r\\n`` works too), so a U+2028 inside a string is not a
line break. ``need_text`` checks a required non-empty string field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from mindcommons.errors import InputError

ONE_OBJECT = "one JSON object per line"
_BOM = b"\xef\xbb\xbf"
_JSON_KIND = {list: "array", str: "string", int: "number", float: "number", bool: "true/false"}


def parse_jsonl(
    lines: Iterable[str],
    *,
    file: str,
    expected: str = ONE_OBJECT,
    on_error: Callable[[InputError], None] | None = None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line, counting from 1.

    A bad line raises ``InputError`` naming ``file`` and the line (with ``expected``); with
    ``on_error`` it is passed there instead and reading goes on with the next line.
    """
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            problem = InputError(
                f"not valid JSON: {err.msg} at column {err.colno}",
                file=file,
                record=number,
                expected=expected,
            )
        else:
            if isinstance(obj, dict):
                yield number, obj
                continue
            kind = "null" if obj is None else _JSON_KIND.get(type(obj), type(obj).__name__)
            problem = InputError(
                f"a JSON {kind}, not an object", file=file, record=number, expected=expected
            )
        if on_error is None:
            raise problem
        on_error(problem)


def read_jsonl(
    path: str | Path, *, expected: str = ONE_OBJECT, torn_tail: bool = False
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line of the UTF-8 file ``path``.

    The file is read at once (a missing or unreadable file raises ``InputError`` here, not
    on the first ``next``); a leading BOM is dropped. ``torn_tail``: a last line without its
    newline is left out unread, whatever it holds (an append-only file whose writer may have
    been killed mid-line: that line was never committed).
    """
    where = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise InputError(f"cannot read: {err.strerror}", file=where, expected=expected) from None
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    chunks = data.split(b"\n")
    if torn_tail:
        chunks.pop()  # empty when the file ends with a newline
    return parse_jsonl(_decoded(chunks, where), file=where, expected=expected)


def _decoded(chunks: list[bytes], where: str) -> Iterator[str]:
    for number, chunk in enumerate(chunks, start=1):
        try:
            yield chunk.decode("utf-8")
        except UnicodeDecodeError as err:
            raise InputError(
                f"not valid UTF-8 (byte {chunk[err.start : err.end].hex(' ')} at column "
                f"{err.start + 1})",
                file=where,
                record=number,
                expected="a UTF-8 file",
            ) from None


def need_text(
    obj: Mapping[str, Any],
    key: str,
    *,
    file: str,
    record: int,
    expected: str = "a non-empty string",
) -> str:
    """``obj[key]`` if it is a string that is not blank, else ``InputError`` naming ``key``."""
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InputError("missing or empty", file=file, record=record, field=key, expected=expected)
    return value
