"""XLingHealth (Jin et al. 2024, claws-lab/XLingEval): the same health questions in four
languages, each with one true and several negative answers.

Reads ``LiveQA.xlsx`` (or ``MedicationQA.xlsx``, same layout) from a local path; nothing
is downloaded. The workbook's first sheet has one row per (question, candidate answer):
``id`` (question), ``label`` (1 = the true answer, 0 = a negative, i.e. another
question's answer), ``answer_ids`` and ``question_<Language>`` / ``answer_<Language>``
for English, Spanish, Chinese and Hindi. Some cells carry HTML entities (``&apos;``);
they are unescaped. The xlsx is read with the standard library (a zip of XML), so no
spreadsheet package is needed.

Licence: Apache-2.0 (the XLingEval repository).
"""

from __future__ import annotations

import html
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

from mindcommons.errors import ConfigError, InputError

LANGUAGES: dict[str, str] = {"en": "English", "es": "Spanish", "zh": "Chinese", "hi": "Hindi"}
_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"


@dataclass(frozen=True)
class XLingItem:
    """One (question, candidate answer) in every language; ``correct`` is the gold label."""

    question_id: str
    answer_id: str
    correct: bool
    questions: dict[str, str]  # language code -> question text
    answers: dict[str, str]  # language code -> answer text
    row: int  # spreadsheet row (header = 1)

    @property
    def id(self) -> str:
        return f"q{self.question_id}-a{self.answer_id}"


def _column(ref: str) -> str:
    m = re.match(r"[A-Z]+", ref)
    return m.group(0) if m else ""


def _text(node: ElementTree.Element | None) -> str:
    if node is None:
        return ""
    return "".join(t.text or "" for t in node.iter(f"{_NS}t"))


def read_xlsx_rows(path: str | Path) -> list[list[str]]:
    """The first sheet of an .xlsx file as rows of cell strings (empty string = empty cell).

    Handles shared strings, inline strings and numbers (a whole number keeps no '.0').
    """
    where = str(path)
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as err:
        raise InputError(f"not a readable .xlsx file ({err})", file=where) from None
    with archive:
        names = set(archive.namelist())
        shared: list[str] = []
        if "xl/sharedStrings.xml" in names:
            root = ElementTree.fromstring(archive.read("xl/sharedStrings.xml"))
            shared = [_text(si) for si in root.findall(f"{_NS}si")]
        sheet = _first_sheet(archive, names, where)
        root = ElementTree.fromstring(archive.read(sheet))
    data = root.find(f"{_NS}sheetData")
    if data is None:
        raise InputError("the first sheet has no data", file=where, expected="a filled sheet")
    rows: list[list[str]] = []
    for row in data.findall(f"{_NS}row"):
        cells: dict[int, str] = {}
        for position, cell in enumerate(row.findall(f"{_NS}c")):
            kind = cell.get("t", "n")
            ref = cell.get("r")
            index = _column_index(_column(ref)) if ref else position
            if kind == "s":
                raw = cell.findtext(f"{_NS}v") or ""
                if not raw.isdigit() or int(raw) >= len(shared):
                    raise InputError(
                        f"cell points to shared string {raw!r}, which does not exist",
                        file=where,
                        record=len(rows) + 1,
                        field=ref or str(index),
                    )
                value = shared[int(raw)]
            elif kind == "inlineStr":
                value = _text(cell.find(f"{_NS}is"))
            else:
                value = cell.findtext(f"{_NS}v") or ""
                if kind == "n" and re.fullmatch(r"-?\d+\.0+", value):
                    value = value.split(".", 1)[0]
            cells[index] = value
        width = max(cells, default=-1) + 1
        rows.append([cells.get(i, "") for i in range(width)])
    return rows


def _column_index(letters: str) -> int:
    index = 0
    for ch in letters:
        index = index * 26 + (ord(ch) - ord("A") + 1)
    return index - 1


