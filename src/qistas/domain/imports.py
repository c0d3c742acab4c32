"""Importing tasks: parse JSON / JSONL / CSV rows, validate, insert — all or nothing.

Three steps, so that the slow part never holds the database's write lock:

1. ``plan_import`` reads what validation needs (the task spec, the batches) in a short read.
2. ``check_rows`` parses and validates every row with no transaction open (also resolving
   callback hosts), and spools the rows ready to insert to a temporary file: constant
   memory for an import of any size. Every row is checked, so the client learns every
   problem at once, and ``Invalid`` is raised listing them: nothing is written.
3. ``insert_rows`` inserts the spooled rows in chunks inside the caller's write transaction
   (all or nothing): the lock is held for the inserts alone, not for parsing. On SQLite a
   300,000-row import held it for seconds of JSON parsing; a 200 MB one-line file, for 78 s.

A ``unique_id`` that exists (or repeats within the file) counts as a duplicate and is
skipped by ``ON CONFLICT DO NOTHING``, which also keeps two concurrent imports from
creating the same task twice.

A row naming a completed or canceled batch is refused too. When such rows are the only
problem, ``Conflict`` (409) is raised instead: the rows are fine, the batch's state forbids
them. Listed like invalid rows, so a client reads both the same way.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import pickle
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from qistas.db.dialect import insert_many_skipping_conflicts
from qistas.db.enums import TaskStatus
from qistas.db.models import Batch, Project, Task
from qistas.db.types import utcnow
from qistas.domain.jsonsafe import check_storable
from qistas.domain.predictions import check_predictions
from qistas.domain.projects import FINAL_BATCH_STATUSES
from qistas.domain.tasktypes import parse_spec, type_of, validate_answer, validate_data
from qistas.errors import Conflict, Invalid, QistasError

CHUNK = 1000
ROW_KEYS = {"data", "unique_id", "batch", "gold", "metadata", "callback_url", "predictions"}
CSV_RESERVED = ("unique_id", "batch", "gold", "metadata", "callback_url", "predictions")
FORMATS = ("json", "jsonl", "csv")
CSV_MAX_CELL = 2**31 - 1
NUMBER_TAIL = frozenset(".eE+-0123456789")
TOO_DEEP = "nested too deeply to read"


@dataclass
class ImportResult:
    created: int = 0
    duplicates: int = 0


# --- parsing ------------------------------------------------------------------------------


class RowError(Exception):
    """A row that could not even be parsed; carries the row number."""

    def __init__(self, row: int, message: str) -> None:
        super().__init__(message)
        self.row = row
        self.message = message


def _text(stream: IO[bytes]) -> Iterator[str]:
    """Decode UTF-8 (with or without BOM) in chunks; invalid bytes are a clear error."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    offset = 0
    while True:
        chunk = stream.read(1 << 16)
        try:
            text = decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            raise Invalid(
                f"the file is not valid UTF-8 (byte {offset + exc.start})",
                details={"field": "file"},
            ) from None
        offset += len(chunk)
        if text:
            yield text
        if not chunk:
            return


def _lines(stream: IO[bytes]) -> Iterator[str]:
    pending = ""
    for text in _text(stream):
        pending += text
        *complete, pending = pending.split("\n")
        yield from complete
    if pending:
        yield pending


