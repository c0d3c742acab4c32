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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from itertools import combinations, islice
from pathlib import Path
from typing import Any

from qistas.domain.conll_tokens import iob
from qistas.domain.results import EXPORT_CHUNK, ExportOptions
from qistas.domain.tasktypes import BoxesSpec, PairwiseSpec, RankingSpec, SpansSpec, TextSpec
from qistas.errors import Invalid

Records = Callable[[], Iterator[dict[str, Any]]]

FORMATS = ("jsonl", "csv", "parquet", "hf", "conll", "coco", "preference", "chat")
TYPED = {"conll": ("spans",), "coco": ("boxes",), "preference": ("pairwise", "ranking"), "chat": ("text",)}
MEDIA = {
    "jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet",
    "hf": "application/x-tar", "conll": "text/plain; charset=utf-8", "coco": "application/json",
    "preference": "application/x-ndjson", "chat": "application/x-ndjson",
}
EXTENSION = {"jsonl": "jsonl", "csv": "csv", "parquet": "parquet", "hf": "tar", "conll": "conll",
             "coco": "json", "preference": "jsonl", "chat": "jsonl"}
CSV_COLUMNS = (
    "task_id", "unique_id", "batch", "status", "data", "metadata",
    "response", "confidence", "method", "annotations", "annotators", "agreement", "completed_at",
)
# The flat table of parquet and hf: JSON values are JSON text, so every project fits one schema.
FLAT_COLUMNS = (
    ("task_id", "int64"), ("unique_id", "string"), ("batch", "string"), ("status", "string"),
    ("data", "string"), ("metadata", "string"), ("response", "string"), ("confidence", "float64"),
    ("method", "string"), ("completed_at", "string"), ("annotators", "int64"), ("agreement", "float64"),
    ("annotations", "string"),
)


def check_format(fmt: str, spec: Any, options: ExportOptions) -> ExportOptions:
    """Refuse a format the project's task type has no meaning for; typed formats hold results only."""
    if fmt not in FORMATS:
        raise Invalid(f"format must be one of {', '.join(FORMATS)}", details={"field": "format"})
    if fmt in TYPED:
        if spec.type not in TYPED[fmt]:
            raise Invalid(f"format {fmt} is for {' and '.join(TYPED[fmt])} projects, this one is {spec.type}",
                          details={"field": "format"})
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


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _chunks(records: Iterable[dict[str, Any]], size: int = EXPORT_CHUNK) -> Iterator[list[dict[str, Any]]]:
    iterator = iter(records)
    while chunk := list(islice(iterator, size)):
        yield chunk


# --- general formats ----------------------------------------------------------------------


def jsonl(records: Records) -> Iterator[bytes]:
    for chunk in _chunks(records()):
        yield "".join(_json(r) + "\n" for r in chunk).encode()


def spreadsheet_safe(cell: str) -> str:
    """Keep spreadsheets from running a cell as a formula (CSV injection)."""
    if cell and cell[0] in "=+-@\t\r":
        return "'" + cell
    return cell


def _flat(record: dict[str, Any]) -> dict[str, Any]:
    provenance = record["provenance"]
    return {
        **{k: record[k] for k in ("task_id", "unique_id", "batch", "status", "confidence", "method", "completed_at")},
        "data": _json(record["data"]),
        "metadata": None if record["metadata"] is None else _json(record["metadata"]),
        "response": None if record["response"] is None else _json(record["response"]),
        "annotations": _json(record["annotations"]),
        "annotators": provenance["annotators"],
        "agreement": provenance["agreement"],
    }


def csv_rows(records: Records) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for chunk in _chunks(records()):
        for record in chunk:
            flat = _flat(record)
            writer.writerow(["" if flat[c] is None else spreadsheet_safe(str(flat[c])) for c in CSV_COLUMNS])
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


def _table(chunk: list[dict[str, Any]], schema: Any) -> Any:
    pa = _pyarrow()
    rows = [_flat(r) for r in chunk]
    return pa.table({name: [row[name] for row in rows] for name, _ in FLAT_COLUMNS}, schema=schema)


def parquet(records: Records) -> Iterator[bytes]:
    import pyarrow.parquet as pq

    schema = arrow_schema()
    sink = _Sink()
    writer = pq.ParquetWriter(sink, schema, compression="zstd")
    for chunk in _chunks(records()):
        writer.write_table(_table(chunk, schema))  # one row group per chunk
        yield sink.drain()
    writer.close()
    yield sink.drain()


def write_hf_folder(records: Records, folder: Path) -> None:
    """The layout of ``datasets.Dataset.save_to_disk``: one Arrow stream file and two JSON files."""
    pa = _pyarrow()
    schema = arrow_schema()
    folder.mkdir(parents=True, exist_ok=True)
    data_file = "data-00000-of-00001.arrow"
    with pa.OSFile(str(folder / data_file), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        for chunk in _chunks(records()):
            writer.write_table(_table(chunk, schema))
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


def hf(records: Records, workdir: Path, prefix: str) -> Iterator[bytes]:
    workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=workdir, prefix="hf-") as tmp:
        write_hf_folder(records, Path(tmp))
        yield from tar_stream(Path(tmp), prefix)


