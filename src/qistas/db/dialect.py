"""The few places where SQLite and PostgreSQL need different SQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_skipping_conflicts(session: Session, table: Any, conflict_columns: list[str]) -> Any:
    """``INSERT ... ON CONFLICT (cols) DO NOTHING``: rows that collide are skipped, not errors."""
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing(index_elements=conflict_columns)


def locks_claimed_rows(session: Session) -> bool:
    """Whether claims lock the rows they pick, skipping rows another claim holds (PostgreSQL).

    SQLite needs no row locks: claims run in ``BEGIN IMMEDIATE`` transactions, one at a time.
    """
    return session.get_bind().dialect.name == "postgresql"


def claim_lock(session: Session, query: Any) -> Any:
    """``query`` with the claim row lock where the database has one (see above)."""
    return query.with_for_update(skip_locked=True) if locks_claimed_rows(session) else query


def is_retryable(exc: BaseException) -> bool:
    """A deadlock or serialization failure: the whole transaction may simply run again."""
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return code in ("40001", "40P01")
