"""Exports PostgreSQL builds itself: each task's JSON line, or its row of the flat table.

``results.iter_export_records`` builds every record in Python: each stored JSON value decoded,
each record a dict, each line encoded (about 100 µs of the exporter's CPU per task of four
answers). On PostgreSQL the database writes the same text itself, in C, and the exporter only
joins it: the stored ``jsonb`` values go out as the database prints them, the rest is
concatenated around them, and each task's answers are aggregated by one lateral subquery on
the task's index. One statement reads the export, or one per range of it when several backends
read a large one (``Readers``), all on one snapshot.

- ``jsonl``: one line per task, the same keys in the same order and the same values as the
  records' (``tests/domain/test_export_sql.py`` compares them parsed). The text differs in
  two ways only: stored JSON values are printed as PostgreSQL prints ``jsonb`` (a space after
  ``:`` and ``,``, keys in ``jsonb``'s order, which the records path reads them in too), and
  numbers as PostgreSQL prints ``float8`` at ``extra_float_digits = 1`` (shortest exact
  digits, ``1e-07`` where Python writes ``1e-7``).
- ``csv``, ``parquet``, ``hf``: the flat table's columns (``exportformats.FLAT_COLUMNS``),
  JSON values as the database's text, numbers and flags as typed values. For csv the rows are
  fetched through the driver as Python values; for parquet and hf they are copied out
  (``COPY ... TO STDOUT``) in PostgreSQL's text format and parsed by Arrow's CSV reader into
  Arrow columns, with no Python object per value (``iter_export_tables``).

What the database cannot do is done before and after: the annotators' pseudonyms (an HMAC
under the server's secret) and model names are made in Python once per annotator and passed
in as one ``jsonb`` object keyed by annotator (for a small export, such as a ``since`` one,
they are named in Python from a marker instead, so a project's whole workforce is not named
for a few lines); the agreement
of a response that carries confidences inside it (spans, boxes, rubrics) is computed in Python
with ``results.agreement`` from the task's kept answers, which the query returns for those
tasks only; every other agreement is counted by the database comparing ``jsonb`` values, as
the records path compares decoded ones.
"""

from __future__ import annotations

import json
import pickle
import re
import tempfile
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Float,
    SQLColumnExpression,
    Text,
    and_,
    any_,
    bindparam,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    text,
    true,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, aggregate_order_by
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, aliased
from sqlalchemy.types import UserDefinedType

from qistas import jsontext
from qistas.db.models import Annotation, Batch, Task
from qistas.domain.exportformats import FLAT_COLUMNS, Prebuilt, arrow_schema
from qistas.domain.model_annotators import model_names
from qistas.domain.results import EXPORT_CHUNK, Selection, agreement, source_of

# Settings of the export's transaction: floats in their shortest exact text, timestamps as
# ISO text, and no JIT compilation (half a second to compile this query, more than it saves).
_SETTINGS = text("SET LOCAL extra_float_digits = 1; SET LOCAL DateStyle = 'ISO, MDY'; SET LOCAL jit = off")
_NULL = literal("null")
# Rows per fetch from the server-side cursor, and per chunk handed on (a parquet row group).
CHUNK = EXPORT_CHUNK * 4
# Fewest tasks one backend reads when several read an export (below that, one is as quick).
PER_READER = 25_000
# Fewest tasks for which the project's annotators are named before the query (below, from markers).
HEADS_FROM = 5_000
_SNAPSHOT_ID = re.compile("[0-9A-Fa-f-]+")
# The export's rows a chunk at a time (tuples, or a block of copied lines); closed when the
# export is left early.
_Chunks = Generator[Any, None, None]
# Around an annotator's id where the query had no head for them: a character JSON text never
# holds unescaped.
_UNNAMED = "\x01"
_MARKED = re.compile("\x01([0-9]+)\x01")
# A response with a "confidence" key anywhere: its agreement is counted in Python.
_HAS_CONFIDENCES = "$.**.confidence"


class _JsonPath(UserDefinedType[str]):
    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "jsonpath"