# --- per task type ------------------------------------------------------------------------


def _meta(record: dict[str, Any]) -> dict[str, Any]:
    return {"task_id": record["task_id"], "unique_id": record["unique_id"], **record["provenance"]}


def conll(records: Records, spec: SpansSpec) -> Iterator[bytes]:
    """``token<TAB>start<TAB>end<TAB>tag`` lines, a ``# task_id = N`` line before each text,
    a blank line after it. The tag is the last column, as CoNLL readers expect."""
    for chunk in _chunks(records()):
        out: list[str] = []
        for record in chunk:
            text = record["data"].get(spec.text_field, "")
            out.append(f"# task_id = {record['task_id']}\n")
            if record["unique_id"] is not None:
                out.append(f"# unique_id = {' '.join(str(record['unique_id']).split())}\n")
            for token, start, end, tag in iob(text, record["response"]["spans"]):
                out.append(f"{token}\t{start}\t{end}\t{tag}\n")
            out.append("\n")
        yield "".join(out).encode()


def coco(records: Records, spec: BoxesSpec) -> Iterator[bytes]:
    """One COCO object. Images come first, then annotations: two passes over the tasks."""
    categories = [{"id": i + 1, "name": label, "supercategory": ""} for i, label in enumerate(spec.labels)]
    category_of = {c["name"]: c["id"] for c in categories}
    head = {"info": {"description": "Exported by Qistas", "version": "1.0"}, "licenses": [], "categories": categories}
    yield (_json(head)[:-1] + ', "images": [').encode()
    first = True
    for chunk in _chunks(records()):
        parts = []
        for record in chunk:
            data = record["data"]
            image = {"id": record["task_id"], "file_name": data.get(spec.image_field),
                     "width": data.get("width"), "height": data.get("height"), "qistas": _meta(record)}
            parts.append(("" if first else ",") + _json(image))
            first = False
        yield "".join(parts).encode()
    yield b'], "annotations": ['
    next_id = 1
    for chunk in _chunks(records()):
        parts = []
        for record in chunk:
            for box in record["response"]["boxes"]:
                item = {"id": next_id, "image_id": record["task_id"], "category_id": category_of[box["label"]],
                        "bbox": [box["x"], box["y"], box["w"], box["h"]], "area": box["w"] * box["h"], "iscrowd": 0}
                parts.append(("" if next_id == 1 else ",") + _json(item))
                next_id += 1
        yield "".join(parts).encode()
    yield b"]}\n"


def _pairs(record: dict[str, Any], spec: PairwiseSpec | RankingSpec) -> Iterator[tuple[Any, Any]]:
    data, response = record["data"], record["response"]
    if isinstance(spec, PairwiseSpec):
        a, b = data[spec.a_field], data[spec.b_field]
        if response["choice"] == "a":
            yield a, b
        elif response["choice"] == "b":
            yield b, a
        return  # a tie prefers neither
    responses = data[spec.responses_field]
    for better, worse in combinations(response["order"], 2):  # the order lists the best first
        yield responses[better], responses[worse]


def preference(records: Records, spec: PairwiseSpec | RankingSpec) -> Iterator[bytes]:
    """``{"prompt", "chosen", "rejected", ...}`` per pair, as DPO and reward-model trainers read."""
    for chunk in _chunks(records()):
        lines = []
        for record in chunk:
            prompt = record["data"][spec.prompt_field]
            for chosen, rejected in _pairs(record, spec):
                lines.append(_json({"prompt": prompt, "chosen": chosen, "rejected": rejected, **_meta(record)}) + "\n")
        yield "".join(lines).encode()


def chat(records: Records, spec: TextSpec) -> Iterator[bytes]:
    """``{"messages": [user..., {"role": "assistant", "content": answer}]}`` per task."""
    for chunk in _chunks(records()):
        lines = []
        for record in chunk:
            prompt = record["data"][spec.prompt_field]
            if isinstance(prompt, list):
                messages = list(prompt)  # already a conversation
            else:
                messages = [{"role": "user", "content": prompt if isinstance(prompt, str) else _json(prompt)}]
            messages.append({"role": "assistant", "content": record["response"]["text"]})
            lines.append(_json({"messages": messages, **_meta(record)}) + "\n")
        yield "".join(lines).encode()


def render(fmt: str, records: Records, *, spec: Any, workdir: Path, name: str) -> Iterator[bytes]:
    """The bytes of an export; ``name`` is the folder name inside an ``hf`` tar."""
    if fmt == "jsonl":
        return jsonl(records)
    if fmt == "csv":
        return csv_rows(records)
    if fmt == "parquet":
        return parquet(records)
    if fmt == "hf":
        return hf(records, workdir, name)
    if fmt == "conll":
        return conll(records, spec)
    if fmt == "coco":
        return coco(records, spec)
    if fmt == "preference":
        return preference(records, spec)
    if fmt == "chat":
        return chat(records, spec)
    raise Invalid(f"format must be one of {', '.join(FORMATS)}", details={"field": "format"})
