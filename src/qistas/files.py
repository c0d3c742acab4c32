"""Files and folders Qistas creates are private to the user it runs as.

The database, the secret key, export files and backups hold customer data or the key that
signs sessions and callbacks: they are created 0600 and their folders 0700, whatever the
process umask. A file or folder that already exists keeps the mode its operator gave it.
SQLite creates its ``-wal`` and ``-shm`` files with the database file's mode, so creating the
database file 0600 before SQLite opens it covers them too.
"""

from __future__ import annotations

import os
from pathlib import Path

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def private_folder(path: Path) -> Path:
    """``path`` and any missing parents, each created 0700."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    for created in missing:
        os.chmod(created, FOLDER_MODE)  # mkdir's mode is masked by the umask, parents get none
    return path


def private_file(path: Path) -> Path:
    """``path`` created empty and 0600 unless it exists; its contents are left alone."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    return path


def open_private(path: Path) -> int:
    """A new file ``path`` (it must not exist), open for writing, mode 0600."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
