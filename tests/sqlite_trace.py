"""What SQLite itself ran, traced on the connections a call checks out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event

from qistas.db.engine import Database


def written_during(database: Database, call: Callable[[], Any]) -> list[str]:
    """The statements SQLite ran in write transactions (``BEGIN IMMEDIATE`` to its end) on the
    connections checked out while ``call`` runs, as SQLite itself traces them."""
    log: list[tuple[int, str]] = []
    traced: list[Any] = []

    def trace(dbapi_connection: Any, *_: Any) -> None:
        key = id(dbapi_connection)
        dbapi_connection.set_trace_callback(lambda sql: log.append((key, sql)))
        traced.append(dbapi_connection)

    event.listen(database.engine, "checkout", trace)
    try:
        call()
    finally:
        event.remove(database.engine, "checkout", trace)
        for connection in traced:
            connection.set_trace_callback(None)
    writing: dict[int, bool] = {}
    written = []
    for key, sql in log:
        head = sql.lstrip().upper()
        if head.startswith("BEGIN"):
            writing[key] = head.startswith("BEGIN IMMEDIATE")
        elif head.startswith(("COMMIT", "ROLLBACK")):
            writing[key] = False
        elif writing.get(key):
            written.append(sql)
    return written
