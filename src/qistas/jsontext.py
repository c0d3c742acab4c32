"""JSON text for reads and writes of many values: exports, refits, raw reads of JSON columns.

An export of 100,000 tasks decodes about a million stored JSON values and encodes 100,000
lines; with the standard library that was most of its time. msgspec's decoder and encoder
(C, no intermediate objects) do the same work several times faster and give the same Python
values. Where msgspec refuses what ``json`` accepts (``NaN``, ``1e400``, a lone surrogate on
the way in; keys that are neither text nor integers on the way out), ``json`` decides, so no
value that reads or writes today stops doing so.

The text written is compact (``{"a":1}``, no spaces after separators) and keeps non-ASCII
characters as they are (Arabic stays Arabic); numbers are written in their shortest exact
form (``1e-7`` where ``json`` writes ``1e-07``): the same values for every JSON reader.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import msgspec

_decode = msgspec.json.decode
_encoder = msgspec.json.Encoder()
_standard = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    """The value of a JSON text (``json.loads``'s value)."""
    try:
        return _decode(text)
    except msgspec.DecodeError:
        return json.loads(text)


def encode(value: Any) -> bytes:
    """Compact UTF-8 JSON text of ``value``."""
    try:
        return _encoder.encode(value)
    except (TypeError, ValueError, OverflowError):
        return _standard.encode(value).encode()


def dumps(value: Any) -> str:
    """Compact JSON text of ``value``, as ``str``."""
    return encode(value).decode()


def lines(values: Iterable[Any]) -> bytes:
    """JSON Lines: each value's text and a newline."""
    return b"".join([encode(value) + b"\n" for value in values])
