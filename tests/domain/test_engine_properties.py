"""Random sequences of what annotators do, replayed against the engine and a small model.

Each example is a project with random redundancy {min, max, target}, a few tasks and a few
annotators, and a list of steps: take, submit, double submit, submit an old lease, skip,
let a lease expire (its ``expires_at`` moved into the past), renew. After every step the
database must agree with the model (which lease each annotator holds, each task's status,
count and requirement) and DESIGN.md's invariants must hold.

All examples share the test's database: each builds its own organization and project, so
no example sees another's rows and no fresh database is needed per example.
"""

from __future__ import annotations

import itertools
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import select, update

from qistas.db.engine import Database
from qistas.db.models import Assignment, Project, Task, User
from qistas.db.types import utcnow
from qistas.domain import annotations, assignments, imports, projects, users
from qistas.domain.gold import PRIOR_CORRECT, PRIOR_WRONG
from qistas.errors import Conflict
from tests.engine_checks import violations
from tests.factories import CLASSIFICATION

LABELS = CLASSIFICATION["labels"]
LEASE = 600
# Each step is a few round trips: PostgreSQL's cost a few times SQLite's in-process calls.
MAX_EXAMPLES = int(os.environ.get("QISTAS_TEST_EXAMPLES")
                   or (30 if os.environ.get("QISTAS_TEST_DB") == "postgresql" else 80))
_examples = itertools.count()


@dataclass
class Lease:
    id: int
    task: int
    status: str = "live"  # live | lapsed (expired, not yet swept) | submitted | skipped | expired
    annotation: int | None = None


@dataclass
class Model:
    """What the engine should do, written as plainly as possible."""

    lo: int
    hi: int
    target: float | None
    task_ids: list[int]
    required: dict[int, int] = field(default_factory=dict)
    status: dict[int, str] = field(default_factory=dict)
    answers: dict[int, list[str]] = field(default_factory=dict)
    leases: dict[int, list[Lease]] = field(default_factory=dict)  # per annotator, oldest first

    def __post_init__(self) -> None:
        for task in self.task_ids:
            self.required[task], self.status[task], self.answers[task] = self.lo, "pending", []

    def all_leases(self) -> list[Lease]:
        return [lease for held in self.leases.values() for lease in held]

    def held(self, annotator: int) -> Lease | None:
        return next((lease for lease in self.leases.get(annotator, []) if lease.status == "live"), None)

    def claimed(self, task: int) -> int:
        live = sum(1 for lease in self.all_leases() if lease.task == task and lease.status in ("live", "lapsed"))
        return len(self.answers[task]) + live

    def sweep(self) -> None:
        for lease in self.all_leases():
            if lease.status == "lapsed":
                lease.status = "expired"

    def next_task(self, annotator: int) -> int | None:
        """Open tasks with a free slot the annotator never had: started ones first, then import order."""
        seen = {lease.task for lease in self.leases.get(annotator, [])}
        open_ = [t for t in self.task_ids
                 if self.status[t] == "pending" and t not in seen and self.claimed(t) < self.required[t]]
        started = [t for t in open_ if self.claimed(t) > 0]
        return (started or open_ or [None])[0]

    def answer(self, task: int, label: str) -> None:
        answers = self.answers[task]
        answers.append(label)
        n = len(answers)
        if n < self.required[task]:
            return
        # Without a target, max > min means "until the answers agree" (a unanimous vote).
        # With one, the confidence is the posterior of the top label, every annotator (none
        # has answered a gold task) counting as right with the prior gold accuracy.
        if self.target is None:
            target = 1.0 if self.hi > self.lo else None
            confidence = Counter(answers).most_common(1)[0][1] / n
        else:
            target, confidence = self.target, posterior_top(answers)
        if n >= self.lo and (target is None or confidence >= target):
            self.status[task] = "completed"
        elif n < self.hi:
            self.required[task] = n + 1
        else:
            self.status[task] = "completed"


