"""The shared JSON Lines reader: line numbers, blank lines, errors naming file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mindcommons.errors import InputError
from mindcommons.jsonl import need_text, parse_jsonl, read_jsonl


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "rows.jsonl"
    path.write_bytes(data)
    return path


def test_yields_line_numbers_and_skips_blank_lines(tmp_path: Path) -> None:
    path = _write(tmp_path, b'{"a": 1}\n\n   \n{"a": 2}\r\n{"a": "\xc3\xa9"}\n')
    assert list(read_jsonl(path)) == [(1, {"a": 1}), (4, {"a": 2}), (5, {"a": "é"})]


def test_bom_is_dropped_and_u2028_in_a_string_is_not_a_line_break(tmp_path: Path) -> None:
    line = json.dumps({"text": "one\u2028two\x85three"}, ensure_ascii=False)
    path = _write(tmp_path, b"\xef\xbb\xbf" + line.encode("utf-8") + b"\n{}\n")
    assert list(read_jsonl(path)) == [(1, {"text": "one\u2028two\x85three"}), (2, {})]


@pytest.mark.parametrize(
    ("data", "line", "problem"),
    [
        (b'{"a": 1}\n{"a": \n', 2, "not valid JSON: Expecting value at column 7"),
        (b'{"a": 1}\n\n[1, 2]\n', 3, "a JSON array, not an object"),
        (b'"text"\n', 1, "a JSON string, not an object"),
        (b"null\n", 1, "a JSON null, not an object"),
        (b"3.5\n", 1, "a JSON number, not an object"),
        (b'{"a": 1}\n{"a": "\xff"}\n', 2, "not valid UTF-8 (byte ff at column 8)"),
    ],
)
def test_a_bad_line_names_file_line_and_problem(
    tmp_path: Path, data: bytes, line: int, problem: str
) -> None:
    path = _write(tmp_path, data)
    with pytest.raises(InputError) as info:
        list(read_jsonl(path, expected="rows of the test"))
    err = info.value
    assert (err.file, err.record, err.field) == (str(path), line, None)
    assert str(err).startswith(f"{path}, line {line}: {problem}")
    if "UTF-8" not in problem:
        assert str(err).endswith("(expected rows of the test)")


def test_good_lines_before_a_bad_one_are_yielded_first(tmp_path: Path) -> None:
    rows = read_jsonl(_write(tmp_path, b'{"a": 1}\nnope\n'))
    assert next(rows) == (1, {"a": 1})
    with pytest.raises(InputError, match="line 2"):
        next(rows)


def test_a_missing_file_fails_at_the_call(tmp_path: Path) -> None:
    path = tmp_path / "absent.jsonl"
    with pytest.raises(InputError, match=r"absent\.jsonl: cannot read"):
        read_jsonl(path)  # not only once iterated


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        (b"", [1, 2]),  # ends with a newline: nothing torn
        (b'{"kind": "sample", "val', [1, 2]),  # torn mid-line
        (b'{"complete": "but no newline"}', [1, 2]),  # not committed either
        (b"[1]", [1, 2]),  # not an object, but never read
        (b'{"a": "\xe2\x80', [1, 2]),  # torn inside a UTF-8 character
    ],
)
def test_torn_tail_leaves_out_an_unterminated_last_line(
    tmp_path: Path, tail: bytes, expected: list[int]
) -> None:
    path = _write(tmp_path, b'{"n": 1}\n{"n": 2}\n' + tail)
    assert [n for n, _ in read_jsonl(path, torn_tail=True)] == expected
    if tail:  # without the option the same last line is read
        rows = read_jsonl(path)
        if tail.startswith(b'{"complete"'):
            assert [n for n, _ in rows] == [1, 2, 3]
        else:
            with pytest.raises(InputError, match="line 3"):
                list(rows)


def test_torn_tail_still_raises_for_a_bad_committed_line(tmp_path: Path) -> None:
    path = _write(tmp_path, b'{"n": 1}\nnot json\n{"n": 3}')
    with pytest.raises(InputError, match="line 2: not valid JSON"):
        list(read_jsonl(path, torn_tail=True))


def test_parse_jsonl_collects_errors_with_on_error() -> None:
    errors: list[InputError] = []
    lines = ['{"a": 1}', "{broken", "", "[]", '{"a": 5}']
    rows = list(parse_jsonl(lines, file="x.jsonl", on_error=errors.append))
    assert rows == [(1, {"a": 1}), (5, {"a": 5})]
    assert [(e.file, e.record) for e in errors] == [("x.jsonl", 2), ("x.jsonl", 4)]
    with pytest.raises(InputError, match=r"x\.jsonl, line 2: not valid JSON"):
        list(parse_jsonl(lines, file="x.jsonl"))


@pytest.mark.parametrize("value", [None, "", "   ", 3, ["x"]])
def test_need_text_names_the_field(value: object) -> None:
    obj = {"id": value} if value is not None else {}
    with pytest.raises(InputError) as info:
        need_text(obj, "id", file="f.jsonl", record=7, expected="an id")
    assert str(info.value) == "f.jsonl, line 7, field 'id': missing or empty (expected an id)"


def test_need_text_returns_the_value_unchanged() -> None:
    assert need_text({"id": " a "}, "id", file="f.jsonl", record=1) == " a "