def _first_sheet(archive: zipfile.ZipFile, names: set[str], where: str) -> str:
    """Path of the workbook's first sheet (through the workbook relations when present)."""
    if "xl/workbook.xml" in names and "xl/_rels/workbook.xml.rels" in names:
        book = ElementTree.fromstring(archive.read("xl/workbook.xml"))
        sheets = book.find(f"{_NS}sheets")
        first = sheets[0] if sheets is not None and len(sheets) else None
        rel_id = first.get(f"{_REL_NS}id") if first is not None else None
        rels = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
        for rel in rels:
            if rel.get("Id") == rel_id:
                target = (rel.get("Target") or "").lstrip("/")
                target = target if target.startswith("xl/") else "xl/" + target
                if target in names:
                    return target
    candidates = sorted(n for n in names if re.fullmatch(r"xl/worksheets/sheet\d+\.xml", n))
    if not candidates:
        raise InputError("no worksheet in the file", file=where, expected="an .xlsx workbook")
    return candidates[0]


def _find(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        found = path / "LiveQA.xlsx"
        if not found.is_file():
            raise ConfigError(f"no LiveQA.xlsx in '{path}' (pass the workbook or its folder)")
        return found
    if not path.is_file():
        raise ConfigError(f"XLingHealth file '{path}' does not exist (expected LiveQA.xlsx)")
    return path


@dataclass(frozen=True)
class XLingHealth:
    """The readable items, and the rows left out because a language's text is empty.

    A row missing any language is left out in every language, so each language is
    scored on the same items (LiveQA has 10 rows, two questions, with no English
    question). ``skipped`` holds (row, field) for each row left out.
    """

    items: list[XLingItem]
    skipped: list[tuple[int, str]]


def load_xlinghealth(path: str | Path, *, strict: bool = False) -> XLingHealth:
    """Every (question, candidate answer) row of an XLingHealth workbook (or its folder).

    A row with an empty question or answer in some language is skipped (listed in
    ``skipped``), or an ``InputError`` with ``strict``. A bad label or identifier, or a
    missing column, is always an error.
    """
    source = _find(path)
    where = str(source)
    rows = read_xlsx_rows(source)
    if not rows:
        raise InputError("empty workbook", file=where, expected="a header row and data rows")
    header = [h.strip() for h in rows[0]]
    needed = ["id", "label", "answer_ids"]
    for name in LANGUAGES.values():
        needed += [f"question_{name}", f"answer_{name}"]
    missing = [n for n in needed if n not in header]
    if missing:
        raise InputError(
            "missing column",
            file=where,
            record=1,
            field=missing[0],
            expected="the XLingHealth columns " + ", ".join(needed),
        )
    col = {name: header.index(name) for name in needed}
    items: list[XLingItem] = []
    skipped: list[tuple[int, str]] = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue

        def cell(name: str, row: list[str] = row) -> str:
            i = col[name]
            return html.unescape(row[i]).strip() if i < len(row) else ""

        label = cell("label")
        if label not in ("0", "1"):
            raise InputError(
                f"bad label {label!r}", file=where, record=number, field="label", expected="0 or 1"
            )
        qid, aid = cell("id"), cell("answer_ids")
        if not qid or not aid:
            field = "id" if not qid else "answer_ids"
            raise InputError("empty identifier", file=where, record=number, field=field)
        questions: dict[str, str] = {}
        answers: dict[str, str] = {}
        empty = None
        for code, name in LANGUAGES.items():
            for kind, store in (("question", questions), ("answer", answers)):
                text = cell(f"{kind}_{name}")
                if not text and empty is None:
                    empty = f"{kind}_{name}"
                store[code] = text
        if empty is not None:
            if strict:
                raise InputError(
                    "empty text", file=where, record=number, field=empty, expected="a text"
                )
            skipped.append((number, empty))
            continue
        items.append(XLingItem(qid, aid, label == "1", questions, answers, number))
    if not items:
        raise InputError("no usable data rows", file=where, expected="rows under the header")
    return XLingHealth(items=items, skipped=skipped)
