"""Reject JSON values that a database cannot store faithfully.

PostgreSQL refuses U+0000 in text and JSONB (and NaN or infinities in JSONB), and no database
can encode a lone UTF-16 surrogate (which ``json.loads`` happily produces from ``"\\ud800"``).
Checking up front turns what would be a 500 mid-transaction into a 422 naming the field.
"""

from __future__ import annotations

import math
from typing import Any

from qistas.errors import Invalid

MAX_DEPTH = 64


def _bad_text(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired surrogate"
    return None


def check_storable(value: Any, field: str, _depth: int = 0) -> None:
    if _depth > MAX_DEPTH:
        raise Invalid(f"{field}: nested deeper than {MAX_DEPTH} levels", details={"field": field})
    if isinstance(value, str):
        problem = _bad_text(value)
        if problem:
            raise Invalid(f"{field}: {problem}", details={"field": field})
    elif isinstance(value, dict):
        for key, item in value.items():
            problem = _bad_text(key)
            if problem:
                raise Invalid(f"{field}: a key {problem}", details={"field": field})
            check_storable(item, f"{field}.{key}", _depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_storable(item, f"{field}.{i}", _depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        # json.loads accepts NaN and Infinity; PostgreSQL's JSONB refuses them, and SQLite's
        # JSON would store them as null.
        raise Invalid(f"{field}: NaN and infinities are not valid JSON", details={"field": field})
