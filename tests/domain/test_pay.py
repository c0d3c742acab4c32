"""Pay and time through the domain functions, on the server's clock (``now`` given): the idle cap,
the ledger against the rates, the cost and effective-rate reports, the payout CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from qistas.db.engine import Database
from qistas.db.models import Annotation, PayEntry, Project, User
from qistas.db.unit_of_work import write
from qistas.domain import annotations, assignments, imports, pay, pay_reports, projects, users
from qistas.domain.currencies import EXPONENTS, major
from qistas.errors import Invalid
from tests.factories import CLASSIFICATION

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LEASE = 3600
IDLE = 300


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


def make_project(database: Database, *, rate: dict[str, Any], n_tasks: int, n_annotators: int = 1,
                 redundancy: int = 1) -> tuple[int, list[int]]:
    with database.writer.begin() as session:
        org = users.create_org(session, name="Acme", slug="acme")
        owner = users.create_user(session, email="owner@acme.test", role="owner", org_id=org.id)
        project = projects.create_project(session, org_id=org.id, actor=owner, name="paid", task=CLASSIFICATION,
                                          redundancy={"min": redundancy, "max": redundancy}, pay=rate)
        imports.import_tasks(session, project=project,
                             rows=[(n, {"data": {"text": f"item {n}"}}) for n in range(n_tasks)])
        people = [users.create_user(session, email=f"w{n}@crowd.test", role="annotator").id
                  for n in range(n_annotators)]
        return project.id, people


def work(database: Database, project_id: int, annotator_id: int, *, took: datetime,
         renewed: tuple[datetime, ...] = (), submitted: datetime, client_seconds: float | None = None) -> int:
    """One task taken, its lease renewed at ``renewed``, answered at ``submitted``: the annotation's id."""

    def go(session: Any) -> int:
        project = session.get(Project, project_id)
        annotator = session.get(User, annotator_id)
        claimed = assignments.claim(session, project=project, annotator=annotator, now=took, lease_seconds=LEASE)
        assert claimed is not None
        lease_id = claimed[0].id
        for moment in renewed:
            assignments.renew(session, assignment_id=lease_id, annotator=annotator, now=moment, lease_seconds=LEASE,
                              idle_seconds=IDLE)
        done = annotations.submit(session, assignment_id=lease_id, annotator=annotator, answer={"label": "positive"},
                                  seconds=client_seconds, now=submitted, idle_seconds=IDLE)
        return done.annotation.id

    return write(database, go)


def stored(database: Database, annotation_id: int) -> Annotation:
    with database.reader() as session:
        found = session.get(Annotation, annotation_id)
        assert found is not None
        session.expunge(found)
        return found


def test_time_is_the_servers_and_each_idle_stretch_is_capped(database: Database) -> None:
    # 3600 cents an hour: a cent a second, so the earning reads as the seconds counted.
    pid, (worker,) = make_project(database, rate={"currency": "USD", "per_hour": 3600}, n_tasks=5)
    # Take, renew after 100 s, renew after 900 s more (counted 300), submit 30 s later; the
    # client claims 5 s, which counts for nothing.
    first = stored(database, work(database, pid, worker, took=T0, renewed=(T0 + seconds(100), T0 + seconds(1000)),
                                  submitted=T0 + seconds(1030), client_seconds=5))
    assert (first.active_ms, first.pay_minor, first.pay_currency, first.seconds) == (430_000, 430, "USD", 5)
    # Taken and left for 2000 s without a renewal: one stretch, capped.
    start = T0 + seconds(5000)
    left = stored(database, work(database, pid, worker, took=start, submitted=start + seconds(2000)))
    assert (left.active_ms, left.pay_minor) == (300_000, 300)
    # Milliseconds kept; the earning rounded half up to a whole cent.
    start += seconds(5000)
    quick = stored(database, work(database, pid, worker, took=start, submitted=start + seconds(12.345)))
    assert (quick.active_ms, quick.pay_minor) == (12_345, 12)
    start += seconds(5000)
    half = stored(database, work(database, pid, worker, took=start, submitted=start + seconds(12.5)))
    assert (half.active_ms, half.pay_minor) == (12_500, 13)


