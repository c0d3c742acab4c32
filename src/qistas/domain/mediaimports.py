"""Media brought with a task import: uploaded beside the rows, in a zip, or named by URL.

A row's media field (the task type's ``media_fields``, e.g. the boxes' ``image_field``)
names a file of the upload, or an http(s) URL when the project fetches URLs
(``media.fetch_urls``). While rows are checked (no transaction open), each file named is
spooled to disk once, hashed and inspected (``mediafiles.inspect``); the field then holds
``media:<sha256>``, the image's ``width`` and ``height`` (or the audio's ``duration``) are
written beside it, and the name or URL the customer gave goes to the task's metadata
(``metadata.media``), which annotators never see. Only once every row passed are the
files moved into the store (``store_all``); the database rows that make them readable
are written with the tasks, in the import's commit. A refused import writes nothing.

A zip is refused whole if it holds more than ``MAX_ZIP_ENTRIES`` entries (``zipfile`` keeps a
record of about half a kilobyte for each, for as long as the import runs), or if an entry's
path leaves the archive (``..``, an absolute path), is a link, or expands more than
``media_zip_max_ratio`` times.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import stat
import struct
import tempfile
import zipfile
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

import httpx

from qistas.domain import mediafiles
from qistas.domain.destinations import Blocked, Policy, resolve
from qistas.domain.mediafiles import MediaInfo
from qistas.domain.mediastore import MediaStore, blob_key
from qistas.errors import Invalid

MEDIA_REF = re.compile(r"media:([0-9a-f]{64})")
TASK_FILE_NAMES = ("tasks.jsonl", "tasks.csv", "tasks.json")
STORE_THREADS = 8
BOMB_MIN_BYTES = 1 << 20  # a small entry may compress well (a blank PNG): only larger ones are judged
#: Entries of one zip. A 512 MB upload of empty entries would otherwise hold millions of records.
MAX_ZIP_ENTRIES = 100_000
_END = b"PK\x05\x06"  # the end of central directory record (APPNOTE 4.3.16): 22 bytes + a comment
_END64_LOCATOR = b"PK\x06\x07"  # before it in a zip64 archive (4.3.15), 20 bytes


def zip_entries(stream: IO[bytes]) -> int | None:
    """How many entries the zip's end record says it holds (None: no end record found; zipfile
    then says what is wrong). Read from the last 64 KB, before zipfile builds a record per entry."""
    stream.seek(0, os.SEEK_END)
    size = stream.tell()
    start = max(0, size - (22 + 0xFFFF))
    stream.seek(start)
    tail = stream.read()
    stream.seek(0)
    at = tail.rfind(_END)
    if at < 0 or len(tail) - at < 22:
        return None
    count = int(struct.unpack_from("<H", tail, at + 10)[0])
    locator = at - 20
    if count == 0xFFFF and locator >= 0 and tail[locator:locator + 4] == _END64_LOCATOR:
        end64 = int(struct.unpack_from("<Q", tail, locator + 8)[0])  # where the zip64 end record starts
        stream.seek(end64)
        record = stream.read(56)
        stream.seek(0)
        if len(record) == 56 and record[:4] == b"PK\x06\x06":
            count = int(struct.unpack_from("<Q", record, 32)[0])
    return count


def media_ref(sha256: str) -> str:
    return f"media:{sha256}"


def ref_hash(value: Any) -> str | None:
    """The hash of a ``media:<sha256>`` value, else None."""
    if isinstance(value, str) and len(value) == 70:
        match = MEDIA_REF.fullmatch(value)
        if match:
            return match.group(1)
    return None


@dataclass(frozen=True)
class Limits:
    types: frozenset[str]
    max_bytes: int
    max_pixels: int
    fetch_urls: bool = False
    fetch_timeout: float = 30.0
    policy: Policy = field(default_factory=Policy)


# --- where the named files come from -----------------------------------------------------


class Sources:
    """The files of an upload, by name."""

    def __init__(self, files: dict[str, IO[bytes]] | None = None) -> None:
        self._files = files or {}

    def __bool__(self) -> bool:
        return bool(self._files)

    def open(self, name: str) -> IO[bytes] | None:
        handle = self._files.get(name)
        if handle is not None:
            handle.seek(0)
        return handle

    def close(self) -> None:
        """Nothing to release: the caller owns the handles."""


class ZipSources(Sources):
    """The entries of a zip: one tasks file (``tasks.jsonl``, ``.csv`` or ``.json``, or the
    only such file) and the media it names, by their paths relative to the tasks file."""

    def __init__(self, stream: IO[bytes], *, max_ratio: float) -> None:
        super().__init__()
        entries = zip_entries(stream)
        if entries is not None and entries > MAX_ZIP_ENTRIES:
            raise Invalid(f"a zip may hold at most {MAX_ZIP_ENTRIES} entries; this one holds {entries}: "
                          "import the files in several zips", details={"field": "file", "limit": MAX_ZIP_ENTRIES})
        try:
            self.zip = zipfile.ZipFile(stream)
        except (zipfile.BadZipFile, OSError, ValueError):
            raise Invalid("the upload is not a readable zip file", details={"field": "file"}) from None
        self._entries: dict[str, zipfile.ZipInfo] = {}
        for info in self.zip.infolist():
            _check_entry(info, max_ratio)
            if not info.is_dir():
                self._entries[info.filename] = info
        tasks = [n for n in self._entries if PurePosixPath(n).name in TASK_FILE_NAMES] or [
            n for n in self._entries if n.lower().endswith((".jsonl", ".ndjson", ".csv", ".json"))]
        if len(tasks) != 1:
            raise Invalid("a zip holds one tasks file (tasks.jsonl, tasks.csv or tasks.json) and the media it names",
                          details={"field": "file", "found": sorted(tasks)[:10]})
        self.tasks_name = tasks[0]
        self._base = str(PurePosixPath(self.tasks_name).parent)

    def __bool__(self) -> bool:
        return True

    def tasks_format(self) -> str:
        lowered = self.tasks_name.lower()
        return "csv" if lowered.endswith(".csv") else "json" if lowered.endswith(".json") else "jsonl"

    def open_tasks(self) -> IO[bytes]:
        return self.zip.open(self._entries[self.tasks_name])

    def open(self, name: str) -> IO[bytes] | None:
        full = name if self._base == "." else f"{self._base}/{name}"
        info = self._entries.get(full)
        if info is None or full == self.tasks_name:
            return None
        return self.zip.open(info)

    def close(self) -> None:
        self.zip.close()


def _check_entry(info: zipfile.ZipInfo, max_ratio: float) -> None:
    name = info.filename
    parts = PurePosixPath(name).parts
    if name.startswith("/") or "\\" in name or ".." in parts or (parts and ":" in parts[0]):
        raise Invalid(f"{name}: a zip entry's path may not leave the archive", details={"file": name})
    if stat.S_ISLNK(info.external_attr >> 16):
        raise Invalid(f"{name}: links are not accepted in a zip", details={"file": name})
    if info.file_size > BOMB_MIN_BYTES and info.file_size > max_ratio * max(info.compress_size, 1):
        raise Invalid(f"{name}: expands {info.file_size / max(info.compress_size, 1):.0f} times: refused as a "
                      "possible zip bomb", details={"file": name})


# --- resolving rows ------------------------------------------------------------------------


class MediaResolver:
    """Turns the media names and URLs of rows into stored media; see the module docstring.

    What it learns as rows are checked (which name is which file, and each file's size and
    type) is kept in a small SQLite database beside the spooled files, in a folder of the
    store's spool of its own, not in dictionaries: the memory an import takes does not grow
    with its number of files. A spooled file is named by its hash in that folder.
    """

    def __init__(self, *, store: MediaStore, sources: Sources, fields: tuple[str, ...], limits: Limits) -> None:
        self.store = store
        self.sources = sources
        self.fields = fields
        self.limits = limits
        self.n_files = 0  # distinct files spooled (by hash)
        self._folder: Path | None = None
        self._index: sqlite3.Connection | None = None

    @property
    def active(self) -> bool:
        return bool(self.fields) and (bool(self.sources) or self.limits.fetch_urls)

    def resolve(self, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """The row's data with its media fields resolved, and what each field named."""
        out = dict(data)
        origins: dict[str, str] = {}
        for name in self.fields:
            value = data.get(name)
            if not isinstance(value, str):
                continue
            if ref_hash(value) is not None:
                raise Invalid(f"data.{name}: name a file of the upload or a URL, not a stored hash",
                              details={"field": f"data.{name}"})
            info = self._info(name, value)
            if info is None:
                continue
            out[name] = media_ref(info.sha256)
            origins[name] = value
            if info.width is not None and info.height is not None:
                out["width"], out["height"] = info.width, info.height
            if info.duration is not None:
                out["duration"] = info.duration
        return out, origins

    def _info(self, field_name: str, value: str) -> MediaInfo | None:
        index = self._open()
        known = index.execute(f"SELECT {_INFO_COLUMNS} FROM names JOIN files USING (sha256) WHERE name = ?",
                              (value,)).fetchone()
        if known is not None:
            return MediaInfo(*known)
        is_url = value.startswith(("http://", "https://"))
        if is_url and self.limits.fetch_urls:
            info = self._take(value, lambda path: fetch(value, path, limits=self.limits, field_name=field_name))
        else:
            handle = self.sources.open(value) if self.sources else None
            if handle is None:
                if not self.sources or is_url:
                    return None  # a name or URL left as it is: no media came with this import
                raise Invalid(f"data.{field_name}: {value!r} is not among the uploaded files",
                              details={"field": f"data.{field_name}", "file": value})
            info = self._take(value, lambda path: mediafiles.spool(handle, path, name=value,
                                                                      max_bytes=self.limits.max_bytes))
        index.execute("INSERT INTO names (name, sha256) VALUES (?, ?)", (value, info.sha256))
        return info

    def _open(self) -> sqlite3.Connection:
        if self._index is None:
            self._folder = Path(tempfile.mkdtemp(dir=self.store.spool_dir(), prefix="import-"))
            # Used by one thread at a time (each step of the import runs in a worker thread of its own).
            index = sqlite3.connect(self._folder / INDEX_NAME, isolation_level=None, check_same_thread=False)
            index.executescript(_INDEX_SCHEMA)
            self._index = index
        return self._index

    def _take(self, name: str, receive: Any) -> MediaInfo:
        assert self._folder is not None and self._index is not None
        fd, draft = tempfile.mkstemp(dir=self._folder, prefix="in-")
        os.close(fd)
        path = Path(draft)
        try:
            sha256, size = receive(path)
            known = self._index.execute(f"SELECT {_INFO_COLUMNS} FROM files WHERE sha256 = ?", (sha256,)).fetchone()
            if known is not None:
                return MediaInfo(*known)
            info = mediafiles.inspect(path, name=name, sha256=sha256, size=size, types=self.limits.types,
                                      max_pixels=self.limits.max_pixels)
            path.rename(self._folder / sha256)
        finally:
            path.unlink(missing_ok=True)
        self._index.execute(f"INSERT INTO files ({_INFO_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                            (info.sha256, info.size, info.content_type, info.width, info.height, info.duration))
        self.n_files += 1
        return info

    def infos(self) -> Iterator[MediaInfo]:
        """Every file spooled, read from the index as they are consumed."""
        if self._index is None:
            return
        for row in self._index.execute(f"SELECT {_INFO_COLUMNS} FROM files ORDER BY sha256"):
            yield MediaInfo(*row)

    def store_all(self) -> None:
        """Move every spooled file into the store (after every row passed), several at a time:
        on object storage each file is a request or two, and their latency, not the bytes, is
        what an import of many small images waits for. A few files are handed to the threads
        at a time, so the work queued does not grow with the number of files either."""
        folder = self._folder

        def put(sha256: str, content_type: str) -> None:
            assert folder is not None
            self.store.put_file(blob_key(sha256), folder / sha256, content_type)

        with ThreadPoolExecutor(max_workers=STORE_THREADS) as pool:
            pending: set[Future[None]] = set()
            for info in self.infos():
                if len(pending) >= 2 * STORE_THREADS:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        future.result()
                pending.add(pool.submit(put, info.sha256, info.content_type))
            for future in pending:
                future.result()

    def close(self) -> None:
        """Remove the index and whatever is still spooled (all of it when the import was refused)."""
        if self._index is not None:
            self._index.close()
            self._index = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None


INDEX_NAME = "index.sqlite"
_INFO_COLUMNS = "sha256, size, content_type, width, height, duration"
_INDEX_SCHEMA = """
PRAGMA journal_mode = OFF;
PRAGMA synchronous = OFF;
CREATE TABLE files (sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL, content_type TEXT NOT NULL,
                    width INTEGER, height INTEGER, duration REAL) WITHOUT ROWID;
CREATE TABLE names (name TEXT PRIMARY KEY, sha256 TEXT NOT NULL) WITHOUT ROWID;
"""


def fetch(url: str, path: Path, *, limits: Limits, field_name: str) -> tuple[str, int]:
    """GET ``url`` into ``path`` through the destination guard (public addresses only, the
    checked address connected to, no redirects); (sha256, size)."""
    from qistas.workers.outbound import deadline_client  # noqa: PLC0415 -- workers import the domain

    where = f"data.{field_name}"
    try:
        target = resolve(url, limits.policy, field_name=where)
    except Blocked as exc:
        raise Invalid(f"{exc.message} ({url})", details={"field": where, "url": url}) from None
    default_port = 443 if target.scheme == "https" else 80
    host = f"[{target.host}]" if ":" in target.host else target.host
    headers = {"Host": host if target.port == default_port else f"{host}:{target.port}"}
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    problem = "no address"
    with deadline_client(limits.fetch_timeout) as client:
        for address in target.addresses:
            pinned = httpx.URL(url).copy_with(host=address)
            try:
                with client.stream("GET", pinned, headers=headers, extensions=extensions) as response:
                    if response.status_code != 200:
                        raise Invalid(f"{where}: {url} answered HTTP {response.status_code}",
                                      details={"field": where, "url": url})
                    return mediafiles.spool(_Chunks(response.iter_raw()), path, name=url,
                                            max_bytes=limits.max_bytes)
            except httpx.ConnectError as exc:
                problem = str(exc)
                continue
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
                break
    raise Invalid(f"{where}: {url} could not be fetched ({problem})"[:500], details={"field": where, "url": url})


class _Chunks:
    """A file-like ``read`` over an iterator of chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    def read(self, size: int = -1, /) -> bytes:
        for chunk in self._chunks:
            if chunk:
                return chunk
        return b""