def iter_jsonl(stream: IO[bytes]) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(_lines(stream), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            value = RowError(number, f"not valid JSON: {exc.msg} at column {exc.colno}")
        except RecursionError:  # the json module recurses per nesting level
            value = RowError(number, TOO_DEEP)
        yield number, value


def iter_json_array(stream: IO[bytes]) -> Iterator[tuple[int, Any]]:
    """Stream the elements of a top-level JSON array, one at a time."""
    decoder = json.JSONDecoder()
    chunks = _text(stream)
    buffer, position, row = "", 0, 0
    expect = "["

    def fill() -> bool:
        nonlocal buffer, position
        more = next(chunks, None)
        if more is None:
            return False
        buffer, position = buffer[position:] + more, 0
        return True

    while True:
        while position < len(buffer) and buffer[position] in " \t\r\n":
            position += 1
        if position >= len(buffer):
            if not fill():
                raise Invalid("the JSON array is not closed" if expect != "[" else "empty body",
                              details={"field": "file"})
            continue
        char = buffer[position]
        if expect == "[":
            if char != "[":
                raise Invalid("expected a JSON array of tasks", details={"field": "file"})
            position, expect = position + 1, "value-or-]"
        elif char == "]" and expect in ("value-or-]", ",-or-]"):
            # Only whitespace may follow the array: "[...] [...]" is not one JSON document.
            tail: str | None = buffer[position + 1 :]
            while tail is not None:
                if tail.strip(" \t\r\n"):
                    raise Invalid(f"after row {row}: unexpected text after the array", details={"row": row})
                tail = next(chunks, None)
            return
        elif char == "," and expect == ",-or-]":
            position, expect = position + 1, "value"
        elif expect in ("value", "value-or-]"):
            while True:
                try:
                    value, end = decoder.raw_decode(buffer, position)
                except json.JSONDecodeError as exc:
                    if fill():
                        continue
                    raise Invalid(f"row {row + 1}: not valid JSON: {exc.msg}",
                                  details={"row": row + 1}) from None
                except RecursionError:
                    raise Invalid(f"row {row + 1}: {TOO_DEEP}", details={"row": row + 1}) from None
                # A number at the very end of the buffer may continue in the next chunk, and so
                # may one cut inside its fraction or exponent: "6." + "75" decodes "6." as 6.
                if (end == len(buffer) or buffer[end] in NUMBER_TAIL) and fill():
                    continue
                break
            row += 1
            position, expect = end, ",-or-]"
            yield row, value
        else:
            raise Invalid(f"after row {row}: expected ',' or ']'", details={"row": row})


def iter_csv(stream: IO[bytes]) -> Iterator[tuple[int, Any]]:
    """Columns become ``data`` fields, except unique_id, batch, gold, metadata, callback_url and
    predictions (a JSON list)."""
    # The csv module refuses cells over 128 KiB by default, and long documents are normal
    # task data; the upload limit already bounds a cell. Set per call: it is process-wide.
    csv.field_size_limit(CSV_MAX_CELL)
    try:
        yield from _csv_rows(stream)
    except csv.Error as exc:
        raise Invalid(f"the CSV file cannot be read: {exc}", details={"field": "file"}) from None


def _csv_rows(stream: IO[bytes]) -> Iterator[tuple[int, Any]]:
    reader = csv.DictReader(_LineReader(_text(stream)))
    if reader.fieldnames is None:
        return
    seen: set[str] = set()
    for name in reader.fieldnames:
        if not name:
            raise Invalid("the CSV header has an empty column name", details={"field": "file"})
        if name in seen:  # one of the two columns would silently overwrite the other
            raise Invalid(f"the CSV header names the column {name!r} twice", details={"field": "file"})
        seen.add(name)
    for number, record in enumerate(reader, start=1):
        if None in record:
            yield number, RowError(number, "more cells than header columns")
            continue
        row: dict[str, Any] = {"data": {}}
        for key, value in record.items():
            if key in CSV_RESERVED:
                if value not in ("", None):
                    row[key] = value
            else:
                row["data"][key] = value if value is not None else ""
        for key in ("gold", "metadata", "predictions"):
            if key in row:
                try:
                    row[key] = json.loads(row[key])
                except (json.JSONDecodeError, RecursionError):  # deep nesting: too deep to read
                    if key != "gold":
                        what = "a JSON object" if key == "metadata" else "a JSON list"
                        yield number, RowError(number, f"{key} must be {what}")
                        break
                    row[key] = _BareGold(row[key])
        else:
            yield number, row


class _BareGold(str):
    """A CSV gold cell that is not JSON, e.g. ``positive`` for a classification task."""


class _LineReader(io.TextIOBase):
    """Feed csv.reader text chunks as lines, keeping newlines inside quoted cells."""

    def __init__(self, chunks: Iterator[str]) -> None:
        self._chunks = chunks
        self._pending = ""

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]
        for text in self._chunks:
            self._pending += text
            *complete, self._pending = self._pending.split("\n")
            for line in complete:
                yield line + "\n"
        if self._pending:
            yield self._pending


def iter_rows(stream: IO[bytes], fmt: str) -> Iterator[tuple[int, Any]]:
    if fmt == "jsonl":
        return iter_jsonl(stream)
    if fmt == "csv":
        return iter_csv(stream)
    if fmt == "json":
        return iter_json_array(stream)
    raise Invalid(f"format must be one of {', '.join(FORMATS)}", details={"field": "format"})


