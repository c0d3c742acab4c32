"""Alembic environment: online migrations only, one transaction, one migrator at a time.

Several ``qistas serve`` processes may start together on one database. On PostgreSQL a
transaction-scoped advisory lock serialises them; on SQLite ``BEGIN IMMEDIATE`` does. The
second process then finds the schema at head and does nothing.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from qistas.db.engine import make_engine
from qistas.db.models import Base

MIGRATION_LOCK_KEY = 7_460_117_001  # any constant shared by every Qistas process


def run_migrations_online() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = make_engine(url)
    if engine.dialect.name == "sqlite":
        engine = engine.execution_options(sqlite_begin="IMMEDIATE")
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # A revision that changes a constraint rebuilds the table (a copy, then DROP and
            # RENAME). With foreign keys on, that DROP would delete the rows of every table
            # referencing it ON DELETE CASCADE, or fail on the others; SQLite's documented
            # procedure turns them off outside the transaction and checks them before commit.
            _foreign_keys(connection, on=False)
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"the migration broke foreign keys: {broken[:5]}")
        if sqlite:
            _foreign_keys(connection, on=True)
    engine.dispose()


def _foreign_keys(connection: Connection, *, on: bool) -> None:
    # On the driver's connection, outside any transaction (inside one the pragma does nothing).
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    cursor.execute(f"PRAGMA foreign_keys = {'ON' if on else 'OFF'}")
    cursor.close()


run_migrations_online()
