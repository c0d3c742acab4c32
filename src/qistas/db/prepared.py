"""Statements compiled once per dialect and run on the driver's own cursor.

The annotation loop runs about twenty short statements per annotation, and SQLAlchemy's
execution path (``Session.execute``: ORM compile state, execution context, parameter
construction, result wrapping) costs 20-30 µs of CPU for each of them, against 1-2 µs for
SQLite to run one. ``Prepared`` keeps what that path does once per statement and dialect —
the SQL string (with the statement's fixed values written into it), the order of its
parameters, each column's type conversions, and the driver connection of the session's
transaction — and at run time only converts the values that need it and calls the driver.

What it gives up, and why that is fine for the statements that use it:

- No ORM session state: rows come back as the ``NamedTuple`` given (its fields must match
  the selected or returned columns, checked when the statement is built), or as detached
  objects (``select_entity``), complete but in no session.
- No Python-side column defaults: an INSERT binds exactly the columns it names (``insert_of``
  refuses to leave out a column that has one), as the loop always sets every value anyway.
- No autoflush: changes made to objects of the session and not yet flushed are not seen by
  a prepared statement (the loop writes through prepared statements, and the few ORM writes
  on its rarer paths flush themselves).
- No engine events around the statement: the transaction is still the session's own (begun
  through it, with SQLite's ``BEGIN IMMEDIATE`` and the writer queue), and driver errors are
  raised as SQLAlchemy's ``DBAPIError`` subclasses, so retries and integrity checks see what
  they always saw.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Generic, NamedTuple, TypeVar, cast

from sqlalchemy import Column, Dialect, Table, bindparam, insert, inspect, literal_column, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.instrumentation import manager_of_class
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.expression import Executable
from sqlalchemy.sql.visitors import replacement_traverse

from qistas.db.models import Base

R = TypeVar("R")
B = TypeVar("B", bound=Base)
Processor = Callable[[Any], Any]


class Rowcount(NamedTuple):
    """The row type of a statement that returns no rows: ``Prepared.run`` gives the rowcount."""


class NewId(NamedTuple):
    """The row of an ``insert_of(..., returning=["id"])``."""

    id: int


@dataclass
class _Compiled:
    dialect: Dialect
    sql: str
    positional: list[str] | None  # parameter names in order (SQLite's ``?``), or None (named)
    literals: dict[str, Any]  # parameters with a value fixed in the statement, converted
    binders: dict[str, Processor]  # conversions of the caller's values, by parameter name
    # Conversions of result columns, by position; known once the first result describes its
    # columns (some conversions depend on the type the database reports, as in SQLAlchemy).
    readers: list[tuple[int, Processor]] | None = None


@dataclass(frozen=True)
class Converted:
    """One run's parameters, converted for a dialect's driver (``Prepared.converted``)."""

    dialect: str
    arguments: Sequence[Any] | dict[str, Any]


class Prepared(Generic[R]):
    """One Core statement, run as ``Prepared.all(session, **params)`` and the like.

    ``row`` makes a result row from its values: a ``NamedTuple`` class, whose fields must be
    the statement's columns, or any callable taking the values in order.
    """

    def __init__(self, statement: Executable, row: Callable[..., R]) -> None:
        columns = [c.key for c in getattr(statement, "exported_columns", ())]
        fields = getattr(row, "_fields", None)
        if fields is not None and list(fields) != columns:
            raise TypeError(f"{row} has fields {list(fields)}, the statement returns {columns}")
        expanding = [bind.key for bind in statement.compile().binds.values() if bind.expanding]  # type: ignore[attr-defined]
        if expanding:
            raise TypeError(f"expanding parameters are not supported: {expanding}")
        self.statement = statement
        self._row = row
        self._compiled: dict[str, _Compiled] = {}

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = _written_in(self.statement, dialect).compile(dialect=dialect)
        if getattr(compiled, "escaped_bind_names", None):
            raise TypeError("parameter names that need escaping are not supported")
        literals, binders = {}, {}
        for bind, name in compiled.bind_names.items():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if bind.required:
                if process is not None:
                    binders[name] = process
            else:
                value = bind.effective_value
                literals[name] = process(value) if process is not None else value
        positional = list(compiled.positiontup) if compiled.positional else None
        return _Compiled(dialect, compiled.string, positional, literals, binders)

    def _readers(self, compiled: _Compiled, description: Sequence[Sequence[Any]]) -> list[tuple[int, Processor]]:
        readers = []
        columns = getattr(self.statement, "exported_columns", ())
        for position, (column, described) in enumerate(zip(columns, description, strict=True)):
            read = column.type.dialect_impl(compiled.dialect).result_processor(compiled.dialect, described[1])
            if read is not None:
                readers.append((position, read))
        return readers

    def _compiled_for(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = self._compile(dialect)
        return compiled

    def _for(self, session: Session) -> tuple[Any, _Compiled]:
        driver, dialect = _driver_connection(session)
        return driver, self._compiled_for(dialect)

    @staticmethod
    def _arguments(compiled: _Compiled, params: dict[str, Any]) -> Sequence[Any] | dict[str, Any]:
        values = {**compiled.literals, **params} if compiled.literals else params  # params: this call's own dict
        for name, process in compiled.binders.items():
            if name in values:
                values[name] = process(values[name])
        if compiled.positional is not None:
            return [values[name] for name in compiled.positional]
        return values

    def _cursor(self, session: Session, params: dict[str, Any]) -> tuple[Any, _Compiled]:
        driver, compiled = self._for(session)
        arguments = self._arguments(compiled, params)
        cursor = driver.cursor()
        error = compiled.dialect.loaded_dbapi.Error
        try:
            cursor.execute(compiled.sql, arguments)
        except error as exc:
            cursor.close()
            raise DBAPIError.instance(compiled.sql, arguments, exc, error, dialect=compiled.dialect) from exc
        if compiled.readers is None and cursor.description is not None:
            compiled.readers = self._readers(compiled, cursor.description)
        return cursor, compiled

    def _read(self, compiled: _Compiled, raw: Sequence[Any]) -> R:
        if not compiled.readers:
            return self._row(*raw)
        values = list(raw)
        for position, read in compiled.readers:
            values[position] = read(values[position])
        return self._row(*values)

    def all(self, session: Session, **params: Any) -> list[R]:
        cursor, compiled = self._cursor(session, params)
        try:
            return [self._read(compiled, raw) for raw in cursor.fetchall()]
        finally:
            cursor.close()

    def first(self, session: Session, **params: Any) -> R | None:
        cursor, compiled = self._cursor(session, params)
        try:
            raw = cursor.fetchone()
            return None if raw is None else self._read(compiled, raw)
        finally:
            cursor.close()

    def run(self, session: Session, **params: Any) -> int:
        """Execute a statement that returns no rows; return how many rows it changed."""
        cursor, _ = self._cursor(session, params)
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def converted(self, dialect: Dialect, params: dict[str, Any]) -> Converted:
        """One run's parameters converted for ``dialect``'s driver, for ``run_many``: the
        conversions (JSON encoded, say) made before a transaction opens rather than in it."""
        return Converted(dialect.name, self._arguments(self._compiled_for(dialect), dict(params)))

    def run_many(self, session: Session, runs: Sequence[Converted]) -> None:
        """Execute a statement that returns no rows once for each of ``runs`` (``converted``
        for the session's dialect), in one call of the driver (``executemany``)."""
        if not runs:
            return
        driver, compiled = self._for(session)
        if any(run.dialect != compiled.dialect.name for run in runs):
            raise ValueError(f"parameters converted for another dialect than {compiled.dialect.name}")
        arguments = [run.arguments for run in runs]
        cursor = driver.cursor()
        error = compiled.dialect.loaded_dbapi.Error
        try:
            cursor.executemany(compiled.sql, arguments)
        except error as exc:
            raise DBAPIError.instance(compiled.sql, arguments, exc, error, dialect=compiled.dialect) from exc
        finally:
            cursor.close()


_HELD = "qistas.prepared.connection"  # the key of ``_driver_connection``'s note in ``Session.info``


def _driver_connection(session: Session) -> tuple[Any, Dialect]:
    """The driver's connection of the session's transaction, and its dialect.

    ``Session.connection()`` checks the session's transaction states on every call, which
    cost as much CPU as SQLite takes to run one of the loop's statements. What it gave is
    noted in ``Session.info`` with the transaction it belongs to (the innermost: a savepoint
    while one is open) and used again while that transaction is still the current one and
    active; a new transaction, a savepoint begun or ended, or a transaction a failed flush
    deactivated goes through ``Session.connection()`` again (which begins, or raises).
    """
    current = session.get_nested_transaction() or session.get_transaction()
    held = session.info.get(_HELD)
    if held is not None and held[0] is current and current is not None and current.is_active:
        return held[1], held[2]
    connection = session.connection()
    driver, dialect = connection.connection.driver_connection, connection.dialect
    session.info[_HELD] = (session.get_nested_transaction() or session.get_transaction(), driver, dialect)
    return driver, dialect


def _written_in(statement: Executable, dialect: Dialect) -> Any:
    """The statement with its fixed words and numbers (``status = 'pending'``, ``n + 1``)
    written into the SQL instead of bound as parameters.

    SQLite decides whether a partial index serves a query from the values bound to the
    query's parameters, so a statement that compares a bound parameter with a column of a
    partial index's condition (``tasks.status`` of ``ix_tasks_in_flight``) is compiled again
    each time its parameters are bound, which is each time it runs: the claim's statements
    were parsed and planned anew on every take, 5% of the annotation loop's CPU. Written into
    the SQL, the value is part of the statement the driver keeps compiled. (PostgreSQL's
    generic plans, likewise, can use a partial index only for a literal.)
    """
    def replace(element: Any, **_: Any) -> Any:
        if isinstance(element, BindParameter) and not element.required:
            value = element.effective_value
            if isinstance(value, str) or type(value) is int:
                write = element.type.dialect_impl(dialect).literal_processor(dialect)
                if write is not None:
                    return literal_column(write(value), element.type)
        return None

    return replacement_traverse(cast(Any, statement), {}, replace)


def mapped_columns(entity: type[Base]) -> list[Column[Any]]:
    """Every column of the mapped class, in the order ``detached`` takes their values."""
    return [cast(Column[Any], attribute.columns[0]) for attribute in inspect(entity).column_attrs]


@cache
def _attribute_keys(entity: type[Base]) -> tuple[str, ...]:
    return tuple(attribute.key for attribute in inspect(entity).column_attrs)


def detached(entity: type[B], values: Sequence[Any]) -> B:
    """An object made from the values of all its columns (``mapped_columns`` order), in no session.

    What a query through the ORM would give, without its cost; every attribute is loaded, so
    reading it never goes back to the database.
    """
    # As the ORM's own loader does: a bare instance, its attributes set in its dict. Calling the
    # class would run the constructor's events and attribute bookkeeping (four times the CPU).
    made: B = manager_of_class(entity).new_instance()
    made.__dict__.update(zip(_attribute_keys(entity), values, strict=True))
    make_transient_to_detached(made)
    return made


def select_entity(entity: type[B], *where: Any, lock: bool = False) -> Prepared[B]:
    """``select(entity).where(...)`` as ``Prepared``: every column, read into detached objects.

    With ``lock``, the rows are locked for the transaction (``FOR UPDATE`` where there is one).
    """
    statement = select(*mapped_columns(entity)).where(*where)
    if lock:
        statement = statement.with_for_update()
    return Prepared(statement, lambda *values: detached(entity, values))


def insert_of(table: Table, names: Sequence[str], returning: Sequence[str] = ()) -> Any:
    """``INSERT INTO table (names...) VALUES (:name...) [RETURNING ...]``, for ``Prepared``.

    Refuses to leave out a column with a Python-side default: ``Prepared`` would not apply it.
    """
    missing = [c.key for c in table.columns if c.default is not None and c.key not in names]
    if missing:
        raise TypeError(f"insert into {table.name} must set {missing} (their defaults are Python-side)")
    statement = insert(table).values({name: bindparam(name, type_=table.c[name].type) for name in names})
    return statement.returning(*(table.c[name] for name in returning)) if returning else statement
