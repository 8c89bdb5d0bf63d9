"""CSV input: one record type per file (named by the stem's plural), columns = field names."""

from __future__ import annotations

import csv
import io
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mindcommons.errors import InputError
from mindcommons.ingest.base import FORMATS, Issues, Locator, ParsedRecord, build, expected_for
from mindcommons.ingest.text import read_text
from mindcommons.records import RECORD_TYPES, Record

PLURALS = {f"{name}s": name for name in RECORD_TYPES}
LIST_SEPARATOR = ";"


def record_type_for(path: Path) -> str:
    """The record type a CSV file holds, from its stem (``site-a_documents.csv`` -> document)."""
    stem = path.stem.lower()
    for plural, name in PLURALS.items():
        if stem == plural or stem.endswith(("_" + plural, "-" + plural, "." + plural)):
            return name
    raise InputError(
        "cannot tell which records this CSV file holds from its name",
        file=str(path),
        expected="a file name ending with one of: " + ", ".join(f"{p}.csv" for p in PLURALS),
    )


def _is_list(model: type[BaseModel], name: str) -> bool:
    return typing.get_origin(model.model_fields[name].annotation) is list


def _locate_column(text: str, line: int) -> str | None:
    """The column whose cell on ``line`` holds an undecodable byte (U+FFFD after replacement)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, [])
    start = reader.line_num + 1
    for row in reader:
        if start <= line <= reader.line_num:
            for name, cell in zip(header, row, strict=False):
                if "\ufffd" in cell:
                    return name
            return None
        start = reader.line_num + 1
    return None


class CsvFormat:
    """Parser for ``*.csv`` files."""

    name = "csv"
    suffixes: tuple[str, ...] = (".csv",)

    def parse(self, path: Path, issues: Issues) -> Iterator[ParsedRecord]:
        kind = record_type_for(path)
        model = RECORD_TYPES[kind]
        text = read_text(path, _locate_column)
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = [h.strip() for h in (reader.fieldnames or [])]
        self._check_header(path, model, header)
        reader.fieldnames = header
        start = reader.line_num + 1
        for row in reader:
            where = Locator(file=str(path), line=start)
            start = reader.line_num + 1
            try:
                data = self._row_data(row, model, where)
                record = typing.cast(Record, build(model, data, where))
            except InputError as err:
                issues.add(err)
                continue
            yield where, record

    def _check_header(self, path: Path, model: type[BaseModel], header: list[str]) -> None:
        where = Locator(file=str(path), line=1)
        if not header:
            raise where.error(
                "the file is empty; the first line must name the columns",
                expected="columns: " + ", ".join(model.model_fields),
            )
        for col in header:
            if col not in model.model_fields:
                raise where.error(
                    f"unknown column '{col}'",
                    field=col,
                    expected="columns among: " + ", ".join(model.model_fields),
                )
        for name, info in model.model_fields.items():
            if info.is_required() and name not in header:
                raise where.error(
                    f"required column '{name}' is missing",
                    field=name,
                    expected="a header with: "
                    + ", ".join(n for n, i in model.model_fields.items() if i.is_required()),
                )

    def _row_data(
        self, row: dict[str | Any, str | Any], model: type[BaseModel], where: Locator
    ) -> dict[str, Any]:
        if None in row:
            raise where.error(
                f"the row has {len(row[None])} more cell(s) than the header has columns",
                expected=f"{len(row) - 1} cells",
            )
        data: dict[str, Any] = {}
        for name, raw in row.items():
            value = (raw or "").strip()
            info = model.model_fields[name]
            if not value:
                if info.is_required() and not _is_list(model, name):
                    raise where.error(
                        "required value is empty",
                        field=name,
                        expected=expected_for(model, name) or "a value",
                    )
                if not _is_list(model, name):
                    continue
            if _is_list(model, name):
                data[name] = [v.strip() for v in value.split(LIST_SEPARATOR)] if value else []
            else:
                data[name] = value
        return data


FORMATS.add("csv", CsvFormat())
