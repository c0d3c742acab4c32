"""Export formats: each turns a stream of records (``results.iter_export_records``) into
bytes, chunk by chunk, so memory stays flat whatever the project's size.

General: ``jsonl``, ``csv``, ``parquet`` (one row group per chunk) and ``hf`` (a Hugging
Face ``datasets`` folder as ``save_to_disk`` writes it, sent as a tar). Per task type:
``conll`` (spans, IOB tags), ``coco`` (boxes), ``preference`` (pairwise and ranking:
prompt / chosen / rejected), ``chat`` (text tasks: SFT messages).
"""

from __future__ import annotations

import csv
import io
import json
import secrets
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from qistas import jsontext
from qistas.domain.exportrecords import chunks as _chunks
from qistas.domain.exportrecords import to_json as _json
from qistas.domain.results import ExportOptions
from qistas.domain.tasktypes import Spec, all_types, type_of
from qistas.errors import Invalid
from qistas.files import private_folder

Records = Callable[[], Iterator[dict[str, Any]]]
# The flat table of csv, parquet and hf a chunk at a time, as columns (FLAT_COLUMNS' names -> values).
Columns = Callable[[], Iterator[dict[str, list[Any]]]]
# The same a chunk at a time as Arrow tables of ``arrow_schema()`` (parquet, hf).
Tables = Callable[[], Iterator[Any]]

GENERAL = ("jsonl", "csv", "parquet", "hf")
MEDIA = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8",
         "parquet": "application/vnd.apache.parquet", "hf": "application/x-tar"}
EXTENSION = {"jsonl": "jsonl", "csv": "csv", "parquet": "parquet", "hf": "tar"}
CSV_COLUMNS = (
    "task_id", "unique_id", "batch", "status", "data", "metadata",
    "response", "confidence", "method", "needs_review", "details", "annotations", "annotators", "agreement",
    "completed_at", "review_status", "audit_status", "predictions",
)
# The flat table of parquet and hf: JSON values are JSON text, so every project fits one schema.
FLAT_COLUMNS = (
    ("task_id", "int64"), ("unique_id", "string"), ("batch", "string"), ("status", "string"),
    ("data", "string"), ("metadata", "string"), ("response", "string"), ("confidence", "float64"),
    ("method", "string"), ("completed_at", "string"), ("annotators", "int64"), ("agreement", "float64"),
    ("annotations", "string"), ("needs_review", "bool_"), ("details", "string"), ("review_status", "string"),
    ("audit_status", "string"), ("predictions", "string"),
)

# The flat table's columns whose values repeat (a few statuses, a batch's name, a classification's
# labels): parquet writes them as a dictionary and indices. The others (a task's data, its answers)
# are mostly unique, and a dictionary of them is built only to be dropped: written plain, the file
# of 100k tasks is a fifth smaller and written a fifth faster (docs/benchmarks.md, "Exports").
DICTIONARY_COLUMNS = ["batch", "status", "response", "method", "review_status", "audit_status"]


def typed_formats() -> dict[str, list[str]]:
    """Each task type's own formats: format name -> the types that have it."""
    found: dict[str, list[str]] = {}
    for name, task_type in all_types().items():
        for fmt in task_type.export_formats:
            found.setdefault(fmt, []).append(name)
    return found


def formats() -> tuple[str, ...]:
    return GENERAL + tuple(sorted(typed_formats()))


def media_type(fmt: str, spec: Spec) -> str:
    return MEDIA.get(fmt) or type_of(spec).export_formats[fmt].media_type


def extension(fmt: str, spec: Spec) -> str:
    return EXTENSION.get(fmt) or type_of(spec).export_formats[fmt].extension


def check_format(fmt: str, spec: Spec, options: ExportOptions) -> ExportOptions:
    """Refuse a format the project's task type has no meaning for; typed formats hold results only."""
    if fmt not in formats():
        raise Invalid(f"format must be one of {', '.join(formats())}", details={"field": "format"})
    if fmt not in GENERAL:
        if fmt not in type_of(spec).export_formats:
            raise Invalid(f"format {fmt} is for {' and '.join(typed_formats()[fmt])} projects, this one is "
                          f"{spec.type}", details={"field": "format"})
        return replace(options, completed=True)
    if fmt in ("parquet", "hf"):
        _pyarrow()
    return options


def _pyarrow() -> Any:
    try:
        import pyarrow
    except ImportError:
        raise Invalid("this server cannot write parquet or hf: install qistas[parquet]",
                      details={"field": "format"}) from None
    return pyarrow


# --- general formats ----------------------------------------------------------------------


def jsonl(records: Records) -> Iterator[bytes]:
    for chunk in _chunks(records()):
        yield jsontext.lines(chunk)


def spreadsheet_safe(cell: str) -> str:
    """Keep spreadsheets from running a cell as a formula (CSV injection)."""
    if cell and cell[0] in "=+-@\t\r":
        return "'" + cell
    return cell


def _flat(record: dict[str, Any]) -> dict[str, Any]:
    provenance = record["provenance"]
    return {
        **{k: record[k] for k in ("task_id", "unique_id", "batch", "status", "confidence", "method", "needs_review",
                                  "completed_at")},
        "details": None if record["details"] is None else _json(record["details"]),
        "data": _json(record["data"]),
        "metadata": None if record["metadata"] is None else _json(record["metadata"]),
        "response": None if record["response"] is None else _json(record["response"]),
        "annotations": _json(record["annotations"]),
        "annotators": provenance["annotators"],
        "agreement": provenance["agreement"],
        "review_status": record["review"]["status"],
        "audit_status": record["review"]["audit"],
        "predictions": None if record["predictions"] is None else _json(record["predictions"]),
    }