# --- validation and insertion -------------------------------------------------------------


class BatchRef(NamedTuple):
    id: int
    name: str
    status: str


@dataclass(frozen=True)
class ImportPlan:
    """What validating rows needs, read once; no session is held while rows are checked."""

    project_id: int
    required: int
    spec: Any
    batches: dict[str, BatchRef]


def plan_import(session: Session, *, project: Project) -> ImportPlan:
    batches = {b.name: BatchRef(b.id, b.name, b.status)
               for b in session.scalars(select(Batch).where(Batch.project_id == project.id))}
    return ImportPlan(project.id, project.redundancy_min, parse_spec(project.task_spec), batches)


class CheckedRows:
    """Rows that passed validation, spooled to a temporary file in chunks; close when done."""

    def __init__(self) -> None:
        self._spool = tempfile.TemporaryFile()  # noqa: SIM115 -- lives as long as this object; close()
        self.total = 0
        self.batch_ids: set[int] = set()
        self.data_bytes = 0  # the rows' task data as JSON text (UTF-8): what storage quotas count

    def add_chunk(self, rows: list[dict[str, Any]]) -> None:
        pickle.dump(rows, self._spool, protocol=pickle.HIGHEST_PROTOCOL)

    def chunks(self) -> Iterator[list[dict[str, Any]]]:
        self._spool.seek(0)
        while True:
            try:
                yield pickle.load(self._spool)  # written by add_chunk above, never by a client
            except EOFError:
                return

    def close(self) -> None:
        self._spool.close()

    def __enter__(self) -> CheckedRows:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class _ClosedBatch(Conflict):
    """A row naming a batch in a final status."""

    def __init__(self, batch: BatchRef) -> None:
        super().__init__(f"batch {batch.name!r} is {batch.status}")
        self.batch = batch


MediaResolve = Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, str]]]


def _row_values(raw: Any, *, plan: ImportPlan, check_url: Callable[[str], None] | None = None,
                resolve_media: MediaResolve | None = None) -> dict[str, Any]:
    spec = plan.spec
    if not isinstance(raw, dict):
        raise Invalid("a task must be a JSON object")
    unknown = raw.keys() - ROW_KEYS
    if unknown:
        raise Invalid(f"unknown field {sorted(unknown)[0]!r}")
    data = raw.get("data")
    validate_data(spec, data)
    assert isinstance(data, dict)
    origins: dict[str, str] = {}
    if resolve_media is not None:  # media names and URLs become stored files (domain.mediaimports)
        data, origins = resolve_media(data)
    check_storable(data, "data")
    unique_id = raw.get("unique_id")
    if unique_id is not None:
        if isinstance(unique_id, int) and not isinstance(unique_id, bool):
            unique_id = str(unique_id)
        if not isinstance(unique_id, str) or not 1 <= len(unique_id) <= 255:
            raise Invalid("unique_id must be a string of 1 to 255 characters")
        check_storable(unique_id, "unique_id")
    metadata = raw.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise Invalid("metadata must be a JSON object")
        check_storable(metadata, "metadata")
    if origins:  # what the customer named, for them; annotators never see metadata
        metadata = {**(metadata or {}), "media": origins}
    gold = raw.get("gold")
    if isinstance(gold, _BareGold):
        gold = type_of(spec).gold_from_text(spec, str(gold))
    if gold is not None:
        check_storable(gold, "gold")
        try:
            gold = validate_answer(spec, data, gold)
        except Invalid as exc:
            # The answer validator names fields "answer...": here the client wrote "gold".
            raise Invalid("gold" + exc.message.removeprefix("answer")) from None
    predictions = check_predictions(spec, data, raw.get("predictions"))
    callback_url = raw.get("callback_url")
    if callback_url is not None:
        if not isinstance(callback_url, str):
            raise Invalid("callback_url must be a URL")
        if check_url is not None:
            check_url(callback_url)
    batch_id = None
    if raw.get("batch") is not None:
        batch = plan.batches.get(str(raw["batch"]))
        if batch is None:
            raise Invalid(f"unknown batch {raw['batch']!r}")
        if batch.status in FINAL_BATCH_STATUSES:
            raise _ClosedBatch(batch)
        batch_id = batch.id
    return {
        "project_id": plan.project_id,
        "batch_id": batch_id,
        "unique_id": unique_id,
        "data": data,
        "metadata": metadata,
        "gold": gold,
        "is_gold": gold is not None,
        "status": TaskStatus.PENDING,
        "required": plan.required,
        "n_claimed": 0,
        "n_annotations": 0,
        "below_target": False,
        "callback_url": callback_url,
        "predictions": predictions,
    }