def posterior_top(answers: list[str]) -> float:
    accuracy = PRIOR_CORRECT / (PRIOR_CORRECT + PRIOR_WRONG)
    k = len(LABELS)
    weight = {label: math.prod(accuracy if a == label else (1 - accuracy) / (k - 1) for a in answers)
              for label in LABELS}
    return max(weight.values()) / sum(weight.values())


def setup(database: Database, lo: int, hi: int, target: float | None, n_tasks: int,
          n_annotators: int) -> tuple[int, list[int], Model]:
    slug = f"p{next(_examples)}"
    with database.writer.begin() as session:
        org = users.create_org(session, name=slug, slug=slug)
        owner = users.create_user(session, email=f"owner@{slug}.test", role="owner", org_id=org.id)
        redundancy: dict[str, Any] = {"min": lo, "max": hi}
        if target is not None:
            redundancy["target"] = target
        project = projects.create_project(session, org_id=org.id, actor=owner, name="p", task=CLASSIFICATION,
                                          redundancy=redundancy)
        imports.import_tasks(session, project=project,
                             rows=[(n, {"data": {"text": f"t{n}"}}) for n in range(n_tasks)])
        people = [users.create_user(session, email=f"w{n}@{slug}.test", role="annotator").id
                  for n in range(n_annotators)]
        task_ids = list(session.scalars(select(Task.id).where(Task.project_id == project.id).order_by(Task.id)))
        return project.id, people, Model(lo, hi, target, task_ids)


redundancies = st.integers(1, 3).flatmap(
    lambda lo: st.tuples(st.just(lo), st.integers(lo, 4), st.sampled_from([None, 0.6, 0.75, 1.0]))
)


class Annotators(RuleBasedStateMachine):
    """Steps act on an annotator's latest lease whatever its state, like a client that
    still holds a stale page: that is how late, repeated and expired submits happen."""

    database: Database  # set by the test

    @initialize(redundancy=redundancies, n_tasks=st.integers(1, 4), n_annotators=st.integers(1, 4))
    def start(self, redundancy: tuple[int, int, float | None], n_tasks: int, n_annotators: int) -> None:
        self.project_id, self.people, self.model = setup(self.database, *redundancy, n_tasks, n_annotators)

    def latest(self, who: int) -> Lease | None:
        history = self.model.leases.get(self.people[who % len(self.people)], [])
        return history[-1] if history else None

    @rule(who=st.integers(0, 3))
    def take(self, who: int) -> None:
        annotator = self.people[who % len(self.people)]
        held = self.model.held(annotator)
        with self.database.writer.begin() as session:
            claimed = assignments.claim(session, project=session.get(Project, self.project_id),
                                        annotator=session.get(User, annotator), now=utcnow(), lease_seconds=LEASE)
        self.model.sweep()  # every claim first frees the project's expired leases
        if held is not None:  # a reload hands back the lease already held
            assert claimed is not None and claimed[0].id == held.id
            return
        assert (claimed[1].id if claimed else None) == self.model.next_task(annotator)
        if claimed is not None:
            self.model.leases.setdefault(annotator, []).append(Lease(claimed[0].id, claimed[1].id))

    @rule(who=st.integers(0, 3), label=st.sampled_from(LABELS))
    def work(self, who: int, label: str) -> None:
        """The common path: take the next task and answer it."""
        self.take(who)
        self.submit(who, label, times=1, back=0)

    @rule(who=st.integers(0, 3), label=st.sampled_from(LABELS), times=st.integers(1, 2), back=st.integers(0, 3))
    def submit(self, who: int, label: str, times: int, back: int) -> None:
        """Submit the latest lease (``back`` = 0) or an older one, once or twice."""
        history = self.model.leases.get(self.people[who % len(self.people)], [])
        if not history:
            return
        lease = history[max(0, len(history) - 1 - back)]
        for attempt in range(times):
            with self.database.writer.begin() as session:
                submit_and_compare(session, self.model, lease, session.get(User, self.people[who % len(self.people)]),
                                   label if attempt == 0 else LABELS[0])

    @rule(who=st.integers(0, 3))
    def skip(self, who: int) -> None:
        lease = self.latest(who)
        if lease is None:
            return
        try:
            with self.database.writer.begin() as session:
                assignments.skip(session, assignment_id=lease.id, now=utcnow(),
                                 annotator=session.get(User, self.people[who % len(self.people)]))
        except Conflict:
            assert lease.status in ("lapsed", "expired", "submitted"), lease
            return
        assert lease.status in ("live", "skipped"), lease
        lease.status = "skipped"

    @rule(who=st.integers(0, 3))
    def expire(self, who: int) -> None:
        lease = self.latest(who)
        if lease is None or lease.status != "live":
            return
        with self.database.writer.begin() as session:
            session.execute(update(Assignment).where(Assignment.id == lease.id)
                            .values(expires_at=utcnow() - timedelta(seconds=1)))
        lease.status = "lapsed"

    @rule(who=st.integers(0, 3))
    def renew(self, who: int) -> None:
        lease = self.latest(who)
        if lease is None:
            return
        now = utcnow()
        try:
            with self.database.writer.begin() as session:
                renewed = assignments.renew(session, assignment_id=lease.id, now=now, lease_seconds=LEASE,
                                            annotator=session.get(User, self.people[who % len(self.people)]))
                expires = renewed.expires_at
        except Conflict:
            assert lease.status != "live", lease
        else:
            assert lease.status == "live" and expires > now

    @invariant()
    def agrees_with_the_model(self) -> None:
        if hasattr(self, "model"):
            compare(self.database, self.model, self.project_id)