def test_the_ledger_adds_up_the_answers_at_the_rate_of_their_time(database: Database) -> None:
    pid, (amal, badr) = make_project(database, rate={"currency": "EGP", "per_task": 150}, n_tasks=8,
                                     n_annotators=2)
    moment = T0
    for who in (amal, amal, amal, badr):
        work(database, pid, who, took=moment, submitted=moment + seconds(40))
        moment += seconds(60)
    with database.writer.begin() as session:  # a new rate: for the answers from now on only
        project = session.get(Project, pid)
        owner = session.scalar(select(User).where(User.role == "owner"))
        assert project is not None and owner is not None
        projects.update_project(session, project=project, actor=owner, changes={"pay": {"currency": "EGP",
                                                                                          "per_task": 200}},
                                now=moment)
    for who in (amal, badr, badr):
        work(database, pid, who, took=moment, submitted=moment + seconds(40))
        moment += seconds(60)
    with database.writer.begin() as session:
        amal_user = session.get(User, amal)
        assert amal_user is not None
        pay.correct(session, user=amal_user, actor=None, amount_minor=-150, currency="EGP",
                    reason="one answer copied", project=session.get(Project, pid), now=moment)
    with database.reader() as session:
        mine = pay.earnings_of(session, user_id=amal, since=None, until=None)
        theirs = pay.earnings_of(session, user_id=badr, since=None, until=None)
        # Only the period's: the first two answers of Amal.
        early = pay.earnings_of(session, user_id=amal, since=T0, until=T0 + seconds(120))
        rows = pay.payouts(session, org_id=None, since=None, until=None)
        ledger = session.execute(select(Annotation.annotator_id, Annotation.pay_minor)).all()
    assert [(t.currency, t.answers, t.earned_minor, t.corrections_minor, t.total_minor) for t in mine.totals] == [
        ("EGP", 4, 3 * 150 + 200, -150, 3 * 150 + 200 - 150)]
    assert [(t.answers, t.earned_minor, t.total_minor) for t in theirs.totals] == [(3, 150 + 2 * 200, 550)]
    assert (mine.answers, mine.active_ms) == (4, 4 * 40_000)
    assert [(p.project_id, p.work_name != "", p.earned_minor) for p in mine.projects] == [(pid, True, 650)]
    assert [e.reason for e in mine.corrections] == ["one answer copied"]
    assert (early.answers, [t.earned_minor for t in early.totals]) == (2, [300])
    # The payout and the statements agree with the answers one by one.
    assert sum(amount for _, amount in ledger) == mine.totals[0].earned_minor + theirs.totals[0].earned_minor
    owed = {row.email: (row.answers, row.earned_minor, row.corrections_minor, row.total_minor) for row in rows}
    assert owed == {"w0@crowd.test": (4, 650, -150, 500), "w1@crowd.test": (3, 550, 0, 550)}
    lines = list(csv.DictReader(io.StringIO(pay.payout_csv(rows))))
    assert [(line["email"], line["currency"], line["total_minor"], line["total"]) for line in lines] == [
        ("w0@crowd.test", "EGP", "500", "5.00"), ("w1@crowd.test", "EGP", "550", "5.50")]
    assert pay.by_currency(rows) == {"EGP": 1050}


def test_a_payout_lists_a_workforce_larger_than_a_statement_takes_parameters(database: Database) -> None:
    """70,000 people owed something in the period (more than the 65,535 parameters one PostgreSQL
    statement takes): each is on the payout, named, with what they are owed."""
    many = 70_000
    with database.writer.begin() as session:
        session.execute(insert(User), [{"email": f"p{n}@crowd.test", "role": "annotator"} for n in range(many)])
        people = list(session.scalars(select(User.id).where(User.email.like("p%@crowd.test")).order_by(User.id)))
        session.execute(insert(PayEntry), [{"user_id": user_id, "currency": "EGP", "amount_minor": 100 + n % 7,
                                            "reason": "bonus", "created_at": T0} for n, user_id in enumerate(people)])
    with database.reader() as session:
        rows = pay.payouts(session, org_id=None, since=None, until=None)
    assert len(rows) == many
    assert {row.user_id: (row.email, row.total_minor) for row in rows} == {
        user_id: (f"p{n}@crowd.test", 100 + n % 7) for n, user_id in enumerate(people)}