def _cat(*parts: SQLColumnExpression[Any] | str) -> ColumnElement[str]:
    """Texts joined with ``||``, every part a text that is never NULL. PostgreSQL's ``concat``
    takes any type and looks each argument's output function up at every call, the largest part
    of the export statement's time before (``benchmarks/export.py --explain`` times the statement)."""
    joined: ColumnElement[str] = literal(parts[0], Text) if isinstance(parts[0], str) else cast(parts[0], Text)
    for part in parts[1:]:
        joined = joined.op("||", return_type=Text)(literal(part, Text) if isinstance(part, str) else part)
    return joined


def _json(value: SQLColumnExpression[Any]) -> ColumnElement[str]:
    """A ``jsonb``, boolean or integer column's text, ``null`` for SQL NULL."""
    return func.coalesce(cast(value, Text), _NULL)


def _string(value: SQLColumnExpression[Any]) -> ColumnElement[str]:
    """A text column as a JSON string."""
    return func.coalesce(cast(func.to_json(value), Text), _NULL)


def _enumerated(value: SQLColumnExpression[Any]) -> ColumnElement[str]:
    """A column of one of the server's enumerations (``TaskStatus``, ``ReviewStatus``,
    ``AuditStatus``: lowercase words) as a JSON string, quoted without ``to_json``'s escaping,
    which none of their values needs; ``null`` for NULL."""
    return func.coalesce(_cat('"', value, '"'), _NULL)


def _float(value: SQLColumnExpression[Any]) -> ColumnElement[str]:
    """A ``float8`` as JSON: ``null`` for NULL and what JSON cannot hold (NaN, infinities), a
    whole number with ``.0`` as Python writes it, else PostgreSQL's shortest exact text."""
    not_finite = value.in_([literal("NaN", Float), literal("Infinity", Float), literal("-Infinity", Float)])
    whole = and_(value == func.trunc(value), func.abs(value) < 1e16)
    return case((value.is_(None) | not_finite, _NULL),
                (whole, _cat(cast(cast(func.trunc(value), BigInteger), Text), ".0")),
                else_=cast(value, Text))


def _iso_text(value: SQLColumnExpression[Any]) -> ColumnElement[str]:
    """A naive UTC timestamp as ``datetime.isoformat()`` writes the aware value: the ISO
    DateStyle's text with a ``T``, the microseconds to six digits when there are any."""
    shown = func.replace(cast(value, Text), " ", "T")
    digits = case((value == func.date_trunc("second", value), 19), else_=26)  # the text made once
    return _cat(func.rpad(shown, digits, "0"), "+00:00")


def _iso(value: SQLColumnExpression[Any]) -> ColumnElement[str]:
    """The same as a JSON string, ``null`` for NULL."""
    return case((value.is_(None), _NULL), else_=_cat('"', _iso_text(value), '"'))


def _json_or_none(value: SQLColumnExpression[Any]) -> ColumnElement[str | None]:
    """A ``jsonb`` column's text, NULL for SQL NULL or JSON null (both are None to Python)."""
    return case((or_(value.is_(None), func.jsonb_typeof(value) == "null"), None), else_=cast(value, Text))