def submit_and_compare(session: Any, model: Model, lease: Lease, actor: User, label: str) -> None:
    try:
        done = annotations.submit(session, assignment_id=lease.id, annotator=actor, answer={"label": label},
                                  seconds=None, now=utcnow())
    except Conflict:
        assert lease.status in ("lapsed", "skipped", "expired"), lease
        return
    if lease.status == "submitted":  # a repeat returns the first annotation
        assert not done.created and done.annotation.id == lease.annotation
        return
    assert lease.status == "live" and done.created
    lease.status, lease.annotation = "submitted", done.annotation.id
    model.answer(lease.task, label)


def compare(database: Database, model: Model, project_id: int) -> None:
    with database.reader() as session:
        assert violations(session, project_id) == []
        for task in session.scalars(select(Task).where(Task.project_id == project_id)):
            assert (task.status, task.n_annotations, task.required) == (
                model.status[task.id], len(model.answers[task.id]), model.required[task.id]
            ), task.id
            assert task.n_claimed == model.claimed(task.id)
            assert model.lo <= task.required <= model.hi
        stored = dict(session.execute(select(Assignment.id, Assignment.status)
                                      .where(Assignment.project_id == project_id)).all())
        expected = {lease.id: "active" if lease.status in ("live", "lapsed") else lease.status
                    for lease in model.all_leases()}
        assert stored == expected


def test_random_annotator_behaviour_matches_the_model(database: Database) -> None:
    Annotators.database = database
    run_state_machine_as_test(Annotators, settings=settings(
        max_examples=MAX_EXAMPLES, stateful_step_count=40, deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    ))


def test_started_tasks_are_served_before_unstarted_ones(database: Database) -> None:
    """Finish what is open: a task someone began beats an earlier task nobody holds."""
    project_id, people, model = setup(database, 2, 2, None, 2, 4)
    machine = Annotators()
    machine.database, machine.project_id, machine.people, machine.model = database, project_id, people, model
    first, second = model.task_ids
    for who in (0, 1, 2):  # two fill the first task, the third starts the second
        machine.take(who)
    assert [model.leases[people[n]][0].task for n in (0, 1, 2)] == [first, first, second]
    machine.skip(0)
    machine.skip(1)  # the first task is free again, and unstarted
    machine.take(3)
    assert model.leases[people[3]][0].task == second
    machine.agrees_with_the_model()
