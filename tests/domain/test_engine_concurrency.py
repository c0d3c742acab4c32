"""Many annotators at once against the assignment engine, through the domain functions.

Each thread is one annotator with its own database sessions; every transaction goes through the
same ``write`` function the routes use (one transaction, retried on deadlock). Afterwards
the database itself is checked against the invariants of DESIGN.md.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from qistas.db.engine import Database
from qistas.db.models import Assignment, Project, Task, User
from qistas.db.types import utcnow
from qistas.db.unit_of_work import write
from qistas.domain import annotations, assignments, imports, projects, users
from qistas.errors import Conflict
from tests.engine_checks import Tally, annotation_count, check, expire, run_threads, status_counts
from tests.factories import CLASSIFICATION

LABELS = CLASSIFICATION["labels"]
LEASE = 600


@dataclass
class Setup:
    project_id: int
    annotator_ids: list[int]


def make_project(database: Database, *, n_tasks: int, n_annotators: int, redundancy: dict[str, Any],
                 slug: str = "acme") -> Setup:
    with database.writer.begin() as session:
        org = users.create_org(session, name=slug.title(), slug=slug)
        owner = users.create_user(session, email=f"owner@{slug}.test", role="owner", org_id=org.id)
        project = projects.create_project(session, org_id=org.id, actor=owner, name="engine",
                                          task=CLASSIFICATION, redundancy=redundancy)
        rows = [(n, {"data": {"text": f"item {n}"}, "unique_id": f"u{n}"}) for n in range(n_tasks)]
        imports.import_tasks(session, project=project, rows=rows)
        annotator_ids = [
            users.create_user(session, email=f"w{n}-{slug}@crowd.test", role="annotator").id
            for n in range(n_annotators)
        ]
        return Setup(project.id, annotator_ids)


def take(database: Database, project_id: int, annotator_id: int) -> tuple[int, int] | None:
    def work(session: Any) -> tuple[int, int] | None:
        project = session.get(Project, project_id)
        annotator = session.get(User, annotator_id)
        claimed = assignments.claim(session, project=project, annotator=annotator, now=utcnow(), lease_seconds=LEASE)
        return (claimed[0].id, claimed[1].id) if claimed else None

    return write(database, work)


def submit(database: Database, assignment_id: int, annotator_id: int, label: str) -> tuple[int, bool]:
    def work(session: Any) -> tuple[int, bool]:
        done = annotations.submit(session, assignment_id=assignment_id, annotator=session.get(User, annotator_id),
                                  answer={"label": label}, seconds=1.0, now=utcnow())
        return done.annotation.id, done.created

    return write(database, work)


def skip(database: Database, assignment_id: int, annotator_id: int) -> None:
    write(database, lambda session: assignments.skip(
        session, assignment_id=assignment_id, annotator=session.get(User, annotator_id), now=utcnow()))


def annotator_loop(database: Database, setup: Setup, annotator_id: int, tally: Tally, seed: int,
                   *, misbehave: bool, pick: Any = None) -> None:
    """Take and answer until nothing is left; with ``misbehave``, also skip, retry and walk away."""
    rng = random.Random(seed)
    served = tally.seen.setdefault(annotator_id, set())
    try:
        while True:
            taken = take(database, setup.project_id, annotator_id)
            if taken is None:
                return
            lease, task_id = taken
            if task_id in served:
                tally.fail(f"annotator {annotator_id} was served task {task_id} twice")
            served.add(task_id)
            label = pick(task_id, rng) if pick else rng.choice(LABELS)
            roll = rng.random() if misbehave else 0.0
            if roll < 0.6:
                submit(database, lease, annotator_id, label)
                tally.add("submitted")
            elif roll < 0.7:  # a double click: the second submit returns the first annotation
                first = submit(database, lease, annotator_id, label)
                again = submit(database, lease, annotator_id, rng.choice(LABELS))
                if not first[1] or again != (first[0], False) or annotation_count(database, assignment_id=lease) != 1:
                    tally.fail(f"double submit of lease {lease}: {first} then {again}")
                tally.add("double")
            elif roll < 0.8:  # a reload: taking again hands back the same lease
                if take(database, setup.project_id, annotator_id) != taken:
                    tally.fail(f"retaking while holding lease {lease} gave another task")
                submit(database, lease, annotator_id, label)
                tally.add("retaken")
            elif roll < 0.9:  # skip, then a stale submit of the skipped lease
                skip(database, lease, annotator_id)
                stale(database, lease, annotator_id, tally, "skipped")
            else:  # walk away until the lease expires, then submit it anyway
                expire(database, lease)
                stale(database, lease, annotator_id, tally, "expired")
    except Exception as exc:  # any error is a finding; the main thread reports it
        tally.fail(f"annotator {annotator_id}: {type(exc).__name__}: {exc}")


def stale(database: Database, lease: int, annotator_id: int, tally: Tally, why: str) -> None:
    try:
        submit(database, lease, annotator_id, LABELS[0])
    except Conflict:
        tally.add(why)
    else:
        tally.fail(f"submit of a {why} lease {lease} was accepted")
    if annotation_count(database, assignment_id=lease) != 0:
        tally.fail(f"submit of a {why} lease {lease} stored an annotation")


def hammer(database: Database, setup: Setup, *, pick: Any = None) -> Tally:
    """A misbehaving crowd, then a well-behaved one that finishes what the first left open."""
    tally = Tally()
    run_threads([
        (lambda a=a, n=n: annotator_loop(database, setup, a, tally, n, misbehave=True, pick=pick))
        for n, a in enumerate(setup.annotator_ids)
    ])
    # Slots freed by the last skips and expiries, or a task that asked for one more answer,
    # may be left for annotators that already stopped: honest rounds finish every task.
    drain(database, setup, tally, pick=pick)
    return tally


def drain(database: Database, setup: Setup, tally: Tally, *, pick: Any = None, annotator_ids: Any = None) -> None:
    for round_ in range(1, 6):
        before = tally.counts["submitted"]
        run_threads([
            (lambda a=a, n=n, r=round_: annotator_loop(database, setup, a, tally, 1000 * r + n, misbehave=False,
                                                        pick=pick))
            for n, a in enumerate(annotator_ids or setup.annotator_ids)
        ])
        if tally.counts["submitted"] == before:
            return


def test_a_crowd_of_annotators_keeps_every_invariant(database: Database) -> None:
    setup = make_project(database, n_tasks=40, n_annotators=24, redundancy={"min": 3, "max": 3})
    tally = hammer(database, setup)
    assert tally.errors == []
    assert check(database, setup.project_id) == []
    assert status_counts(database, setup.project_id) == {"completed": 40}
    # the run really exercised every path
    assert all(tally.counts[k] > 0 for k in ("submitted", "double", "retaken", "skipped", "expired")), tally.counts
    with database.reader() as session:
        assert all(t.n_annotations == 3 for t in session.scalars(select(Task)))


def test_adaptive_redundancy_never_overshoots_max(database: Database) -> None:
    setup = make_project(database, n_tasks=30, n_annotators=16, redundancy={"min": 2, "max": 5, "target": 0.8})

    def pick(task_id: int, rng: random.Random) -> str:
        # some tasks are easy (everyone agrees), others split the crowd
        return LABELS[0] if task_id % 3 == 0 or rng.random() < 0.5 else rng.choice(LABELS)

    tally = hammer(database, setup, pick=pick)
    assert tally.errors == []
    assert check(database, setup.project_id) == []
    assert status_counts(database, setup.project_id) == {"completed": 30}
    with database.reader() as session:
        needed = Counter(t.n_annotations for t in session.scalars(select(Task)))
    assert set(needed) <= {2, 3, 4, 5} and len(needed) > 1, needed


def test_one_annotator_taking_from_many_tabs_gets_distinct_tasks(database: Database) -> None:
    """The same annotator racing themself: never the same task twice, never an error."""
    setup = make_project(database, n_tasks=10, n_annotators=1, redundancy={"min": 2, "max": 2})
    annotator = setup.annotator_ids[0]
    barrier = threading.Barrier(8)
    tally = Tally()

    def tab() -> None:
        try:
            barrier.wait()
            # Until nothing is left (bounded): how many turns that takes depends on how often
            # the tabs trip over each other's leases, which the machine's load decides.
            for _ in range(100):
                taken = take(database, setup.project_id, annotator)
                if taken is None:
                    return
                try:
                    submit(database, taken[0], annotator, LABELS[0])
                except Conflict:
                    tally.add("conflict")  # another tab submitted the lease this one was handed back
        except Exception as exc:
            tally.fail(f"{type(exc).__name__}: {exc}")

    run_threads([tab] * 8)
    assert tally.errors == []
    assert check(database, setup.project_id) == []
    with database.reader() as session:
        tasks = session.scalars(select(Assignment.task_id).where(Assignment.annotator_id == annotator)).all()
    assert len(tasks) == len(set(tasks)) == 10


def test_parallel_takes_by_one_annotator_hold_one_lease(database: Database) -> None:
    """Eight takes at once by one annotator: all get the same lease. Without a lock on the
    annotator's claim, each PostgreSQL transaction saw no live lease (its snapshot predates
    the others' commits) and SKIP LOCKED handed each a different task: 2 to 4 leases at once."""
    setup = make_project(database, n_tasks=40, n_annotators=1, redundancy={"min": 1, "max": 1})
    annotator = setup.annotator_ids[0]
    for _round in range(5):
        barrier = threading.Barrier(8)
        tally = Tally()
        taken: list[tuple[int, int] | None] = []

        def tab(barrier: threading.Barrier = barrier, taken: list[Any] = taken, tally: Tally = tally) -> None:
            try:
                barrier.wait()
                taken.append(take(database, setup.project_id, annotator))
            except Exception as exc:
                tally.fail(f"{type(exc).__name__}: {exc}")

        run_threads([tab] * 8)
        assert tally.errors == []
        assert len(set(taken)) == 1 and None not in taken, taken
        lease_id = taken[0][0]  # type: ignore[index]
        submit(database, lease_id, annotator, LABELS[0])
    with database.reader() as session:
        leases = session.scalars(select(Assignment.id).where(Assignment.annotator_id == annotator)).all()
    assert len(leases) == 5