def data_bytes(data: Any) -> int:
    """A task's data as the storage quota counts it: its JSON text in UTF-8, about what the
    database keeps (``quotas.task_bytes`` measures the stored text itself)."""
    return len(json.dumps(data, ensure_ascii=False).encode())


def check_rows(
    plan: ImportPlan, rows: Iterable[tuple[int, Any]], *, max_errors: int = 100,
    check_url: Callable[[str], None] | None = None, resolve_media: MediaResolve | None = None,
) -> CheckedRows:
    """Validate every row (``check_url`` vets each ``callback_url``, raising ``Invalid``).

    Returns the valid rows spooled, or raises listing the invalid ones; opens no transaction.
    """
    checked = CheckedRows()
    errors: list[dict[str, Any]] = []
    n_errors = 0
    closed: list[BatchRef] = []  # the batch of each row refused only for its batch's status
    chunk: list[dict[str, Any]] = []
    try:
        for number, raw in rows:
            checked.total += 1
            try:
                if isinstance(raw, RowError):
                    raise Invalid(raw.message)
                values = _row_values(raw, plan=plan, check_url=check_url, resolve_media=resolve_media)
            except QistasError as exc:
                n_errors += 1
                if isinstance(exc, _ClosedBatch):
                    closed.append(exc.batch)
                if len(errors) < max_errors:
                    errors.append({"row": number, "message": exc.message})
                chunk.clear()
                continue
            if not n_errors:
                chunk.append(values)
                checked.data_bytes += data_bytes(values["data"])
                if values["batch_id"] is not None:
                    checked.batch_ids.add(values["batch_id"])
                if len(chunk) >= CHUNK:
                    checked.add_chunk(chunk)
                    chunk.clear()
        total = checked.total
        if n_errors and len(closed) == n_errors:
            raise closed_batch_conflict(closed[0], details={"rows": errors, "invalid": n_errors, "total": total})
        if n_errors:
            raise Invalid(
                f"{n_errors} invalid row(s); nothing was imported",
                details={"rows": errors, "invalid": n_errors, "total": total},
            )
        if total == 0:
            raise Invalid("no tasks to import", details={"field": "file"})
        if chunk:
            checked.add_chunk(chunk)
    except BaseException:
        checked.close()
        raise
    return checked


def closed_batch_conflict(batch: BatchRef, *, details: dict[str, Any]) -> Conflict:
    return Conflict(
        f"batch {batch.name!r} is {batch.status}: no task can be added to a completed or canceled batch; "
        "nothing was imported",
        details={"field": "batch", "batch": batch.name, "status": batch.status, **details},
    )


def insert_rows(session: Session, *, checked: CheckedRows) -> ImportResult:
    """Insert checked rows in the caller's write transaction.

    A batch closed since the rows were checked refuses the import (409), as it would have then.
    """
    if checked.batch_ids:
        for batch in session.scalars(select(Batch).where(Batch.id.in_(checked.batch_ids)).order_by(Batch.id)):
            if batch.status in FINAL_BATCH_STATUSES:
                raise closed_batch_conflict(BatchRef(batch.id, batch.name, batch.status),
                                             details={"total": checked.total})
    result = ImportResult()
    now = utcnow()
    for chunk in checked.chunks():
        for values in chunk:
            values["created_at"] = now
        inserted = insert_many_skipping_conflicts(session, Task.__table__, chunk, ["project_id", "unique_id"])
        result.created += inserted
        result.duplicates += len(chunk) - inserted
    return result


def import_tasks(
    session: Session, *, project: Project, rows: Iterable[tuple[int, Any]], max_errors: int = 100,
    check_url: Callable[[str], None] | None = None,
) -> ImportResult:
    """The three steps in one transaction: for small imports made by the server itself (the
    demo, tests). Requests use the steps apart, so parsing happens outside the write lock."""
    plan = plan_import(session, project=project)
    with check_rows(plan, rows, max_errors=max_errors, check_url=check_url) as checked:
        return insert_rows(session, checked=checked)