class _Parts:
    """The expressions both shapes share: the task's answers, aggregated."""

    def __init__(self, selection: Selection, heads: dict[int, str], models: list[int]) -> None:
        self.selection = selection
        # Each annotator's head looked up by id in one ``jsonb`` object, a binary search per
        # answer. A join with the heads as a table was planned, for a large workforce, as a scan
        # of every head for each task (98,145 annotators: 16,000 of 100,000 tasks' lines in three
        # minutes, against 2.2 s for all of them now; docs/benchmarks.md, "A large workforce").
        by_id = literal({str(annotator_id): head for annotator_id, head in heads.items()}, JSONB)
        model = Annotation.annotator_id == any_(literal(models, ARRAY(BigInteger)))
        response = cast(Task.response, JSONB)
        self.fallback = (select(response.op("@?")(cast(literal(_HAS_CONFIDENCES), _JsonPath)).label("confidences"))
                         .correlate(Task).lateral("task_response"))
        kept = Annotation.rejected_at.is_(None)
        # An annotator who answered after the heads were read has none: a marker, named in Python.
        head = func.coalesce(by_id[cast(Annotation.annotator_id, Text)].astext,
                             _cat(_UNNAMED, cast(Annotation.annotator_id, Text), _UNNAMED))
        item = _cat(
            head, ',"answer":', cast(Annotation.answer, Text), ',"seconds":', _float(Annotation.seconds),
            ',"created_at":', _iso(Annotation.created_at),
            case((kept, ""), else_=',"rejected":true'),
            case((Annotation.excluded_at.is_(None), ""), else_=',"excluded":true'), "}")
        # At most one annotation per task and annotator (a unique lease each): counts need no DISTINCT.
        self.answers = (
            select(func.count().filter(and_(kept, ~model)).label("humans"),
                   func.count().filter(and_(kept, model)).label("models"),
                   func.count().filter(and_(kept, cast(Annotation.answer, JSONB) == response)).label("agreeing"),
                   func.string_agg(item, aggregate_order_by(literal(","), Annotation.rejected_at.is_not(None),
                                                            Annotation.id)).label("listed"))
            .select_from(Annotation)
            .where(Annotation.task_id == Task.id)
            .lateral("answers"))
        kept_answers = self.answers.c.humans + self.answers.c.models
        # JSON null and SQL NULL alike: the records path sees None for either.
        no_response = or_(Task.response.is_(None), func.jsonb_typeof(response) == "null")
        self.no_agreement = no_response | (kept_answers == 0)
        self.agreement = cast(self.answers.c.agreeing, Float) / cast(kept_answers, Float)
        self.listed = _cat("[", func.coalesce(self.answers.c.listed, ""), "]")
        # What the records path computes in Python: the response and kept answers it needs, read
        # only for those tasks (an aggregate's ORDER BY sorts for every task it is given, even
        # when its FILTER keeps nothing).
        kept_answer = aliased(Annotation)
        in_order = (select(func.jsonb_agg(aggregate_order_by(cast(kept_answer.answer, JSONB), kept_answer.id)))
                    .where(kept_answer.task_id == Task.id, kept_answer.rejected_at.is_(None))
                    .correlate(Task).scalar_subquery())
        self.computed = (case((self.fallback.c.confidences, Task.response)).label("fallback_response"),
                         case((self.fallback.c.confidences, in_order)).label("answers"))

    def order(self) -> tuple[Any, ...]:
        return (Task.completed_at, Task.id) if self.selection.options.since is not None else (Task.id,)

    def query(self, *columns: Any) -> Any:
        return (select(*columns, *self.computed)
                .select_from(Task).outerjoin(Batch, Batch.id == Task.batch_id)
                .join(self.fallback, true()).join(self.answers, true())
                .where(*self.selection.where).order_by(*self.order()))

    def lines(self) -> Any:
        """Each task's line in three parts: before the agreement, the agreement (NULL where Python
        counts it), after it."""
        answers = self.answers.c
        counted = case((self.no_agreement, _NULL), (self.fallback.c.confidences, None), else_=_float(self.agreement))
        start = _cat(
            '{"task_id":', cast(Task.id, Text), ',"unique_id":', _string(Task.unique_id),
            ',"batch":', _string(Batch.name), ',"status":', _enumerated(Task.status),
            ',"data":', _json(Task.data), ',"metadata":', _json(Task.meta),
            ',"response":', _json(Task.response), ',"confidence":', _float(Task.confidence),
            ',"method":', _string(Task.method), ',"needs_review":', _json(Task.needs_review),
            ',"details":', _json(Task.details), ',"completed_at":', _iso(Task.completed_at),
            ',"review":{"status":', _enumerated(Task.review_status), ',"audit":', _enumerated(Task.audit_status),
            '},"provenance":{"annotators":', cast(answers.humans, Text), ',"models":', cast(answers.models, Text),
            ',"agreement":')
        end = _cat(
            ',"confidence":', _float(Task.confidence), ',"method":', _string(Task.method),
            ',"needs_review":', _json(Task.needs_review), '},"predictions":', _json(Task.predictions),
            ',"annotations":', self.listed, "}")
        return self.query(start, counted, end)

    def columns(self) -> Any:
        """Each task's row of the flat table, in ``FLAT_COLUMNS``' order (the agreement NULL
        where Python counts it: the fallback response is then not NULL)."""
        counted = case((self.no_agreement | self.fallback.c.confidences, None), else_=self.agreement)
        return self.query(
            Task.id, Task.unique_id, Batch.name, Task.status, _json(Task.data), _json_or_none(Task.meta),
            _json_or_none(Task.response), Task.confidence, Task.method,
            case((Task.completed_at.is_(None), None), else_=_iso_text(Task.completed_at)),
            self.answers.c.humans, counted, self.listed, Task.needs_review, _json_or_none(Task.details),
            Task.review_status, Task.audit_status, _json_or_none(Task.predictions))


