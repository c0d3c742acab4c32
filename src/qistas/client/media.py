"""Packing a tasks file and its media folder into one zip for an import (docs/media.md)."""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

TASK_EXTENSIONS = {"jsonl": ".jsonl", "csv": ".csv", "json": ".json"}


def media_zip(tasks: Path, folder: Path, *, format: str | None = None) -> Path:
    """A temporary zip (the caller removes it) of ``tasks`` as ``tasks.<ext>`` and every file
    under ``folder`` by its path relative to it. Stored, not compressed: images and audio
    are compressed already, and the server refuses entries that expand too much."""
    ext = TASK_EXTENSIONS.get(format or "", tasks.suffix.lower() if tasks.suffix else ".jsonl")
    if ext not in (".jsonl", ".ndjson", ".csv", ".json"):
        raise ValueError(f"{tasks}: name the format (jsonl, csv or json)")
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    handle = tempfile.NamedTemporaryFile(prefix="qistas-import-", suffix=".zip", delete=False)  # noqa: SIM115
    handle.close()
    target = Path(handle.name)
    try:
        with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:
            archive.write(tasks, f"tasks{'.jsonl' if ext == '.ndjson' else ext}")
            for path in sorted(folder.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    archive.write(path, path.relative_to(folder).as_posix())
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target
