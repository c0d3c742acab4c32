"""The import parsers on their own: line endings, quoting, chunk boundaries, blank lines."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from qistas.domain.imports import RowError, iter_csv, iter_json_array, iter_jsonl, iter_rows
from qistas.errors import Invalid


class Trickle(io.RawIOBase):
    """A stream that hands out at most ``size`` bytes per read, to move chunk boundaries."""

    def __init__(self, data: bytes, size: int) -> None:
        self._data = io.BytesIO(data)
        self._size = size

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:  # type: ignore[override]
        return self._data.read(self._size if n < 0 else min(n, self._size))


def rows(parser: Any, data: bytes, size: int = 1 << 16) -> list[tuple[int, Any]]:
    return list(parser(Trickle(data, size)))


def values(parsed: list[tuple[int, Any]]) -> list[Any]:
    return [value for _, value in parsed]


# --- JSON arrays ----------------------------------------------------------------------------

TRICKY = [
    {"data": {"text": "مرحبا 👋🏽 e\u0301", "n": 123456789, "f": -1.5e-7, "ok": True, "no": None}},
    {"data": {"text": "quote \" and backslash \\ and ] and , inside"}, "unique_id": "x"},
    {"data": {"text": "[nested]", "list": [1, [2, [3]], {"k": "}"}]}},
    {"data": {"text": ""}},
]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64, 1 << 16])
@pytest.mark.parametrize("indent", [None, 2])
def test_json_array_split_across_read_chunks(size: int, indent: int | None) -> None:
    data = json.dumps(TRICKY, ensure_ascii=False, indent=indent).encode()
    parsed = rows(iter_json_array, data, size)
    assert values(parsed) == TRICKY
    assert [n for n, _ in parsed] == [1, 2, 3, 4]


@pytest.mark.parametrize("size", [1, 2, 3])
def test_json_array_numbers_are_not_cut_at_a_chunk_boundary(size: int) -> None:
    assert values(rows(iter_json_array, b"[12345, 6.75e3, -0.5, true, null]", size)) == \
        [12345, 6750.0, -0.5, True, None]


def test_json_array_with_bom_and_surrounding_whitespace() -> None:
    assert values(rows(iter_json_array, b"\xef\xbb\xbf \r\n [ {\"a\": 1} ] \n", 3)) == [{"a": 1}]


@pytest.mark.parametrize(("data", "problem"), [
    (b"", "empty body"),
    (b"   ", "empty body"),
    (b'{"a": 1}', "expected a JSON array"),
    (b"[1, 2", "not closed"),
    (b"[1 2]", "expected ',' or ']'"),
    (b"[1,]", "not valid JSON"),
    (b"[1, {]", "not valid JSON"),
    (b"[1] [2]", "after the array"),
    (b"[1], 2", "after the array"),
])
def test_json_array_errors(data: bytes, problem: str) -> None:
    for size in (1, 1 << 16):
        with pytest.raises(Invalid) as raised:
            rows(iter_json_array, data, size)
        assert problem in raised.value.message


def test_empty_json_array() -> None:
    assert rows(iter_json_array, b"[ ]", 1) == []


# --- JSONL ----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 4, 1 << 16])
def test_jsonl_blank_lines_crlf_and_line_numbers(size: int) -> None:
    data = b'\n{"a": 1}\r\n\r\n   \n{"b": "\xd9\x85"}\n\n{"c": 3}'
    parsed = rows(iter_jsonl, data, size)
    assert parsed == [(2, {"a": 1}), (5, {"b": "م"}), (7, {"c": 3})]


def test_jsonl_bad_line_is_a_row_error_and_the_rest_is_still_read() -> None:
    parsed = rows(iter_jsonl, b'{"a": 1}\n{"a": \n{"a": 3}\n')
    assert parsed[0] == (1, {"a": 1}) and parsed[2] == (3, {"a": 3})
    number, error = parsed[1]
    assert number == 2 and isinstance(error, RowError) and "not valid JSON" in error.message


def test_jsonl_with_bom() -> None:
    assert values(rows(iter_jsonl, b'\xef\xbb\xbf{"a": 1}\n', 1)) == [{"a": 1}]


@pytest.mark.parametrize("size", [1, 2, 1 << 16])
def test_invalid_utf8_names_the_byte(size: int) -> None:
    with pytest.raises(Invalid) as raised:
        rows(iter_jsonl, b'{"a": "ok"}\n{"a": "\xff"}\n', size)
    assert raised.value.message == "the file is not valid UTF-8 (byte 19)"
    assert raised.value.details == {"field": "file"}


def test_truncated_utf8_at_the_end_is_invalid() -> None:
    with pytest.raises(Invalid):
        rows(iter_jsonl, '{"a": "م"}'.encode()[:-3], 1)


# --- CSV ------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 3, 1 << 16])
def test_csv_crlf_and_quoted_newlines(size: int) -> None:
    data = (
        'text,unique_id,gold,metadata\r\n'
        '"first line\r\nsecond line",a,positive,\r\n'
        '"with ""quotes"", commas\nand LF",b,"{""label"": ""x""}","{""k"": [1]}"\r\n'
        'مرحبا,,,\r\n'
    ).encode()
    parsed = rows(iter_csv, data, size)
    assert [n for n, _ in parsed] == [1, 2, 3]
    first, second, third = values(parsed)
    assert first == {"data": {"text": "first line\r\nsecond line"}, "unique_id": "a", "gold": "positive"}
    assert second == {"data": {"text": 'with "quotes", commas\nand LF'}, "unique_id": "b",
                      "gold": {"label": "x"}, "metadata": {"k": [1]}}
    assert third == {"data": {"text": "مرحبا"}}


def test_csv_short_rows_fill_with_empty_text_and_long_rows_are_errors() -> None:
    parsed = rows(iter_csv, b"a,b\n1\n1,2,3\n")
    assert parsed[0] == (1, {"data": {"a": "1", "b": ""}})
    assert isinstance(parsed[1][1], RowError) and "more cells" in parsed[1][1].message


def test_csv_without_trailing_newline_and_with_bom() -> None:
    assert values(rows(iter_csv, b"\xef\xbb\xbftext\nlast", 1)) == [{"data": {"text": "last"}}]


def test_csv_header_only_or_empty() -> None:
    assert rows(iter_csv, b"text\r\n") == []
    assert rows(iter_csv, b"") == []


def test_csv_empty_header_name_is_refused() -> None:
    with pytest.raises(Invalid) as raised:
        rows(iter_csv, b"text,,other\n1,2,3\n")
    assert raised.value.details == {"field": "file"}


def test_csv_cell_larger_than_the_csv_module_default() -> None:
    big = "x" * 300_000
    assert values(rows(iter_csv, f'text\n"{big}"\n'.encode())) == [{"data": {"text": big}}]


def test_iter_rows_refuses_unknown_formats() -> None:
    with pytest.raises(Invalid) as raised:
        iter_rows(io.BytesIO(b""), "xml")
    assert raised.value.details == {"field": "format"}