class _Heads(dict[int, str]):
    """Each annotator's start of an annotation's object (``{"annotator":...,"source":...``),
    made on first use."""

    def __init__(self, pseudonym: Callable[[int], str], models: dict[int, str]) -> None:
        super().__init__()
        self.pseudonym, self.models = pseudonym, models

    def __missing__(self, annotator_id: int) -> str:
        head = self[annotator_id] = jsontext.dumps(
            {"annotator": self.pseudonym(annotator_id), **source_of(annotator_id, self.models)})[:-1]
        return head

    def name(self, found: re.Match[str]) -> str:
        return self[int(found.group(1))]

    def named(self, listed: str) -> str:
        """``listed`` with every marker replaced by its annotator's head."""
        return _MARKED.sub(self.name, listed) if _UNNAMED in listed else listed

    def of(self, annotator_ids: list[int]) -> dict[int, str]:
        return {annotator_id: self[annotator_id] for annotator_id in annotator_ids}


@dataclass(frozen=True)
class Readers:
    """How many database backends read one export at once (``QISTAS_EXPORT_READERS``), each
    at least ``per_reader`` tasks, and where the ranges after the first wait their turn."""

    count: int = 1
    spool_dir: Path | None = None
    per_reader: int = PER_READER


def prebuilt(session: Session, *, selection: Selection, pseudonym: Callable[[int], str],
             progress: Callable[[int], None] | None = None, readers: Readers | None = None) -> Prebuilt | None:
    """The export as ``exportformats.render`` takes it from the database, where the database
    builds it (PostgreSQL); else None, and the records are encoded in Python."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    return Prebuilt(
        lines=lambda: iter_export_lines(session, selection=selection, pseudonym=pseudonym, progress=progress,
                                        readers=readers),
        columns=lambda: iter_export_columns(session, selection=selection, pseudonym=pseudonym, progress=progress,
                                            readers=readers),
        tables=lambda: iter_export_tables(session, selection=selection, pseudonym=pseudonym, progress=progress,
                                          readers=readers))


def _rows(session: Session, selection: Selection, pseudonym: Callable[[int], str], annotators: list[int] | None,
          shape: Callable[[_Parts], Any], readers: Readers | None,
          reading: Callable[[_Heads], _Reading]) -> tuple[_Heads, _Chunks]:
    """The export's rows a chunk at a time, read as ``reading(heads)`` reads them, and the heads
    made for them."""
    project = selection.project
    models = model_names(session, org_id=project.org_id)
    heads = _Heads(pseudonym, models)
    if annotators is None:
        annotators = [] if selection.total < HEADS_FROM else \
            list(session.scalars(_ANSWERED, {"project_id": project.id}))
    parts = _Parts(selection, heads.of(annotators), list(models))
    readers = readers or Readers()
    count = min(readers.count, selection.total // readers.per_reader)
    if count <= 1:
        return heads, _read_here(session, shape(parts), reading(heads))
    return heads, _read_in_ranges(session, parts, shape, count, readers, reading(heads))


def _answered() -> Any:
    """Everyone who answered in ``:project_id``: a walk of ``ix_annotations_annotator_order``
    from one annotator to the next, a probe each, instead of reading every answer's entry
    (``SELECT DISTINCT``)."""
    project_id = bindparam("project_id", type_=BigInteger)
    first = (select(Annotation.annotator_id.label("annotator_id")).where(Annotation.project_id == project_id)
             .order_by(Annotation.annotator_id).limit(1))
    walk = first.cte("walk", recursive=True)
    following = (select(Annotation.annotator_id)
                 .where(Annotation.project_id == project_id, Annotation.annotator_id > walk.c.annotator_id)
                 .order_by(Annotation.annotator_id).limit(1).scalar_subquery())
    walk = walk.union_all(select(following.label("annotator_id")).where(walk.c.annotator_id.is_not(None)))
    return select(walk.c.annotator_id).where(walk.c.annotator_id.is_not(None))


_ANSWERED = _answered()


def _read_here(session: Session, statement: Any, reading: _Reading) -> _Chunks:
    session.execute(_SETTINGS)
    yield from reading.chunks(session.connection(), statement)


# --- two ways to read the rows ----------------------------------------------------------------


class _Reading(Protocol):
    """How a statement's rows reach the exporter, a chunk of ``CHUNK`` rows at a time, and how
    a chunk is kept in a range's spool file (by the range's own thread)."""

    def chunks(self, connection: Connection, statement: Any) -> Generator[Any, None, None]: ...

    def dump(self, chunk: Any, file: IO[bytes]) -> None: ...

    def load(self, file: IO[bytes]) -> Any:
        """The next chunk dumped into ``file``; EOFError after the last."""
        ...


class _Fetched:
    """Fetched through the driver from a server-side cursor: each row a tuple of Python values."""

    def chunks(self, connection: Connection, statement: Any) -> Generator[Sequence[Any], None, None]:
        with connection.execute(statement.execution_options(yield_per=CHUNK)) as found:
            yield from found.partitions()

    def dump(self, chunk: Sequence[Any], file: IO[bytes]) -> None:
        pickle.dump([tuple(row) for row in chunk], file, protocol=pickle.HIGHEST_PROTOCOL)

    def load(self, file: IO[bytes]) -> Any:
        return pickle.load(file)  # this process's own file  # noqa: S301


_FETCHED = _Fetched()


class _Copied:
    """Copied out (``COPY (statement) TO STDOUT``) in PostgreSQL's text format and parsed into
    Arrow tables of the flat table (``_Parsing``); a range's thread parses its own, while the
    database is still building the rest, and keeps them in Arrow's stream format."""

    def __init__(self, heads: _Heads) -> None:
        self.parsing = _Parsing(heads)

    def chunks(self, connection: Connection, statement: Any) -> Generator[Any, None, None]:
        sql, values = _driver_statement(connection, statement)
        driver = connection.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cursor, cursor.copy(f"COPY ({sql}) TO STDOUT", values) as copied:
            lines: list[Any] = []
            for line in copied:  # one message per row
                lines.append(line)
                if len(lines) == CHUNK:
                    yield self.parsing.table(b"".join(lines))
                    lines = []
            if lines:
                yield self.parsing.table(b"".join(lines))

    def dump(self, chunk: Any, file: IO[bytes]) -> None:
        sink = self.parsing.pa.BufferOutputStream()
        with self.parsing.pa.ipc.new_stream(sink, chunk.schema) as writer:
            writer.write_table(chunk)
        kept = sink.getvalue()
        file.write(kept.size.to_bytes(8, "little"))
        file.write(kept)

    def load(self, file: IO[bytes]) -> Any:
        size = file.read(8)
        if not size:
            raise EOFError
        return self.parsing.pa.ipc.open_stream(file.read(int.from_bytes(size, "little"))).read_all()


