"""Run Alembic migrations from code (``qistas migrate``, ``qistas serve``, tests).

Features add their tables in revisions that branch from the initial schema; upgrading to
"heads" applies every branch, so independent revisions never need a merge to be usable.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.orm import Session

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Alembic's Config interpolates %; a password may hold one.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "heads") -> None:
    command.upgrade(alembic_config(url), revision)


@cache
def _script() -> tuple[frozenset[str], frozenset[str]]:
    """This version's head revisions and every revision it knows (read once per process)."""
    script = ScriptDirectory(str(MIGRATIONS))
    return frozenset(script.get_heads()), frozenset(r.revision for r in script.walk_revisions())


def missing(session: Session) -> frozenset[str]:
    """This version's head revisions the database lacks: empty when its schema is up to date.

    Also empty when the database holds a revision this version does not know: a newer
    version migrated it, and this one cannot judge it, so it does not call itself unready
    (a rolling upgrade must not take every old server out at once).
    """
    heads, known = _script()
    if not inspect(session.connection()).has_table("alembic_version"):
        return heads
    applied = frozenset(session.execute(text("SELECT version_num FROM alembic_version")).scalars())
    if applied - known:
        return frozenset()
    return heads - applied