def test_concurrent_double_submit_stores_one_annotation(database: Database) -> None:
    setup = make_project(database, n_tasks=1, n_annotators=1, redundancy={"min": 1, "max": 1})
    annotator = setup.annotator_ids[0]
    taken = take(database, setup.project_id, annotator)
    assert taken is not None
    barrier = threading.Barrier(12)
    results: list[tuple[int, bool]] = []

    def click() -> None:
        barrier.wait()
        results.append(submit(database, taken[0], annotator, LABELS[1]))

    run_threads([click] * 12)
    assert len(results) == 12
    assert len({annotation_id for annotation_id, _ in results}) == 1
    assert sorted(created for _, created in results) == [False] * 11 + [True]
    assert annotation_count(database, assignment_id=taken[0]) == 1
    assert check(database, setup.project_id) == []


def test_expiry_sweep_racing_a_late_submit(database: Database) -> None:
    """A lease expires while its annotator submits late and others claim: the late submit
    answers 409 and stores nothing, the task goes to at most one other, its slot is freed once."""
    rounds = 12
    setup = make_project(database, n_tasks=rounds * 6, n_annotators=6, redundancy={"min": 1, "max": 1})
    late, *others = setup.annotator_ids
    tally = Tally()
    for _ in range(rounds):
        expiry_round(database, setup, late, others, tally)
    assert tally.errors == []
    assert tally.counts["expired"] == rounds
    drain(database, setup, tally, annotator_ids=others)
    assert tally.errors == []
    assert check(database, setup.project_id) == []
    assert status_counts(database, setup.project_id) == {"completed": rounds * 6}


def expiry_round(database: Database, setup: Setup, late: int, others: list[int], tally: Tally) -> None:
    taken = take(database, setup.project_id, late)
    assert taken is not None
    expire(database, taken[0])
    barrier = threading.Barrier(1 + len(others))
    grabbed: list[tuple[int, int, int]] = []

    def late_submit() -> None:
        barrier.wait()
        stale(database, taken[0], late, tally, "expired")

    def claimer(annotator: int) -> None:
        barrier.wait()
        try:
            got = take(database, setup.project_id, annotator)
            if got is not None:
                grabbed.append((annotator, *got))
        except Exception as exc:
            tally.fail(f"{type(exc).__name__}: {exc}")

    run_threads([late_submit, *[(lambda a=a: claimer(a)) for a in others]])
    assert check(database, setup.project_id) == []
    assert len([g for g in grabbed if g[2] == taken[1]]) <= 1, grabbed
    for annotator, lease, _task in grabbed:
        submit(database, lease, annotator, LABELS[0])
