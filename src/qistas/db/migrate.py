"""Run Alembic migrations from code (``qistas migrate``, ``qistas serve``, tests).

Features add their tables in revisions that branch from the initial schema; upgrading to
"heads" applies every branch, so independent revisions never need a merge to be usable.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Alembic's Config interpolates %; a password may hold one.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "heads") -> None:
    command.upgrade(alembic_config(url), revision)
