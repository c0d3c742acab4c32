"""A zip read with its table of contents on disk reads every entry as zipfile does."""

from __future__ import annotations

import io
import tracemalloc
import warnings
import zipfile

import pytest

from qistas.domain.zipindex import IndexedZip


def archive(entries: list[tuple[str, bytes]], *, zip64: bool = False, prefix: bytes = b"") -> io.BytesIO:
    out = io.BytesIO()
    out.write(prefix)
    with zipfile.ZipFile(out, "a" if prefix else "w", zipfile.ZIP_DEFLATED) as made, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a duplicate name, on purpose
        for name, content in entries:
            with made.open(name, "w", force_zip64=zip64) as handle:
                handle.write(content)
        made.mkdir("empty")
    out.seek(0)
    return out


def read_all(stream: io.BytesIO) -> tuple[dict[str, bytes], list[str]]:
    seen: list[str] = []
    with IndexedZip(stream, on_entry=lambda info: seen.append(info.filename)) as indexed:
        plain = zipfile.ZipFile(stream)
        got = {}
        for name in plain.namelist():
            info = indexed.entry(name)
            if info is None:
                continue
            with indexed.open(info) as handle:
                got[name] = handle.read()
        assert indexed.entry("nowhere.png") is None
    return got, seen


@pytest.mark.parametrize("zip64", [False, True])
@pytest.mark.parametrize("prefix", [b"", b"#!/bin/sh\necho a script the zip was appended to\n"])
def test_reads_what_zipfile_reads(zip64: bool, prefix: bytes) -> None:
    entries = [(f"img/{i}.png", bytes([i]) * (100 + i)) for i in range(20)]
    entries += [("ünïcode/名前.jpg", b"named in UTF-8"), ("img/3.png", b"the second of this name")]
    got, seen = read_all(archive(entries, zip64=zip64, prefix=prefix))
    assert got == {**dict(entries), "img/3.png": b"the second of this name"}  # the last one, as zipfile
    assert "empty/" in seen and "empty/" not in got  # folders are shown, not indexed


def test_an_entry_refused_refuses_the_archive() -> None:
    def refuse(info: zipfile.ZipInfo) -> None:
        if info.filename.endswith(".exe"):
            raise ValueError(info.filename)

    with pytest.raises(ValueError, match="b.exe"):
        IndexedZip(archive([("a.png", b"a"), ("b.exe", b"b")]), on_entry=refuse)


def test_memory_does_not_grow_with_the_entries() -> None:
    def peak(n: int) -> int:
        stream = archive([(f"img/{i // 1000}/{i}.png", b"x") for i in range(n)])
        tracemalloc.start()
        with IndexedZip(stream, on_entry=lambda info: None) as indexed:
            assert indexed.entry(f"img/{(n - 1) // 1000}/{n - 1}.png") is not None
            peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak

    small, large = peak(1000), peak(8000)
    # zipfile itself holds ~0.5 KB an entry: 3.5 MB more for the larger one
    assert large - small < 500_000, (small, large)