def _driver_statement(connection: Connection, statement: Any) -> tuple[str, dict[str, Any]]:
    """``statement``'s SQL and its values as the driver takes them. PostgreSQL takes no
    parameters in a ``COPY``: psycopg binds them into the text on the client, quoted as
    literals, and each value must first be what SQLAlchemy would send for it (a time made naive
    UTC by its column's type, an enumeration's member its text)."""
    dialect = connection.dialect
    compiled = statement.compile(dialect=dialect)
    if compiled.escaped_bind_names:
        raise RuntimeError("a parameter name the driver cannot take as it is")
    values = compiled.construct_params(escape_names=False)
    for bind, name in compiled.bind_names.items():
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            values[name] = process(values[name])
    return compiled.string, values


# --- several backends at once -----------------------------------------------------------------
#
# One backend builds about 40,000 tasks' lines a second; a large export is split into ranges of
# its order, each read by a backend of its own on one snapshot (the transaction's, exported with
# pg_export_snapshot() and imported by each reader), so the ranges together are exactly the
# export a single statement would read. The first range streams out as it is read; each later
# one is read at the same time by a thread into a private temporary file, and follows in turn.


class _Slots:
    """The extra reader connections this process has out: at most ``QISTAS_EXPORT_READERS`` − 1
    at once, so exports running together hold no more of the pool than one export's readers
    beyond one connection each (an export that finds none free reads with one)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.used = 0

    def take(self, wanted: int, limit: int) -> int:
        with self.lock:
            got = max(0, min(wanted, limit - self.used))
            self.used += got
            return got

    def give(self, count: int) -> None:
        with self.lock:
            self.used -= count


_SLOTS = _Slots()


def _read_in_ranges(session: Session, parts: _Parts, shape: Callable[[_Parts], Any], count: int,
                    readers: Readers, reading: _Reading) -> _Chunks:
    extra = _SLOTS.take(count - 1, readers.count - 1)
    try:
        if extra == 0:
            yield from _read_here(session, shape(parts), reading)
        else:
            yield from _ranges(session, parts, shape, extra + 1, readers.spool_dir, reading)
    finally:
        _SLOTS.give(extra)


def _ranges(session: Session, parts: _Parts, shape: Callable[[_Parts], Any], count: int,
            spool_dir: Path | None, reading: _Reading) -> _Chunks:
    order = parts.order()
    bounds = _bounds(session, parts.selection, order, count)
    snapshot = session.execute(text("SELECT pg_export_snapshot()")).scalar_one()
    if not _SNAPSHOT_ID.fullmatch(snapshot):
        raise RuntimeError(f"unexpected snapshot id {snapshot!r}")
    key = tuple_(*order)
    ranges = []
    for lower, upper in zip([None, *bounds], [*bounds, None], strict=True):
        statement = shape(parts)
        if lower is not None:
            statement = statement.where(key > _at(lower, order))
        if upper is not None:
            statement = statement.where(key <= _at(upper, order))
        ranges.append(statement)
    engine = session.get_bind()
    spools: list[_Spool] = []
    try:
        for statement in ranges[1:]:
            spools.append(_Spool(engine, snapshot, statement, spool_dir, reading))
        with _on_snapshot(engine, snapshot) as connection:
            yield from reading.chunks(connection, ranges[0])
        for spool in spools:
            yield from spool.replay()
    finally:
        for spool in spools:
            spool.close()


def _bounds(session: Session, selection: Selection, order: tuple[Any, ...], count: int) -> list[tuple[Any, ...]]:
    """The last position (in the export's order) of each range but the last: ``count`` ranges of
    about equal size."""
    step = max(1, -(-selection.total // count))
    bounds: list[tuple[Any, ...]] = []
    for _ in range(count - 1):  # each from the last: the index walked once in all
        query = select(*order).where(*selection.where)
        if bounds:
            query = query.where(tuple_(*order) > _at(bounds[-1], order))
        row = session.execute(query.order_by(*order).offset(step - 1).limit(1)).first()
        if row is None:
            break
        bounds.append(tuple(row))
    return bounds


def _at(bound: tuple[Any, ...], order: tuple[Any, ...]) -> Any:
    """A position in the export's order, as its columns' types: a time compared as the naive UTC
    it is stored as, not shifted by the session's time zone (which would still split the
    export, but unevenly)."""
    return tuple_(*(literal(value, column.type) for value, column in zip(bound, order, strict=True)))


@contextmanager
def _on_snapshot(engine: Any, snapshot: str) -> Iterator[Connection]:
    """A connection whose transaction sees the exported snapshot."""
    with engine.connect() as connection:
        connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            connection.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")  # checked: hex digits and dashes
            connection.execute(_SETTINGS)
            yield connection


class _Spool:
    """One range of the export, read by a thread of its own into a private temporary file."""

    def __init__(self, engine: Any, snapshot: str, statement: Any, folder: Path | None,
                 reading: _Reading) -> None:
        # No name: only this process can open it. Closed by close(), after the range is replayed.
        self.file = tempfile.TemporaryFile(dir=folder)  # noqa: SIM115
        self.reading = reading
        self.stop = threading.Event()
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._read, args=(engine, snapshot, statement),
                                       name="export-range", daemon=True)
        self.thread.start()

    def _read(self, engine: Any, snapshot: str, statement: Any) -> None:
        try:
            with _on_snapshot(engine, snapshot) as connection, \
                    closing(self.reading.chunks(connection, statement)) as chunks:
                for chunk in chunks:
                    if self.stop.is_set():
                        return
                    self.reading.dump(chunk, self.file)
        except BaseException as exc:  # raised again where the range is replayed
            self.failure = exc

    def replay(self) -> Iterator[Any]:
        self.thread.join()
        if self.failure is not None:
            raise self.failure
        self.file.seek(0)
        while True:
            try:
                yield self.reading.load(self.file)  # this process's own file, written above
            except EOFError:
                return

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.file.close()


def iter_export_lines(session: Session, *, selection: Selection, pseudonym: Callable[[int], str],
                      progress: Callable[[int], None] | None = None, readers: Readers | None = None,
                      annotators: list[int] | None = None) -> Iterator[bytes]:
    """The selected tasks' JSON Lines, a chunk of lines at a time, in the order of
    ``results.iter_export_records``.

    ``annotators``: whose heads the query is given (default: everyone who answered in the
    project when it starts, for an export of ``HEADS_FROM`` tasks or more); anyone else's are
    made here, from a marker in the line.
    """
    heads, chunks = _rows(session, selection, pseudonym, annotators, _Parts.lines, readers, lambda _: _FETCHED)
    done = 0
    with closing(chunks):  # left early: its readers stop now, not when collected
        for rows in chunks:
            lines = []
            for start, counted, end, response, answers in rows:
                if counted is None:
                    counted = jsontext.dumps(agreement(response, answers))
                lines.append(f"{start}{counted}{heads.named(end)}\n")
            yield "".join(lines).encode()
            done += len(rows)
            if progress is not None:
                progress(done)


def iter_export_columns(session: Session, *, selection: Selection, pseudonym: Callable[[int], str],
                        progress: Callable[[int], None] | None = None, readers: Readers | None = None,
                        annotators: list[int] | None = None) -> Iterator[dict[str, list[Any]]]:
    """The selected tasks' rows of the flat table, a chunk at a time as columns (name -> values)."""
    heads, chunks = _rows(session, selection, pseudonym, annotators, _Parts.columns, readers, lambda _: _FETCHED)
    names = [name for name, _ in FLAT_COLUMNS]
    at_agreement, at_annotations = names.index("agreement"), names.index("annotations")
    done = 0
    with closing(chunks):
        for rows in chunks:
            values = [list(column) for column in zip(*rows, strict=True)]
            shares, listed = values[at_agreement], values[at_annotations]
            for row, (response, answers) in enumerate(zip(values[-2], values[-1], strict=True)):
                if response is not None:
                    shares[row] = agreement(response, answers)
                listed[row] = heads.named(listed[row])
            yield dict(zip(names, values, strict=False))
            done += len(rows)
            if progress is not None:
                progress(done)


