"""The import process: parses, checks and stores a large task import for a server.

Checking an import is Python work from the first byte to the last: decoding each row,
the task type's checks, the text checks, the JSON each row is stored as. In a thread of the
server it held the interpreter lock for almost all of a 100 MB import (a million rows, about
80 s on one core), and every request of the same process waited for the lock in turn: another
tenant's 32 annotators fell from 304 to 7 answers/s (``benchmarks/fairness.py --scenarios
bigimport``). Here the whole import runs in a process of its own, which the operating system
schedules beside the server's, so the server's interpreter only waits for the answer.

``api.import_processes`` keeps a pool of these processes (``QISTAS_IMPORT_PROCESSES``), started
with ``spawn`` (``helper_process``), and sends each job (``FileImport``) as plain values: the
path of the spooled body, its format, the import's plan (read by the server) and who sends it.
The process lowers its CPU priority (nice 10, ``NICE``) before it imports anything of the
server. Not the lowest: it writes the import in short transactions, and on SQLite a process
holding the write lock must not wait for CPU while the annotation loop waits for it. The
transactions are the route's (``staged_imports``): a process that dies leaves an import its
server's recovery finishes or undoes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qistas.config import Settings
    from qistas.db.engine import Database
    from qistas.domain.imports import ImportPlan, ImportResult

PROCESS_NAME = "qistas-import"  # its name in ps and /proc/<pid>/comm
NICE = 10


@dataclass(frozen=True)
class FileImport:
    """One import for the import process: the rows are in the file at ``path`` (the server
    keeps it until the answer comes back)."""

    settings: Settings
    database_url: str
    path: str
    format: str
    plan: ImportPlan
    org_id: int
    actor_id: int


def prepare(nice: int = NICE, log_format: str = "text", log_level: str = "warning") -> None:
    """Each process's start (``helper_process.prepare``, the import's modules imported): an
    import whose sender is gone stops where it is, and the next server's recovery finishes or
    undoes it as it would have in the server."""
    from qistas import helper_process

    helper_process.prepare(PROCESS_NAME, nice, log_format, log_level, modules=(
        "qistas.db.models", "qistas.db.unit_of_work", "qistas.domain.destinations", "qistas.domain.imports",
        "qistas.domain.projects", "qistas.domain.quotas", "qistas.domain.staged_imports", "qistas.policies"))


def run(job: FileImport) -> ImportResult:
    """Check every row of the file, then write them as the import route does; the result, or
    the route's error (``Invalid`` listing the bad rows, ``QuotaExceeded``, ``Conflict``...)."""
    from functools import partial

    from qistas.db.models import Project, User
    from qistas.db.unit_of_work import read
    from qistas.domain import destinations, imports, projects, quotas, staged_imports
    from qistas.errors import NotFound
    from qistas.policies import ensure_customer_access

    settings, plan = job.settings, job.plan
    db = _database(job.database_url)
    with open(job.path, "rb") as stream:
        checked = imports.check_rows(plan, imports.iter_rows(stream, job.format),
                                     max_errors=settings.max_import_errors,
                                     check_url=destinations.callback_checker(settings))
    with checked:
        read(db, partial(quotas.ensure_task_room, org_id=job.org_id, adding=checked.data_bytes,
                         limit=settings.max_task_bytes_per_org))

        def still_allowed(session: Any) -> None:
            # The sender's access, checked again when the import commits, as the route does.
            actor = session.get(User, job.actor_id)
            if actor is None:
                raise NotFound("project not found")
            projects.ensure_writable(ensure_customer_access(actor, session.get(Project, plan.project_id)))

        return staged_imports.write_checked(db, project_id=plan.project_id, actor_id=job.actor_id,
                                            checked=checked, before_commit=still_allowed)


def _database(url: str) -> Database:
    from qistas import helper_process

    return helper_process.database(url, on_sqlite_connect=_checkpoint_often)


def _checkpoint_often(dbapi_connection: Any, _record: Any) -> None:
    # SQLite copies the write-ahead log back into the database (a checkpoint) in the connection
    # whose commit finds it over a size, 1,000 pages by default. The import's commits are what
    # grow it: with a lower size here, they pay for the copies, not the annotation loop's.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA wal_autocheckpoint = 100")
    cursor.close()
