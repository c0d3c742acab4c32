"""A zip whose table of contents is kept on disk, not in memory.

Python's ``zipfile`` reads an archive's whole central directory into memory when it opens
it: the directory's bytes, then a ``ZipInfo`` for every entry (about half a kilobyte each),
so an upload of 100,000 images would hold some 50 MB for as long as its import runs.
``IndexedZip`` reads the central directory an entry at a time instead, shows each entry to
its caller (who may refuse the archive), and keeps what opening an entry needs in a
temporary SQLite table; ``entry`` makes the ``ZipInfo`` again when it is wanted. The reading
is zipfile's own (Python 3.11, ``ZipFile._RealGetContents``) with the directory streamed,
which is why it uses zipfile's private constants.
"""

from __future__ import annotations

import sqlite3
import struct
import zipfile
from collections.abc import Callable
from typing import IO, Any

_zip: Any = zipfile  # the central directory's layout: names zipfile keeps private
_SCHEMA = """
PRAGMA journal_mode = OFF;
PRAGMA synchronous = OFF;
CREATE TABLE entries (name TEXT PRIMARY KEY, orig_name TEXT NOT NULL, header_offset INTEGER NOT NULL,
                      compress_type INTEGER NOT NULL, compress_size INTEGER NOT NULL, file_size INTEGER NOT NULL,
                      flag_bits INTEGER NOT NULL, crc INTEGER NOT NULL) WITHOUT ROWID;
"""
_COLUMNS = "orig_name, header_offset, compress_type, compress_size, file_size, flag_bits, crc"


class IndexedZip(zipfile.ZipFile):
    """A zip opened for reading; ``on_entry`` sees each entry's ``ZipInfo`` as the central
    directory is read (an exception from it refuses the archive). Files only are indexed."""

    def __init__(self, stream: IO[bytes], *, on_entry: Callable[[zipfile.ZipInfo], None]) -> None:
        self._on_entry = on_entry
        # A private on-disk database (SQLite removes it on close); its page cache is bounded.
        # Used by one thread at a time: the import's steps run in worker threads one after another.
        self._index = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        self._index.executescript(_SCHEMA)
        self._index.execute("BEGIN")  # never committed: a scratch table, read by the same connection
        try:
            super().__init__(stream)  # reads the table of contents: _RealGetContents below
        except BaseException:
            self._index.close()
            raise

    def entry(self, name: str) -> zipfile.ZipInfo | None:
        """The file entry of this name (the last one, if the archive holds it twice), or None."""
        row = self._index.execute(f"SELECT {_COLUMNS} FROM entries WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        info = zipfile.ZipInfo(row[0])
        (info.header_offset, info.compress_type, info.compress_size, info.file_size, info.flag_bits,
         info.CRC) = row[1:]
        return info

    def close(self) -> None:
        super().close()
        self._index.close()

    def _RealGetContents(self) -> None:  # noqa: N802 -- zipfile's name: ZipFile.__init__ calls it
        fp = self.fp
        assert fp is not None
        try:
            endrec = _zip._EndRecData(fp)
        except OSError:
            raise zipfile.BadZipFile("File is not a zip file") from None
        if not endrec:
            raise zipfile.BadZipFile("File is not a zip file")
        size_cd = endrec[_zip._ECD_SIZE]
        offset_cd = endrec[_zip._ECD_OFFSET]
        self._comment = endrec[_zip._ECD_COMMENT]
        # "concat" is zero, unless the zip was appended to another file
        concat = endrec[_zip._ECD_LOCATION] - size_cd - offset_cd
        if endrec[_zip._ECD_SIGNATURE] == _zip.stringEndArchive64:
            concat -= _zip.sizeEndCentDir64 + _zip.sizeEndCentDir64Locator
        self.start_dir = offset_cd + concat
        if self.start_dir < 0:
            raise zipfile.BadZipFile("Bad offset for central directory")
        fp.seek(self.start_dir, 0)
        total = 0
        while total < size_cd:
            raw = fp.read(_zip.sizeCentralDir)
            if len(raw) != _zip.sizeCentralDir:
                raise zipfile.BadZipFile("Truncated central directory")
            centdir = struct.unpack(_zip.structCentralDir, raw)
            if centdir[_zip._CD_SIGNATURE] != _zip.stringCentralDir:
                raise zipfile.BadZipFile("Bad magic number for central directory")
            name_bytes = fp.read(centdir[_zip._CD_FILENAME_LENGTH])
            encoding = "utf-8" if centdir[_zip._CD_FLAG_BITS] & _zip._MASK_UTF_FILENAME else (
                getattr(self, "metadata_encoding", None) or "cp437")
            info = zipfile.ZipInfo(name_bytes.decode(encoding))
            info.extra = fp.read(centdir[_zip._CD_EXTRA_FIELD_LENGTH])
            info.comment = fp.read(centdir[_zip._CD_COMMENT_LENGTH])
            info.header_offset = centdir[_zip._CD_LOCAL_HEADER_OFFSET]
            (info.create_version, info.create_system, info.extract_version, info.reserved,
             info.flag_bits, info.compress_type, t, d,
             info.CRC, info.compress_size, info.file_size) = centdir[1:12]
            if info.extract_version > _zip.MAX_EXTRACT_VERSION:
                raise NotImplementedError(f"zip file version {info.extract_version / 10:.1f}")
            info.volume, info.internal_attr, info.external_attr = centdir[15:18]
            info._raw_time = t  # type: ignore[attr-defined]
            info.date_time = ((d >> 9) + 1980, (d >> 5) & 0xF, d & 0x1F, t >> 11, (t >> 5) & 0x3F, (t & 0x1F) * 2)
            info._decodeExtra()  # type: ignore[attr-defined] # zip64 sizes and offsets
            info.header_offset += concat
            self._on_entry(info)
            if not info.is_dir():
                self._index.execute(
                    f"INSERT OR REPLACE INTO entries (name, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (info.filename, info.orig_filename, info.header_offset, info.compress_type,
                     info.compress_size, info.file_size, info.flag_bits, info.CRC))
            total += (_zip.sizeCentralDir + centdir[_zip._CD_FILENAME_LENGTH] + centdir[_zip._CD_EXTRA_FIELD_LENGTH]
                      + centdir[_zip._CD_COMMENT_LENGTH])