def iter_export_tables(session: Session, *, selection: Selection, pseudonym: Callable[[int], str],
                       progress: Callable[[int], None] | None = None, readers: Readers | None = None,
                       annotators: list[int] | None = None) -> Iterator[Any]:
    """The selected tasks' rows of the flat table, a chunk at a time as Arrow tables of
    ``exportformats.arrow_schema()``: the same values as ``iter_export_columns``, copied out and
    parsed in C, where only what the database cannot do (an agreement counted in Python, an
    annotator named from a marker, a value with a control character) is done per value."""
    _, chunks = _rows(session, selection, pseudonym, annotators, _Parts.columns, readers, _Copied)
    done = 0
    with closing(chunks):
        for table in chunks:
            yield table
            done += table.num_rows
            if progress is not None:
                progress(done)


# The flat table's columns that hold JSON text, and the copied statement's two columns after
# the flat table's (``_Parts.computed``): PostgreSQL and Python write JSON with every control
# character escaped, so the only backslash escape COPY adds in them is a doubled backslash.
_JSON_TEXT = ("data", "metadata", "response", "annotations", "details", "predictions", "fallback_response", "answers")
_COPY_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_COPY_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _copy_unescaped(value: str) -> str:
    """A value of COPY's text format as it was stored."""
    return _COPY_ESCAPE.sub(lambda found: _COPY_ESCAPES.get(found.group(1), found.group(1)), value)