def test_cost_per_label_and_per_completed_task(database: Database) -> None:
    pid, people = make_project(database, rate={"currency": "KWD", "per_task": 125}, n_tasks=3, n_annotators=2,
                               redundancy=2)
    moment = T0
    for who in people:  # both answer tasks 1 and 2; the third stays open with one answer
        for _ in range(2):
            work(database, pid, who, took=moment, submitted=moment + seconds(20))
            moment += seconds(30)
    work(database, pid, people[0], took=moment, submitted=moment + seconds(20))
    with database.writer.begin() as session:
        project = session.get(Project, pid)
        worker = session.get(User, people[1])
        assert project is not None and worker is not None
        pay.correct(session, user=worker, actor=None, amount_minor=50, currency="KWD", reason="bonus",
                    project=project, now=moment)
        (line,) = pay_reports.project_cost(session, project=project, since=None, until=None)
    assert (line.currency, line.answers, line.answers_minor, line.corrections_minor, line.total_minor) == (
        "KWD", 5, 625, 50, 675)
    assert (line.per_label_minor, line.completed_tasks, line.completed_minor, line.per_completed_task_minor) == (
        125, 2, 500, 250)
    assert major(675, "KWD") == "0.675" and EXPONENTS["JPY"] == 0


def test_the_effective_rate_flags_a_per_task_rate_too_low_for_the_time_taken(database: Database) -> None:
    pid, (worker,) = make_project(database, rate={"currency": "USD", "per_task": 10, "floor_per_hour": 1200},
                                  n_tasks=5)
    moment = T0
    for taken in (30, 40, 45, 60, 90):
        work(database, pid, worker, took=moment, submitted=moment + seconds(taken))
        moment += seconds(100)
    with database.reader() as session:
        project = session.get(Project, pid)
        assert project is not None
        (line,) = pay_reports.hourly_report(session, project=project, since=None, until=None)
    # 10 cents in 30, 40, 45, 60, 90 s: 12.00, 9.00, 8.00, 6.00, 4.00 an hour.
    assert (line.currency, line.answers, line.median_seconds, line.p90_seconds) == ("USD", 5, 45.0, 90.0)
    assert (line.median_hourly_minor, line.floor_per_hour, line.share_below_floor, line.below_floor) == (
        800, 1200, 0.8, True)
    assert line.per_task_for_floor == 15  # 15 cents in 45 s is 12.00 an hour


@pytest.mark.parametrize(("raw", "field"), [
    ({"currency": "usd", "per_task": 1}, "pay.currency"), ({"currency": "XYZ", "per_task": 1}, "pay.currency"),
    ({"per_task": 1}, "pay.currency"), ({"currency": "USD", "per_task": -1}, "pay.per_task"),
    ({"currency": "USD", "per_task": 1.5}, "pay.per_task"), ({"currency": "USD", "per_hour": True}, "pay.per_hour"),
    ({"currency": "USD", "per_hour": "15"}, "pay.per_hour"), ({"currency": "USD"}, "pay"),
    ({"currency": "USD", "per_task": 1, "per_hour": 1}, "pay"),
    ({"currency": "USD", "per_task": 1, "tip": 1}, "pay.tip"),
    ({"currency": "USD", "per_task": 1, "floor_per_hour": -1}, "pay.floor_per_hour"), ("USD 12", "pay"),
    ({"currency": "USD", "per_task": 10**10}, "pay.per_task"),
])
def test_bad_settings_name_their_field(raw: Any, field: str) -> None:
    with pytest.raises(Invalid) as refused:
        pay.parse_pay(raw)
    assert refused.value.details == {"field": field}


def test_good_settings_are_kept_as_given() -> None:
    assert pay.parse_pay({}) == {} and pay.parse_pay(None) == {}
    assert pay.parse_pay({"currency": "SAR", "per_hour": 4500, "floor_per_hour": 4000}) == {
        "currency": "SAR", "per_hour": 4500, "floor_per_hour": 4000}
    assert pay.rate_view({"currency": "SAR", "per_hour": 4500, "floor_per_hour": 4000}) == {
        "currency": "SAR", "per_hour": 4500}
    assert pay.earned({}, active=10_000) == (None, None)
    assert pay.earned({"currency": "JPY", "per_task": 30}, active=0) == (30, "JPY")
