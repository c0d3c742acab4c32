"""The few places where SQLite and PostgreSQL need different SQL."""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import URL, Dialect, Engine, LargeBinary, Text, cast, func, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session


def insert_skipping_conflicts(session: Session, table: Any, conflict_columns: list[str]) -> Any:
    """``INSERT ... ON CONFLICT (cols) DO NOTHING``: rows that collide are skipped, not errors."""
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing(index_elements=conflict_columns)


def insert_many_skipping_conflicts(
    session: Session, table: Any, rows: list[dict[str, Any]], conflict_columns: list[str]
) -> int:
    """Insert ``rows`` (dicts with the same keys), skipping those that collide; return how many went in.

    On PostgreSQL the rows travel as one JSON parameter unpacked by ``jsonb_to_recordset``:
    a multi-row VALUES statement has a placeholder per cell, and the driver's parsing of
    those placeholders cost more than the insert itself (a 100k-task import: 16 s vs 4 s).
    """
    if not rows:
        return 0
    dialect = session.get_bind().dialect
    if dialect.name != "postgresql":
        insert = insert_skipping_conflicts(session, table, conflict_columns)
        return len(session.execute(insert.returning(table.c.id), rows).all())
    names = list(rows[0])
    record = ", ".join(f'"{name}" {table.c[name].type.compile(dialect=dialect)}' for name in names)
    columns = ", ".join(f'"{name}"' for name in names)
    statement = text(
        f'INSERT INTO "{table.name}" ({columns}) SELECT {columns} '
        f"FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r({record}) "
        f"ON CONFLICT ({', '.join(conflict_columns)}) DO NOTHING RETURNING id"
    )
    return len(session.execute(statement, {"rows": json.dumps(rows, default=_naive_utc)}).all())


def prepared_insert(dialect: Dialect, table: Any, rows: list[dict[str, Any]]) -> Callable[[Session], None]:
    """An ``INSERT`` of ``rows`` (dicts with the same keys) whose values are encoded now, to be
    run later in a session: only the statement runs in the transaction.

    For many transactions in a row (an import written a chunk at a time), so that each holds
    the write lock for as little as it can: SQLAlchemy encodes JSON values and builds each row's
    parameters inside ``execute``, which was most of a chunk's time on SQLite. SQLite: one
    ``executemany`` of tuples encoded by each column's type; PostgreSQL: one JSON parameter
    unpacked by ``jsonb_to_recordset`` (as ``insert_many_skipping_conflicts``).
    """
    names = list(rows[0]) if rows else []
    columns = ", ".join(f'"{name}"' for name in names)
    if dialect.name == "postgresql":
        record = ", ".join(f'"{name}" {table.c[name].type.compile(dialect=dialect)}' for name in names)
        statement = (f'INSERT INTO "{table.name}" ({columns}) SELECT {columns} '
                     f"FROM jsonb_to_recordset(CAST(%(rows)s AS jsonb)) AS r({record})")
        params: Any = {"rows": json.dumps(rows, default=_naive_utc)}
    else:
        processors = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names]
        statement = f'INSERT INTO "{table.name}" ({columns}) VALUES ({", ".join("?" for _ in names)})'
        params = [tuple(value if process is None else process(value)
                        for value, process in zip((row[name] for name in names), processors, strict=True))
                  for row in rows]

    def run(session: Session) -> None:
        if rows:
            session.connection().exec_driver_sql(statement, params)

    return run


def _naive_utc(value: Any) -> str:
    # Timestamps are stored as naive UTC (see db/types.py).
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def locks_claimed_rows(session: Session) -> bool:
    """Whether claims lock the rows they pick, skipping rows another claim holds (PostgreSQL).

    SQLite needs no row locks: claims run in ``BEGIN IMMEDIATE`` transactions, one at a time.
    """
    return session.get_bind().dialect.name == "postgresql"


def claim_lock(session: Session, query: Any, *, of: Any = None) -> Any:
    """``query`` with the claim row lock where the database has one (see above).

    ``of``: the table whose rows are locked, when the query also reads others (a join, a
    grouped subquery that cannot be locked).
    """
    return query.with_for_update(skip_locked=True, of=of) if locks_claimed_rows(session) else query


def is_lock_timeout(exc: BaseException) -> bool:
    """A statement that waited on a lock for longer than ``lock_timeout`` (PostgreSQL)."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) == "55P03"


def is_statement_timeout(exc: BaseException) -> bool:
    """A statement canceled: it ran past ``statement_timeout`` (or was canceled by an operator)."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) == "57014"


def database_on_this_machine(url: URL, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether a PostgreSQL URL reaches a database on this machine, as libpq reads it: each of
    its hosts a Unix socket (no host at all, a folder, or an abstract ``@name``), ``localhost``
    or a loopback address. A ``hostaddr`` is what is dialed where one is given; with no host in
    the URL, ``PGHOSTADDR`` and ``PGHOST`` are. Names are not looked up: any other host name
    counts as another machine."""
    def given(key: str) -> str:
        value = url.query.get(key, "")
        return ",".join(value) if isinstance(value, tuple) else value

    hosts, addresses = url.host or given("host"), given("hostaddr")
    if not hosts and not addresses:
        hosts, addresses = environ.get("PGHOST", ""), environ.get("PGHOSTADDR", "")
    return all(_loopback(entry.strip()) for entry in (addresses or hosts).split(","))


def _loopback(host: str) -> bool:
    if host in ("", "localhost") or host.startswith(("/", "@")):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_disconnect(exc: BaseException) -> bool:
    """The PostgreSQL connection is gone (the server went away, shut down or dropped it),
    rather than the statement refused: no server error code, or a connection or shutdown one."""
    if getattr(exc, "connection_invalidated", False):
        return True
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return code is None or code.startswith("08") or code in ("57P01", "57P02", "57P03")


def is_retryable(exc: BaseException) -> bool:
    """A deadlock or serialization failure: the whole transaction may simply run again."""
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return code in ("40001", "40P01")


# Imports of at least this many rows refresh the planner's statistics at once.
ANALYZE_AFTER_ROWS = 1000


def refresh_statistics(engine: Engine, table_name: str, *, rows_added: int) -> None:
    """After a large import, let PostgreSQL's planner see the table as it now is.

    Autovacuum would analyze it within a minute or so; until then the claim query is planned
    for an empty table, and a lone annotator's take slows as their answered tasks grow. One
    sampled ANALYZE costs tens of milliseconds. SQLite plans from its indexes and needs none.
    """
    if engine.dialect.name != "postgresql" or rows_added < ANALYZE_AFTER_ROWS:
        return
    with engine.connect() as connection:
        connection.execute(text(f"ANALYZE {table_name}"))
        connection.commit()


def json_bytes(session: Session, column: Any) -> Any:
    """The size in bytes of a JSON column's stored text, as an SQL expression."""
    if session.get_bind().dialect.name == "postgresql":
        return func.octet_length(cast(column, Text))
    return func.length(cast(column, LargeBinary))  # SQLite: length() of a blob counts bytes
