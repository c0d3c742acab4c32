"""Columns as the driver hands them over, for reads of every row of a project.

An export or a refit reads millions of values once. SQLAlchemy's result processing (a
Python call per JSON and timestamp cell, and the ORM's row machinery on ``Session.execute``)
cost more than the database itself there, so these reads select columns with their type
processing turned off and convert the raw values with the cheapest call each dialect allows:

- JSON: SQLite hands over the stored text (decoded here with ``jsontext.loads``); psycopg has
  already decoded ``jsonb``.
- Timestamps (naive UTC, see ``db/types.py``): SQLite hands over ``YYYY-MM-DD HH:MM:SS.ffffff``
  text, psycopg a naive ``datetime``. ``iso`` turns either into exactly what
  ``datetime.isoformat()`` gives for the aware UTC value the ORM would have returned.
  ``micros`` reads a column of them as numbers (microseconds since the epoch) for arithmetic
  on every row at once: SQLite's text parsed by numpy, PostgreSQL's made by the database
  (``instant``), with no ``datetime`` per value (numpy converts those at a microsecond each).
- JSON read as text on both (``CAST(... AS TEXT)``) where most values repeat (the answers of a
  classification project): ``DecodedTexts`` decodes each distinct text once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import BigInteger, ColumnElement, cast, extract, type_coerce
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType

from qistas import jsontext


def raw(column: Any) -> ColumnElement[Any]:
    """``column`` without result processing, under its own name."""
    return type_coerce(column, NullType()).label(column.key)


def _iso_text(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) == 26 and value[10] == " " and value[19] == ".":  # how SQLAlchemy stores them
        micros = value[20:]
        return f"{value[:10]}T{value[11:19]}{'' if micros == '000000' else '.' + micros}+00:00"
    return datetime.fromisoformat(value).replace(tzinfo=UTC).isoformat()


def _iso_datetime(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # naive UTC: the aware value's text, without building it (a third of the cost)
        return value.isoformat() + "+00:00"
    return value.isoformat()


def _json_text(value: str | bytes | None) -> Any:
    return None if value is None else jsontext.loads(value)


def _as_is(value: Any) -> Any:
    return value


class RawValues:
    """The converters for raw values of the session's database: ``json`` and ``iso``."""

    json: Callable[[Any], Any]
    iso: Callable[[Any], str | None]

    def __init__(self, session: Session) -> None:
        self.text_values = session.get_bind().dialect.name == "sqlite"
        self.json = _json_text if self.text_values else _as_is
        self.iso = _iso_text if self.text_values else _iso_datetime

    def instant(self, column: Any, name: str) -> ColumnElement[Any]:
        """A timestamp column (never NULL) selected for ``micros``, as ``name``."""
        if self.text_values:
            return type_coerce(column, NullType()).label(name)
        return cast(extract("epoch", column) * 1_000_000, BigInteger).label(name)

    def micros(self, values: Sequence[Any]) -> np.ndarray:
        """The values of an ``instant`` column: microseconds since the epoch, int64."""
        if self.text_values:
            return np.array(values, dtype="datetime64[us]").astype(np.int64)
        return np.array(values, dtype=np.int64)


class DecodedTexts(dict[str | None, Any]):
    """JSON texts (None for SQL NULL) decoded on first use, once per distinct text; the values
    are shared between the texts' occurrences, so callers must not change them."""

    def __missing__(self, text: str | None) -> Any:
        value = self[text] = None if text is None else jsontext.loads(text)
        return value
