"""JSONL input: one JSON object per line with ``"type"`` and the record's fields."""

from __future__ import annotations

import json
import typing
from collections.abc import Iterator
from pathlib import Path

from mindcommons.errors import InputError
from mindcommons.ingest.base import FORMATS, Issues, Locator, ParsedRecord, build
from mindcommons.ingest.text import read_text
from mindcommons.jsonl import parse_jsonl
from mindcommons.records import RECORD_TYPES, Record

_TYPES = ", ".join(RECORD_TYPES)


def _locate_key(text: str, line: int) -> str | None:
    """The key whose value on ``line`` holds an undecodable byte (U+FFFD after replacement)."""
    obj = json.loads(text.split("\n")[line - 1])
    if isinstance(obj, dict):
        for key, value in obj.items():
            if "\ufffd" in json.dumps(value, ensure_ascii=False) or "\ufffd" in key:
                return str(key)
    return None


class JsonlFormat:
    """Parser for ``*.jsonl`` files."""

    name = "jsonl"
    suffixes: tuple[str, ...] = (".jsonl", ".ndjson")

    def parse(self, path: Path, issues: Issues) -> Iterator[ParsedRecord]:
        text = read_text(path, _locate_key)
        for number, obj in parse_jsonl(text.split("\n"), file=str(path), on_error=issues.add):
            where = Locator(file=str(path), line=number)
            kind = obj.pop("type", None)
            if kind not in RECORD_TYPES:
                what = "is missing" if kind is None else f"'{kind}' is not a record type"
                issues.add(where.error(f"record type {what}", field="type", expected=_TYPES))
                continue
            try:
                record = typing.cast(Record, build(RECORD_TYPES[kind], obj, where))
            except InputError as err:
                issues.add(err)
                continue
            yield where, record


FORMATS.add("jsonl", JsonlFormat())