def record_columns(records: Records) -> Iterator[dict[str, list[Any]]]:
    """The flat table of the records, a chunk at a time as columns."""
    for chunk in _chunks(records()):
        rows = [_flat(r) for r in chunk]
        yield {name: [row[name] for row in rows] for name, _ in FLAT_COLUMNS}


@dataclass(frozen=True)
class Prebuilt:
    """An export as the database builds it (domain/exportsql.py): its JSON Lines, and the
    flat table's columns as Python values (csv) and as Arrow tables (parquet, hf)."""

    lines: Callable[[], Iterator[bytes]]
    columns: Columns
    tables: Tables


def csv_rows(columns: Columns) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for chunk in columns():
        for row in zip(*(chunk[c] for c in CSV_COLUMNS), strict=True):
            writer.writerow(["" if cell is None else spreadsheet_safe(str(cell)) for cell in row])
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


class _Sink(io.RawIOBase):
    """A write-only file that hands its bytes out between writes."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.parts.append(chunk)
        self.position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self.position

    def drain(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


def arrow_schema() -> Any:
    pa = _pyarrow()
    return pa.schema([(name, getattr(pa, kind)()) for name, kind in FLAT_COLUMNS])


def arrow_tables(columns: Columns) -> Iterator[Any]:
    """The flat table's chunks of Python values as Arrow tables."""
    pa = _pyarrow()
    schema = arrow_schema()
    for chunk in columns():
        yield pa.table(chunk, schema=schema)


def parquet(tables: Tables) -> Iterator[bytes]:
    import pyarrow.parquet as pq

    sink = _Sink()
    writer = pq.ParquetWriter(sink, arrow_schema(), compression="zstd", use_dictionary=DICTIONARY_COLUMNS)
    for table in tables():
        writer.write_table(table)  # one row group per chunk
        yield sink.drain()
    writer.close()
    yield sink.drain()


def write_hf_folder(tables: Tables, folder: Path) -> None:
    """The layout of ``datasets.Dataset.save_to_disk``: one Arrow stream file and two JSON files."""
    pa = _pyarrow()
    schema = arrow_schema()
    folder.mkdir(parents=True, exist_ok=True)
    data_file = "data-00000-of-00001.arrow"
    with pa.OSFile(str(folder / data_file), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        for table in tables():
            writer.write_table(table)
    features = {name: {"dtype": kind, "_type": "Value"} for name, kind in FLAT_COLUMNS}
    info = {"citation": "", "description": "Exported by Qistas", "features": features, "homepage": "", "license": ""}
    (folder / "dataset_info.json").write_text(json.dumps(info, indent=2))
    state: dict[str, Any] = {
        "_data_files": [{"filename": data_file}], "_fingerprint": secrets.token_hex(8), "_format_columns": None,
        "_format_kwargs": {}, "_format_type": None, "_output_all_columns": False, "_split": None,
    }
    (folder / "state.json").write_text(json.dumps(state, indent=2))


def tar_stream(folder: Path, prefix: str) -> Iterator[bytes]:
    """A tar of ``folder``'s files, streamed without holding any file in memory."""
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        info = tarfile.TarInfo(f"{prefix}/{path.name}")
        info.size = path.stat().st_size
        info.mode = 0o644
        yield info.tobuf(format=tarfile.PAX_FORMAT)
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                yield block
        if info.size % tarfile.BLOCKSIZE:
            yield b"\0" * (tarfile.BLOCKSIZE - info.size % tarfile.BLOCKSIZE)
    yield b"\0" * (2 * tarfile.BLOCKSIZE)


def hf(tables: Tables, workdir: Path, prefix: str) -> Iterator[bytes]:
    private_folder(workdir)
    with tempfile.TemporaryDirectory(dir=workdir, prefix="hf-") as tmp:
        write_hf_folder(tables, Path(tmp))
        yield from tar_stream(Path(tmp), prefix)


# --- per task type ------------------------------------------------------------------------


def render(fmt: str, records: Records, *, spec: Any, workdir: Path, name: str,
           prebuilt: Prebuilt | None = None) -> Iterator[bytes]:
    """The bytes of an export; ``name`` is the folder name inside an ``hf`` tar. The general
    formats take what the database built where it builds them (``prebuilt``); the typed
    formats always take the records."""
    columns = prebuilt.columns if prebuilt is not None else (lambda: record_columns(records))
    tables = prebuilt.tables if prebuilt is not None else (lambda: arrow_tables(columns))
    if fmt == "jsonl":
        return prebuilt.lines() if prebuilt is not None else jsonl(records)
    if fmt == "csv":
        return csv_rows(columns)
    if fmt == "parquet":
        return parquet(tables)
    if fmt == "hf":
        return hf(tables, workdir, name)
    task_type = type_of(spec)
    if fmt in task_type.export_formats:
        return task_type.export_formats[fmt].render(records, spec)
    raise Invalid(f"format must be one of {', '.join(formats())}", details={"field": "format"})
