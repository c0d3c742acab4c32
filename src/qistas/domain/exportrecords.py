"""Helpers every export format shares: records in chunks, JSON text, a record's provenance."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from qistas import jsontext
from qistas.domain.results import EXPORT_CHUNK

# Compact JSON text, non-ASCII as it is (see qistas/jsontext.py).
to_json = jsontext.dumps


def chunks(records: Iterable[dict[str, Any]], size: int = EXPORT_CHUNK) -> Iterator[list[dict[str, Any]]]:
    iterator = iter(records)
    while chunk := list(islice(iterator, size)):
        yield chunk


def provenance(record: dict[str, Any]) -> dict[str, Any]:
    """Which task a line of a typed export came from, and how its answer was decided; for a
    generated item (``metadata.provenance``, see domain/generation.py) also how it was made."""
    found = {"task_id": record["task_id"], "unique_id": record["unique_id"], **record["provenance"]}
    made = (record.get("metadata") or {}).get("provenance")
    if isinstance(made, dict):
        found["generation"] = made
    return found


def media_name(record: dict[str, Any], field: str) -> Any:
    """What a media field named when the task was imported (the customer's file name or URL,
    kept in ``metadata.media``), else the field's value as stored."""
    named = (record.get("metadata") or {}).get("media")
    if isinstance(named, dict) and isinstance(named.get(field), str):
        return named[field]
    return record["data"].get(field)
