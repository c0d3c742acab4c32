"""The assignment engine's statements: leases, slots and the choice of the next task.

See ``qistas.domain.assignments`` for the invariants they keep.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    Integer,
    String,
    and_,
    bindparam,
    func,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.sql.selectable import TextualSelect

from qistas.db.enums import BatchStatus, LeaseStatus, TaskStatus
from qistas.db.models import TASK_IN_FLIGHT, TASK_UNSTARTED, Assignment, Batch, Project, Task, table
from qistas.db.prepared import NewId, Prepared, Rowcount, insert_of, select_entity
from qistas.db.queries import audit as audit_queries
from qistas.db.types import JSONType, UTCDateTime


class Lease(NamedTuple):
    """An assignment, as the loop reads it."""

    id: int
    task_id: int
    project_id: int
    annotator_id: int
    status: str
    expires_at: datetime
    # The server's clock of the work (domain.pay): when it began, the last renewal, the time counted.
    created_at: datetime
    seen_at: datetime | None
    active_ms: int


class WorkTask(NamedTuple):
    """A task, as it is served to an annotator."""

    id: int
    project_id: int
    status: str
    data: dict[str, Any]


class _Ids(NamedTuple):
    id: int
    task_id: int


_assignments = table(Assignment)
_leases = _assignments.c
_tasks = table(Task).c
_batches = table(Batch).c
LEASE_COLUMNS = (_leases.id, _leases.task_id, _leases.project_id, _leases.annotator_id, _leases.status,
                  _leases.expires_at, _leases.created_at, _leases.seen_at, _leases.active_ms)


def locked_variants(statement: Any, row: Any) -> dict[bool, Prepared[Any]]:
    """The statement as is, and with the claim row lock (for PostgreSQL)."""
    return {False: Prepared(statement, row), True: Prepared(statement.with_for_update(skip_locked=True), row)}


class _Locked(NamedTuple):
    done: Any


# PostgreSQL: one claim at a time per (annotator, project). Two int4 keys, a lock space of
# their own (the migrations' one-key lock never meets them); ids beyond int4 wrap, which at
# worst makes two annotators' claims wait for each other.
CLAIMER_LOCK: Prepared[_Locked] = Prepared(
    select(func.pg_advisory_xact_lock(bindparam("annotator_key"), bindparam("project_key")).label("done")), _Locked
)

# The project's expired leases, those that ran out first; ``limit`` None (PostgreSQL) or -1
# (SQLite): all of them.
STALE: dict[bool, Prepared[_Ids]] = locked_variants(
    select(_leases.id, _leases.task_id).where(
        _leases.project_id == bindparam("project_id"),
        _leases.status == LeaseStatus.ACTIVE,
        _leases.expires_at <= bindparam("now"),
    ).order_by(_leases.expires_at).limit(bindparam("limit", type_=Integer)),
    _Ids,
)
# Locked: a lease being submitted in another transaction right now must not be handed back
# (PostgreSQL re-checks the row once that transaction commits, and skips it if submitted).
HELD = Prepared(
    select(*LEASE_COLUMNS)
    .where(
        _leases.project_id == bindparam("project_id"),
        _leases.annotator_id == bindparam("annotator_id"),
        _leases.status == LeaseStatus.ACTIVE,
        _leases.expires_at > bindparam("now"),
    )
    .limit(1)
    .with_for_update(),
    Lease,
)
PROJECT = select_entity(Project, table(Project).c.id == bindparam("project_id"))
WORK_TASK = Prepared(
    select(_tasks.id, _tasks.project_id, _tasks.status, _tasks.data).where(_tasks.id == bindparam("task_id")),
    WorkTask,
)


class _Predictions(NamedTuple):
    predictions: list[dict[str, Any]] | None


# A task's predictions, by primary key: read on a take only when the project shows pre-fills.
PREDICTIONS = Prepared(select(_tasks.predictions).where(_tasks.id == bindparam("task_id")), _Predictions)
NEW_LEASE = Prepared(
    insert_of(_assignments, ["task_id", "project_id", "annotator_id", "status", "created_at", "expires_at"],
              returning=["id"]),
    NewId,
)
END_LEASE = Prepared(
    update(_assignments).where(_leases.id == bindparam("lease_id"))
    .values(status=bindparam("status"), ended_at=bindparam("now")),
    Rowcount,
)
# A renewal is a sign of work: the stretch since the last one is counted, capped by the idle limit.
EXTEND_LEASE = Prepared(
    update(_assignments).where(_leases.id == bindparam("lease_id"))
    .values(expires_at=bindparam("expires_at"), seen_at=bindparam("now"), active_ms=bindparam("active_ms")),
    Rowcount,
)
TAKE_SLOT = Prepared(
    update(table(Task))
    .where(and_(_tasks.id == bindparam("task_id"), _tasks.n_claimed < _tasks.required,
                _tasks.status == TaskStatus.PENDING))
    .values(n_claimed=_tasks.n_claimed + 1),
    Rowcount,
)
# A gold task takes any number of annotators, once each: its requirement grows with them.
TAKE_GOLD_SLOT = Prepared(
    update(table(Task))
    .where(and_(_tasks.id == bindparam("task_id"), _tasks.status == TaskStatus.PENDING))
    .values(n_claimed=_tasks.n_claimed + 1, required=_tasks.n_claimed + 1),
    Rowcount,
)
GIVE_BACK_SLOTS = Prepared(
    update(table(Task)).where(_tasks.id == bindparam("task_id"))
    .values(n_claimed=_tasks.n_claimed - bindparam("slots")),
    Rowcount,
)


def _candidates() -> Any:
    """Open tasks of ``:project_id`` that ``:annotator_id`` never had.

    PostgreSQL's claim runs the same conditions inside ``qistas_take`` (``TAKE``): a change to
    which tasks a claim may serve, or in what order, is a migration that replaces that function
    too (``tests/domain/test_take_function.py`` compares the two claims)."""
    served_batch = or_(
        _tasks.batch_id.is_(None),
        _tasks.batch_id.in_(
            select(_batches.id).where(_batches.project_id == bindparam("project_id"),
                                      _batches.status == BatchStatus.IN_PROGRESS)
        ),
    )
    # OFFSET 0 keeps PostgreSQL from turning NOT EXISTS into an anti-join. Planned on stale
    # statistics (a new project, an annotator with many more answers than the average), that
    # join compared each candidate with every assignment of the annotator: a lone annotator's
    # take cost 24 ms at 600 answers. As a subquery it is one probe of the unique
    # (task, annotator) index per candidate, whatever the statistics say.
    seen = (
        select(_leases.id)
        .where(_leases.task_id == _tasks.id, _leases.annotator_id == bindparam("annotator_id"))
        .offset(literal_column("0"))
        .exists()
    )
    return select(_tasks.id, _tasks.project_id, _tasks.status, _tasks.data).where(
        _tasks.project_id == bindparam("project_id"),
        _tasks.status == TaskStatus.PENDING,
        served_batch,
        ~seen,
    )


# Finish what is open: regular tasks with a free slot, already started first, then the rest,
# each in import order. The started ones are found through their partial index (its condition
# written as literals: on PostgreSQL those with a free slot; SQLite plans a range of
# ix_tasks_claim it then sorts), the rest through ix_tasks_claim.
NEXT = [
    locked_variants(
        _candidates().where(_tasks.is_gold.is_(False), _tasks.n_claimed < _tasks.required, started)
        .order_by(_tasks.id).limit(1),
        WorkTask,
    )
    for started in (TASK_IN_FLIGHT, _tasks.n_claimed == 0)
]
# Active learning on: the started ones first as above, then the unstarted ones by serve_rank
# (the background job's order), through ix_tasks_ranked (its condition written as literals).
NEXT_RANKED = [
    NEXT[0],
    locked_variants(
        _candidates().where(_tasks.is_gold.is_(False), _tasks.n_claimed < _tasks.required, TASK_UNSTARTED)
        .order_by(_tasks.serve_rank, _tasks.id).limit(1),
        WorkTask,
    ),
]
NEXT_GOLD = locked_variants(_candidates().where(_tasks.is_gold.is_(True)).order_by(_tasks.id).limit(1), WorkTask)

_OWN_QUERY = select(*LEASE_COLUMNS).where(_leases.id == bindparam("assignment_id"))
# An assignment by its id, and the same locked for the transaction.
OWN = {False: Prepared(_OWN_QUERY, Lease), True: Prepared(_OWN_QUERY.with_for_update(), Lease)}


class Taken(NamedTuple):
    """``TAKE``'s row. ``outcome``: ``held`` (the live lease the annotator had), ``gold`` or
    ``leased`` (a new lease), ``blocked`` (refused by the project's quality checks: nothing
    else is set) or ``none`` (nothing left for them)."""

    outcome: str
    lease_id: int | None
    task_id: int | None
    lease_status: str | None
    expires_at: datetime | None
    created_at: datetime | None
    seen_at: datetime | None
    active_ms: int | None
    task_status: str | None
    data: dict[str, Any] | None


# PostgreSQL: the whole claim (``domain.assignments.claim``: advisory lock, sweep, held lease,
# standing, gold, the started-first claim, slot and lease) in one round trip, by the function
# of migration 0024 with its sweep bounded by 0027 (``sweep``: ``SWEPT_PER_CLAIM``). The server
# draws whether to serve gold (``gold``: in good standing, ``gold_on_probation``: on
# probation); the function reads the standing and picks.
TAKE = Prepared(
    text("SELECT * FROM qistas_take(:project_id, :annotator_id, :now, :expires_at, :ranked, :gold, "
         ":gold_on_probation, :annotator_key, :project_key, :sweep)")
    .bindparams(bindparam("project_id", type_=BigInteger), bindparam("annotator_id", type_=BigInteger),
                bindparam("now", type_=UTCDateTime), bindparam("expires_at", type_=UTCDateTime),
                bindparam("ranked", type_=Boolean), bindparam("gold", type_=Boolean),
                bindparam("gold_on_probation", type_=Boolean), bindparam("annotator_key", type_=Integer),
                bindparam("project_key", type_=Integer), bindparam("sweep", type_=Integer))
    .columns(outcome=String, lease_id=BigInteger, task_id=BigInteger, lease_status=String, expires_at=UTCDateTime,
             created_at=UTCDateTime, seen_at=UTCDateTime, active_ms=Integer, task_status=String, data=JSONType),
    Taken,
)

# ``TAKE`` and the take's audit event (``task.take``, its details the lease's id) in one
# statement, when a lease comes out (a lease id); the event's fields are ``event_`` parameters
# (``domain.audit.LoopEvents.params``).
_taken = cast(TextualSelect, TAKE.statement).cte("taken")
TAKE_RECORDED = Prepared(
    select(*_taken.c).add_cte(
        audit_queries.pending_event_of(
            _taken, object_id=_taken.c.task_id,
            details=func.jsonb_build_object(literal_column("'assignment'"), _taken.c.lease_id),
            where=_taken.c.lease_id.is_not(None),
        ).cte("event")
    ),
    Taken,
)
