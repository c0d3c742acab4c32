"""Backups of the SQLite database, consistent while the server runs.

A plain copy of ``qistas.db`` misses what still sits in its write-ahead log (``-wal``) and may
catch a page mid-write. SQLite's online backup API copies a consistent snapshot through a
connection of its own: writers carry on, and every transaction committed before the backup
began is in it. PostgreSQL has ``pg_dump`` for the same job (docs/operations.md).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url

from qistas.errors import Invalid
from qistas.files import private_file, private_folder

PAGES_PER_STEP = 1024  # copy in steps, so writers get the database back between them


def sqlite_path(url: str) -> Path:
    """The file behind an SQLite URL; anything else is refused with what to use instead."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        raise Invalid("backup and restore work on the SQLite database; for PostgreSQL use pg_dump and pg_restore "
                      "(docs/operations.md)", details={"field": "database_url"})
    return Path(parsed.database)


def backup(url: str, destination: Path) -> int:
    """Write a consistent copy of the database to ``destination``; return its size in bytes."""
    source_path = sqlite_path(url)
    if not source_path.exists():
        raise Invalid(f"there is no database at {source_path}", details={"field": "database_url"})
    if destination.exists():
        raise Invalid(f"{destination} exists: choose a new file", details={"field": "destination"})
    private_file(destination)  # before SQLite creates it world-readable
    source = sqlite3.connect(source_path, timeout=30)
    target = sqlite3.connect(destination)
    try:
        source.backup(target, pages=PAGES_PER_STEP)
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    finally:
        target.close()
        source.close()
    return destination.stat().st_size


def restore(source: Path, url: str) -> None:
    """Replace the database with a backup. Stop every server using it first."""
    if not source.exists():
        raise Invalid(f"there is no backup at {source}", details={"field": "source"})
    backup_db = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        try:
            checked = backup_db.execute("PRAGMA integrity_check").fetchone()
            known = backup_db.execute("SELECT 1 FROM sqlite_master WHERE name = 'alembic_version'").fetchone()
        except sqlite3.DatabaseError:
            checked = known = None
        if checked != ("ok",) or known is None:
            raise Invalid(f"{source} is not a Qistas backup (or it is damaged)", details={"field": "source"})
        target_path = sqlite_path(url)
        private_folder(target_path.parent)
        target = sqlite3.connect(private_file(target_path))
        try:
            backup_db.backup(target)
        finally:
            target.close()
    finally:
        backup_db.close()
