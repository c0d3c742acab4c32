"""Columns as the driver hands them over, for reads of every row of a project.

An export or a refit reads millions of values once. SQLAlchemy's result processing (a
Python call per JSON and timestamp cell, and the ORM's row machinery on ``Session.execute``)
cost more than the database itself there, so these reads select columns with their type
processing turned off and convert the raw values with the cheapest call each dialect allows:

- JSON: SQLite hands over the stored text (decoded here with ``json.loads``); psycopg has
  already decoded ``jsonb``.
- Timestamps (naive UTC, see ``db/types.py``): SQLite hands over ``YYYY-MM-DD HH:MM:SS.ffffff``
  text, psycopg a naive ``datetime``. ``iso`` turns either into exactly what
  ``datetime.isoformat()`` gives for the aware UTC value the ORM would have returned.
"""

from __future__ import annotations

import json
import json.scanner
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, type_coerce
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType


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
    return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).isoformat()


# The C scanner behind ``json.loads``: one call per value, no wrappers.
_scan: Callable[[Any, int], tuple[Any, int]] = json.scanner.make_scanner(cast(Any, json.JSONDecoder()))


def _json_text(value: str | bytes | None) -> Any:
    if value is None:
        return None
    try:
        found, end = _scan(value, 0)
    except (StopIteration, TypeError):  # leading white space, bytes: json.loads decides
        return json.loads(value)
    return found if end == len(value) else json.loads(value)


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
