"""What Qistas creates under its home is private: files 0600, folders 0700, whatever the umask."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sqlalchemy import text

from qistas.config import get_settings
from qistas.db.backup import backup
from qistas.db.engine import Database
from qistas.db.migrate import upgrade
from tests.conftest import BACKEND

pytestmark = [pytest.mark.sqlite_only, pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite's files"),
              pytest.mark.usefixtures("common_umask")]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_home_secret_key_database_and_backups_are_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("QISTAS_SECRET_KEY", "QISTAS_DATABASE_URL", "QISTAS_HOME"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "srv" / "qistas"
    url = f"sqlite:///{home}/qistas.db"
    settings = get_settings(home=home, database_url=url)
    assert mode(home) == mode(home.parent) == 0o700
    assert mode(home / "secret_key") == 0o600
    upgrade(url)
    database = Database.from_url(url)
    try:
        with database.writer.begin() as session:
            session.execute(text("CREATE TABLE scratch (x INTEGER)"))
            session.execute(text("INSERT INTO scratch VALUES (1)"))
        with database.reader() as session:
            assert session.execute(text("SELECT x FROM scratch")).scalar() == 1
            files = sorted(p.name for p in home.iterdir())
            assert {"qistas.db", "qistas.db-wal", "qistas.db-shm"} <= set(files), files
            assert {p.name: mode(p) for p in home.iterdir()} == dict.fromkeys(files, 0o600)
        backup(settings.sqlalchemy_url, home / "copy.db")
        assert mode(home / "copy.db") == 0o600
    finally:
        database.dispose()
