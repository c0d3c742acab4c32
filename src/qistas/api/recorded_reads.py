"""Reports whose reading is recorded in the audit log (a project's quality, its fraud signals,
its statistics and likely label errors, the payouts, the console's project page): the report
read in a read transaction, then its event written in a short write transaction of its own.

In one write transaction, a report held the database's write lock on SQLite (``BEGIN
IMMEDIATE``) for as long as it took to compute: seconds for a project of a few hundred
thousand answers, minutes for a large workforce's fraud signals, during which every answer of
every tenant waited. A reader never waits for a writer, and the event's write takes
milliseconds. The report is returned only once its reading is recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from qistas.db.engine import Database
from qistas.db.models import User
from qistas.db.unit_of_work import read, write
from qistas.domain import audit

T = TypeVar("T")


@dataclass(frozen=True)
class Read:
    """What a report read, as ``audit.record`` writes it."""

    action: str
    object_type: str
    object_id: int | None
    org_id: int | None
    details: dict[str, Any] | None = None


def read_then_record(db: Database, actor: User, work: Callable[[Session], tuple[T, Read]]) -> T:
    """``work``'s report, read in a read transaction, after its ``Read`` is recorded."""
    found, event = read(db, work)
    record_read(db, actor, event)
    return found


def record_read(db: Database, actor: User, event: Read) -> None:
    """``event`` recorded in a short write transaction of its own."""
    write(db, lambda session: audit.record(session, actor=actor, action=event.action, object_type=event.object_type,
                                           object_id=event.object_id, org_id=event.org_id, details=event.details))