class _Parsing:
    """Arrow's CSV reader set for COPY's text format: tabs between values, no quotes, ``\\N``
    for NULL, ``t`` and ``f`` for booleans; its own escapes are off, and a value's backslashes
    are undone afterwards, in C for JSON text, in Python for the few other values holding one."""

    def __init__(self, heads: _Heads) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.csv as pacsv

        self.pa, self.pc, self.pacsv, self.heads = pa, pc, pacsv, heads
        self.schema = arrow_schema()
        types = {**{field.name: field.type for field in self.schema},
                 "fallback_response": pa.string(), "answers": pa.string()}
        # One thread: a chunk of 2,000 rows is too small to share out over Arrow's pool, and the
        # database's backends hold the other cores.
        self.read = pacsv.ReadOptions(column_names=list(types), use_threads=False)
        self.parse = pacsv.ParseOptions(delimiter="\t", quote_char=False, escape_char=False)
        self.convert = pacsv.ConvertOptions(column_types=types, null_values=["\\N"], strings_can_be_null=True,
                                            true_values=["t"], false_values=["f"])

    def _where(self, found: Any) -> Any:
        """``found`` (a boolean column) with NULL counted false."""
        return self.pc.fill_null(found, False)

    def _replaced(self, column: Any, where: Any, values: list[Any]) -> Any:
        return self.pc.replace_with_mask(column.combine_chunks(), where.combine_chunks(),
                                         self.pa.array(values, column.type))

    def table(self, block: bytes) -> Any:
        pa, pc = self.pa, self.pc
        found = self.pacsv.read_csv(pa.py_buffer(block), read_options=self.read, parse_options=self.parse,
                                    convert_options=self.convert)
        columns = {name: found[name] for name in found.column_names}
        # Every backslash COPY writes begins NULL's \N or an escape (never followed by N): a value
        # holding a backslash or a control character is there when they are not all NULLs.
        if block.count(b"\\") > block.count(b"\\N"):
            for name, column in columns.items():
                if column.type == pa.string():
                    columns[name] = self._unescaped(name, column)
        if _UNNAMED.encode() in block:  # an annotator the query had no head for
            listed = columns["annotations"]
            marked = self._where(pc.match_substring(listed, _UNNAMED))
            columns["annotations"] = self._replaced(listed, marked,
                                                    [self.heads.named(v) for v in listed.filter(marked).to_pylist()])
        fallback = columns["fallback_response"]
        if fallback.null_count < len(fallback):  # a response with confidences inside: its agreement counted here
            counted = pc.is_valid(fallback)
            shares = [agreement(json.loads(response), None if answers is None else json.loads(answers))
                      for response, answers in zip(fallback.filter(counted).to_pylist(),
                                                   columns["answers"].filter(counted).to_pylist(), strict=True)]
            columns["agreement"] = self._replaced(columns["agreement"], counted, shares)
        return pa.Table.from_arrays([columns[name] for name in self.schema.names], schema=self.schema)

    def _unescaped(self, name: str, column: Any) -> Any:
        escaped = self._where(self.pc.match_substring(column, "\\"))
        if not self.pc.any(escaped).as_py():
            return column
        if name in _JSON_TEXT:
            return self.pc.replace_substring(column, "\\\\", "\\")
        return self._replaced(column, escaped, [_copy_unescaped(v) for v in column.filter(escaped).to_pylist()])
