"""The review stage under concurrency, over real HTTP: reviewers, annotators and the customer at once.

Every task of a project is held for review. Reviewers take leases and accept, correct or
reject one answer; they also submit twice (one after the other, and racing from a second
connection with another verdict), take again while holding a lease, and walk away from one.
Annotators answer the tasks sent back; the customer audits delivered tasks, two people of the
organization sometimes racing on one task. Afterwards the database is checked against the
invariants of ``domain/reviews.py``: one submitted review per task and round, lease lifetimes
on a task that never overlap, counters that count only the answers not rejected, exactly the
annotations a task still needs, one stored verdict per double submit, and annotator evidence
(``worker_stats.n_reviewed``) counted once per verdict. With several ``qistas serve``
processes on one database, the locks must hold across processes too. Last, a verdict and an
annotator's answer each race the customer's cancel of their task: one of the two wins.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from qistas.db.engine import Database
from qistas.db.models import Annotation, Assignment, Review, Task, WorkerStats
from qistas.db.types import utcnow
from tests.api.helpers import all_tasks
from tests.api.test_engine_processes import request, serve_processes, twin
from tests.conftest import LiveServer
from tests.engine_checks import Tally, status_counts
from tests.factories import CLASSIFICATION, Tenant, make_reviewer, make_tenant

LABELS = CLASSIFICATION["labels"]
N_TASKS = 40
N_ANNOTATORS = 10  # 2 answers a task, up to 2 sent back, one more after an audit: 5 at most
N_REVIEWERS = 6
MAX_REJECTS = 2  # per task, so that every task ends
DEADLINE_SECONDS = 240
RACES = 30  # tasks raced one at a time against a cancel
DELIVERED = {"accept": "accepted", "correct": "corrected"}  # the task's review status after each
AUDITED = {"accept": "accepted", "reject": "rejected"}  # its audit status


@dataclass(frozen=True)
class Verdict:
    task_id: int
    action: str
    annotation: int | None  # the answer rejected
    answers: tuple[int, ...]  # the answers the lease showed: each is judged by an accept or correct
    wrong: tuple[int, ...]  # of those, the ones that differ from the answer delivered


@dataclass
class Run:
    project_id: int
    reopen: str  # the policy's: what an audit's rejection does
    tally: Tally = field(default_factory=Tally)
    verdicts: dict[int, Verdict] = field(default_factory=dict)  # stored reviews (a 201), by id
    audits: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))  # task -> audits stored
    rejects: Counter[int] = field(default_factory=Counter)  # task -> rejections stored
    done: threading.Event = field(default_factory=threading.Event)
    audited_all: threading.Event = field(default_factory=threading.Event)

    def store(self, lease: dict[str, Any], answer: httpx.Response) -> None:
        body = answer.json()
        delivered = body["answer"] if body["action"] == "correct" else lease["response"]
        with self.tally.lock:
            if body["id"] in self.verdicts:
                self.tally.errors.append(f"review {body['id']} answered 201 twice")
            self.verdicts[body["id"]] = Verdict(lease["task"]["id"], body["action"], body["annotation"],
                                                tuple(a["id"] for a in lease["answers"]),
                                                tuple(a["id"] for a in lease["answers"] if a["answer"] != delivered))
            if body["action"] == "reject":
                self.rejects[lease["task"]["id"]] += 1


def at_once(*calls: Any) -> list[Any]:
    """Run the calls in threads released together; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def go(n: int) -> None:
        barrier.wait()
        results[n] = calls[n]()

    threads = [threading.Thread(target=go, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def verdict(run: Run, lease: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    roll = rng.random()
    if roll < 0.3 and run.rejects[lease["task"]["id"]] < MAX_REJECTS:
        return {"action": "reject", "reason": f"wrong, says reviewer {rng.random():.3f}",
                "annotation": rng.choice(lease["answers"])["id"]}
    if roll < 0.45:
        return {"action": "correct", "answer": {"label": rng.choice(LABELS)}}
    return {"action": "accept"}


def reviewer_loop(run: Run, database: Database, client: httpx.Client, other: httpx.Client, seed: int) -> None:
    rng = random.Random(seed)
    tally, pid = run.tally, run.project_id
    try:
        while not run.done.is_set():
            taken = request(tally, client, f"/projects/{pid}/reviews")
            if taken.status_code == 204:
                time.sleep(0.02)
                continue
            if taken.status_code != 201:
                tally.fail(f"take review: {taken.status_code} {taken.text[:200]}")
                return
            lease = taken.json()
            path = f"/reviews/{lease['id']}"
            roll = rng.random()
            if roll < 0.08:
                walk_away(run, database, client, lease, verdict(run, lease, rng))
            elif roll < 0.55:
                answer = request(tally, client, path, json=verdict(run, lease, rng))
                expect_stored(run, lease, answer)
                tally.add("submitted")
            elif roll < 0.7:  # a double click, then a retry from elsewhere with another verdict
                first = request(tally, client, path, json=verdict(run, lease, rng))
                expect_stored(run, lease, first)
                again = request(tally, other, path, json=verdict(run, lease, rng))
                if again.status_code != 200 or again.json() != first.json():
                    tally.fail(f"repeated review {lease['id']}: {again.status_code} {again.text[:200]}")
                tally.add("double")
            elif roll < 0.85:  # two tabs at the same instant, each with its own verdict
                racing_reviews(run, lease, [(client, verdict(run, lease, rng)), (other, verdict(run, lease, rng))])
            else:  # a reload: taking again hands back the same lease
                again = request(tally, other, f"/projects/{pid}/reviews")
                if again.status_code != 201 or again.json()["id"] != lease["id"]:
                    tally.fail(f"retake while holding review {lease['id']}: {again.status_code} {again.text[:100]}")
                expect_stored(run, lease, request(tally, client, path, json=verdict(run, lease, rng)))
                tally.add("retaken")
    except Exception as exc:  # any error is a finding; the test reports it
        tally.fail(f"reviewer: {type(exc).__name__}: {exc}")


def expect_stored(run: Run, lease: dict[str, Any], answer: httpx.Response) -> None:
    if answer.status_code != 201:
        run.tally.fail(f"review {lease['id']}: {answer.status_code} {answer.text[:200]}")
        return
    run.store(lease, answer)


def racing_reviews(run: Run, lease: dict[str, Any], tabs: list[tuple[httpx.Client, dict[str, Any]]]) -> None:
    answers = at_once(*(partial(request, run.tally, client, f"/reviews/{lease['id']}", json=body)
                        for client, body in tabs))
    codes = sorted(a.status_code for a in answers)
    if codes != [200, 201] or answers[0].json() != answers[1].json():
        run.tally.fail(f"racing reviews of {lease['id']}: {codes} {[a.text[:100] for a in answers]}")
        return
    run.store(lease, next(a for a in answers if a.status_code == 201))
    run.tally.add("raced")


def walk_away(run: Run, database: Database, client: httpx.Client, lease: dict[str, Any], body: dict[str, Any]) -> None:
    """The lease runs out (as if its reviewer left for longer than the lease): a late submit
    answers 409 and stores nothing; the task is free for any reviewer."""
    past = utcnow() - timedelta(seconds=1)
    with database.writer.begin() as session:
        session.execute(update(Review).where(Review.id == lease["id"]).values(expires_at=past))
        session.execute(update(Task).where(Task.id == lease["task"]["id"]).values(review_until=past))
    late = request(run.tally, client, f"/reviews/{lease['id']}", json=body)
    if late.status_code != 409 or late.json()["error"]["code"] != "conflict":
        run.tally.fail(f"submit of an expired review {lease['id']}: {late.status_code} {late.text[:200]}")
    with database.reader() as session:
        if session.scalar(select(Review.status).where(Review.id == lease["id"])) == "submitted":
            run.tally.fail(f"an expired review {lease['id']} was stored")
    run.tally.add("walked away")


def annotator_loop(run: Run, client: httpx.Client, seed: int) -> None:
    rng = random.Random(seed)
    tally, pid = run.tally, run.project_id
    try:
        while not run.done.is_set():
            taken = request(tally, client, f"/projects/{pid}/assignments")
            if taken.status_code == 204:
                time.sleep(0.02)
                continue
            if taken.status_code != 201:
                tally.fail(f"take: {taken.status_code} {taken.text[:200]}")
                return
            body = {"answer": {"label": rng.choice(LABELS)}, "seconds": 1}
            done = request(tally, client, f"/assignments/{taken.json()['id']}/submit", json=body)
            if done.status_code != 201:
                tally.fail(f"submit: {done.status_code} {done.text[:200]}")
            tally.add("annotated")
    except Exception as exc:
        tally.fail(f"annotator: {type(exc).__name__}: {exc}")


def auditor_loop(run: Run, owner: httpx.Client, member: httpx.Client, seed: int) -> None:
    """The customer audits each task once, as it is delivered; two people race on some."""
    rng = random.Random(seed)
    seen: set[int] = set()
    try:
        while len(seen) < N_TASKS and not run.done.is_set():
            fresh = [t["id"] for t in all_tasks(owner, run.project_id, status="completed") if t["id"] not in seen]
            if not fresh:
                time.sleep(0.05)
                continue
            for task_id in fresh:
                seen.add(task_id)
                bodies = [audit_body(rng) for _ in range(2)]
                if rng.random() < 0.4:
                    racing_audits(run, task_id, [(owner, bodies[0]), (member, bodies[1])])
                    continue
                answer = request(run.tally, owner, f"/tasks/{task_id}/audit", json=bodies[0])
                if answer.status_code != 201:
                    run.tally.fail(f"audit of {task_id}: {answer.status_code} {answer.text[:200]}")
                    continue
                run.audits[task_id].append(answer.json()["review"]["audit"])
        run.audited_all.set()
    except Exception as exc:
        run.tally.fail(f"auditor: {type(exc).__name__}: {exc}")


def audit_body(rng: random.Random) -> dict[str, Any]:
    if rng.random() < 0.3:
        return {"accepted": False, "reason": "the labels here are mixed"}
    return {"accepted": True}


def racing_audits(run: Run, task_id: int, people: list[tuple[httpx.Client, dict[str, Any]]]) -> None:
    answers = at_once(*(partial(request, run.tally, client, f"/tasks/{task_id}/audit", json=body)
                        for client, body in people))
    codes = sorted(a.status_code for a in answers)
    stored = [a.json()["review"]["audit"] for a in answers if a.status_code == 201]
    # The second finds the task audited, or (after a rejection) no longer delivered; or, when
    # the first rejected it, delivered again in a new round before the second got its lock.
    if codes != [201, 409] and not (codes == [201, 201] and "rejected" in stored):
        run.tally.fail(f"racing audits of task {task_id}: {codes} {[a.text[:120] for a in answers]}")
        return
    run.audits[task_id] += stored
    run.tally.add("audits raced")


def annotate_all(run: Run, annotators: list[httpx.Client]) -> None:
    """Everything answered before any reviewer starts: every task waits for review."""

    def loop(client: httpx.Client, seed: int) -> None:
        rng = random.Random(seed)
        while (taken := request(run.tally, client, f"/projects/{run.project_id}/assignments")).status_code == 201:
            body = {"answer": {"label": rng.choice(LABELS)}}
            if request(run.tally, client, f"/assignments/{taken.json()['id']}/submit", json=body).status_code != 201:
                run.tally.fail("submit while filling the project")
        if taken.status_code != 204:
            run.tally.fail(f"take while filling the project: {taken.status_code}")

    threads = [threading.Thread(target=loop, args=(c, n)) for n, c in enumerate(annotators)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)


def review_run(database: Database, project: dict[str, Any], annotators: list[httpx.Client],
               reviewers: list[tuple[httpx.Client, httpx.Client]], owner: httpx.Client,
               member: httpx.Client) -> Run:
    project_id = project["id"]
    run = Run(project_id, project["review"].get("reopen", "annotate"))
    annotate_all(run, annotators)
    assert status_counts(database, project_id) == {"review": N_TASKS}
    threads = [threading.Thread(target=annotator_loop, args=(run, c, 100 + n)) for n, c in enumerate(annotators)]
    threads += [threading.Thread(target=reviewer_loop, args=(run, database, c, o, 200 + n))
                for n, (c, o) in enumerate(reviewers)]
    threads.append(threading.Thread(target=auditor_loop, args=(run, owner, member, 300)))
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + DEADLINE_SECONDS
    try:
        while not (run.audited_all.is_set() and status_counts(database, project_id) == {"completed": N_TASKS}):
            if time.monotonic() > deadline:
                run.tally.fail(f"not done in {DEADLINE_SECONDS} s: {status_counts(database, project_id)}")
                break
            if run.tally.errors:
                break
            time.sleep(0.1)
    finally:
        run.done.set()
        for thread in threads:
            thread.join(timeout=60)
            assert not thread.is_alive(), "a thread hung"
    return run


# --- the invariants, read from the database ---------------------------------------------


def violations(database: Database, run: Run) -> list[str]:
    """Every broken review invariant of the run's project, with the evidence."""
    pid = run.project_id
    found: list[str] = []
    with database.reader() as session:
        tasks = {t.id: t for t in session.scalars(select(Task).where(Task.project_id == pid))}
        answers = session.execute(select(Annotation.id, Annotation.task_id, Annotation.annotator_id,
                                         Annotation.rejected_at).where(Annotation.project_id == pid)).all()
        leases = session.execute(select(Assignment.task_id, Assignment.annotator_id, Assignment.status)
                                 .where(Assignment.project_id == pid)).all()
        reviews = session.scalars(select(Review).where(Review.project_id == pid).order_by(Review.id)).all()
        stats = {s.annotator_id: s for s in session.scalars(select(WorkerStats).where(WorkerStats.project_id == pid))}
    now = utcnow()
    counted = Counter(a.task_id for a in answers if a.rejected_at is None)
    live = Counter(lease.task_id for lease in leases if lease.status == "active")
    by_task: dict[int, list[Review]] = defaultdict(list)
    for review in reviews:
        by_task[review.task_id].append(review)
    annotator_of = {a.id: a.annotator_id for a in answers}
    # Counters count only the answers that still count; a task gets exactly what it needs.
    for task in tasks.values():
        if task.n_annotations != counted[task.id]:
            found.append(f"task {task.id}: n_annotations {task.n_annotations}, {counted[task.id]} not rejected")
        if task.n_claimed != counted[task.id] + live[task.id] or task.n_claimed > task.required:
            found.append(f"task {task.id}: n_claimed {task.n_claimed}, required {task.required}, "
                         f"{counted[task.id]} counted + {live[task.id]} leases")
        audit_rejects = sum(r.stage == "audit" and r.action == "reject" for r in by_task[task.id])
        reopened_to_annotate = audit_rejects if run.reopen == "annotate" else 0
        if task.required != 2 + reopened_to_annotate or counted[task.id] != task.required:
            found.append(f"task {task.id}: required {task.required}, {counted[task.id]} counted, "
                         f"{audit_rejects} audit rejections")
        found += _rounds(task, by_task[task.id])
        found += _lifetimes(task.id, [r for r in by_task[task.id] if r.stage == "review"], now)
    # An annotator never gets a task twice, not even one whose answer was sent back.
    for what, pairs in (("answered", Counter((a.task_id, a.annotator_id) for a in answers)),
                        ("was served", Counter((t, a) for t, a, _ in leases))):
        found += [f"task {t}: annotator {a} {what} it {n} times" for (t, a), n in pairs.items() if n > 1]
    # A rejected answer is the one its reject review named, and only that one.
    rejected = {a.id for a in answers if a.rejected_at is not None}
    named = [r.annotation_id for r in reviews if r.status == "submitted" and r.action == "reject"
             and r.stage == "review"]
    if sorted(named) != sorted(rejected):
        found.append(f"rejected answers {sorted(rejected)} but reject reviews named {sorted(named)}")
    # What the reviewers were told was stored is what is stored: one review per double submit.
    stored = {r.id: (r.task_id, r.action, r.annotation_id) for r in reviews
              if r.stage == "review" and r.status == "submitted"}
    told = {i: (v.task_id, v.action, v.annotation) for i, v in run.verdicts.items()}
    if stored != told:
        found.append(f"stored reviews differ from the 201 answers: {sorted(set(stored.items()) ^ set(told.items()))}")
    audits: dict[int, list[str]] = defaultdict(list)
    for review in reviews:
        if review.stage == "audit":
            audits[review.task_id].append(AUDITED[review.action or ""])
    if {t: sorted(a) for t, a in audits.items()} != {t: sorted(a) for t, a in run.audits.items()}:
        found.append(f"stored audits {dict(audits)} differ from the 201 answers {dict(run.audits)}")
    # Each verdict is evidence about the annotators it judged, counted once: a rejection
    # against the answer rejected, a pass for or against each answer, as it matches the result.
    judged: Counter[int] = Counter()
    wrong: Counter[int] = Counter()
    for v in run.verdicts.values():
        if v.action == "reject":
            assert v.annotation is not None
            judged[annotator_of[v.annotation]] += 1
            wrong[annotator_of[v.annotation]] += 1
        else:
            judged.update(annotator_of[a] for a in v.answers)
            wrong.update(annotator_of[a] for a in v.wrong)
    for annotator_id in set(stats) | set(judged):
        row = stats.get(annotator_id)
        got = (row.n_reviewed, row.n_rejected) if row is not None else (0, 0)
        if got != (judged[annotator_id], wrong[annotator_id]):
            found.append(f"annotator {annotator_id}: n_reviewed, n_rejected {got}, "
                         f"verdicts {(judged[annotator_id], wrong[annotator_id])}")
    return found


def _rounds(task: Task, reviews: list[Review]) -> list[str]:
    """One submitted review per round, every round; a round ends in a rejection, or in a
    pass that the customer's audit rejected, except the last, which passed."""
    found = []
    done = [r for r in reviews if r.stage == "review" and r.status == "submitted"]
    rounds = Counter(r.round for r in done)
    if sorted(rounds) != list(range(task.review_round + 1)) or any(n != 1 for n in rounds.values()):
        found.append(f"task {task.id}: submitted reviews per round {dict(rounds)}, round {task.review_round}")
    audits = sorted((r for r in reviews if r.stage == "audit"), key=lambda r: r.round)
    if len({r.round for r in audits}) != len(audits) or any(r.status != "submitted" for r in audits):
        found.append(f"task {task.id}: audits per round {Counter((r.round, r.status) for r in audits)}")
    # Only a rejection opens another round: every audit but the last rejected.
    if any(r.action != "reject" for r in audits[:-1]) or (
            audits and task.audit_status != AUDITED[audits[-1].action]):
        found.append(f"task {task.id}: audits {[(r.round, r.action) for r in audits]}, audit {task.audit_status}")
    audit_rejected = {r.round for r in audits if r.action == "reject"}
    for review in done:
        last = review.round == task.review_round
        ended = review.action in ("accept", "correct") if last else (
            review.action == "reject" or review.round in audit_rejected)
        if not ended:
            found.append(f"task {task.id}: round {review.round} of {task.review_round} ended with {review.action}")
        if last and (task.status, task.review_status) != ("completed", DELIVERED.get(review.action)):
            found.append(f"task {task.id}: {task.status}, review {task.review_status} after {review.action}")
        if last and review.action == "correct" and (task.method, task.response) != ("review", review.answer):
            found.append(f"task {task.id}: corrected to {review.answer} but delivers {task.response} ({task.method})")
    return found


def _lifetimes(task_id: int, leases: list[Review], now: Any) -> list[str]:
    """Two reviewers never hold one task: each lease on it ends (submitted, or run out) before
    the next one begins, and none is live once the task is delivered."""
    found = []
    leases = sorted(leases, key=lambda r: (r.created_at, r.id))
    for before, after in zip(leases, leases[1:], strict=False):
        ends = min(t for t in (before.ended_at, before.expires_at) if t is not None)
        if after.created_at < ends:
            found.append(f"task {task_id}: review {after.id} taken at {after.created_at} while review "
                         f"{before.id} held it until {ends}")
    found += [f"task {task_id}: review {r.id} still live" for r in leases
              if r.status == "active" and r.expires_at is not None and r.expires_at > now]
    return found


def assert_sound(database: Database, run: Run, annotators: list[httpx.Client]) -> None:
    assert run.tally.errors == []
    assert not [k for k in run.tally.counts if k.startswith("HTTP 5")], run.tally.counts
    assert status_counts(database, run.project_id) == {"completed": N_TASKS}
    assert violations(database, run) == []
    for path in ("submitted", "double", "raced", "retaken", "walked away", "audits raced"):
        assert run.tally.counts[path] > 0, (path, run.tally.counts)
    actions = Counter(v.action for v in run.verdicts.values())
    assert min(actions[a] for a in ("accept", "correct", "reject")) > 0, actions
    assert any("rejected" in a for a in run.audits.values()), run.audits
    # Each annotator reads exactly their own answers that were sent back.
    with database.reader() as session:
        rejected = set(session.execute(select(Annotation.id, Annotation.annotator_id).where(
            Annotation.project_id == run.project_id, Annotation.rejected_at.is_not(None))).all())
    told = set()
    for client in annotators:
        me = client.get("/me").json()["id"]
        told |= {(r["annotation"], me) for r in client.get(f"/projects/{run.project_id}/rejections").json()}
    assert told == rejected


# --- one server, threads -----------------------------------------------------------------


@pytest.fixture
def crowd(server: LiveServer, database: Database) -> Iterator[Tenant]:
    with make_tenant(database, server.url, "crowd", n_annotators=N_ANNOTATORS) as found:
        yield found


@pytest.mark.slow
def test_reviewers_annotators_and_auditors_at_once_keep_every_invariant(
        crowd: Tenant, server: LiveServer, database: Database) -> None:
    project = crowd.project(redundancy={"min": 2, "max": 2}, review={"share": 1})
    crowd.add_tasks(project["id"], [{"data": {"text": f"item {n}"}} for n in range(N_TASKS)])
    with ExitStack() as stack:
        reviewers = []
        for n in range(N_REVIEWERS):
            reviewer = stack.enter_context(make_reviewer(database, server.url, f"reviewer{n}"))
            reviewers.append((reviewer, stack.enter_context(twin(reviewer))))
        run = review_run(database, project, crowd.annotators, reviewers, crowd.owner, crowd.member)
    assert_sound(database, run, crowd.annotators)


# --- several server processes on one database --------------------------------------------


@pytest.mark.slow
def test_the_review_stage_across_server_processes(database: Database, db_url: str, tmp_path: Path) -> None:
    """Three servers: each annotator and reviewer on one of them, a reviewer's second
    connection on another, the two auditors on different ones; a rejected audit reopens the
    task straight for review."""
    with serve_processes(db_url, tmp_path, 3) as urls, \
            make_tenant(database, urls[0], "crowd", n_annotators=N_ANNOTATORS) as crowd, ExitStack() as stack:
        project = crowd.project(redundancy={"min": 2, "max": 2}, review={"share": 1, "reopen": "review"})
        crowd.add_tasks(project["id"], [{"data": {"text": f"item {n}"}} for n in range(N_TASKS)])
        annotators = [stack.enter_context(twin(c, urls[n % 3] + "/api/v1")) for n, c in enumerate(crowd.annotators)]
        reviewers = []
        for n in range(N_REVIEWERS):
            reviewer = stack.enter_context(make_reviewer(database, urls[n % 3], f"reviewer{n}"))
            reviewers.append((reviewer, stack.enter_context(twin(reviewer, urls[(n + 1) % 3] + "/api/v1"))))
        member = stack.enter_context(twin(crowd.member, urls[1] + "/api/v1"))
        run = review_run(database, project, annotators, reviewers, crowd.owner, member)
        assert_sound(database, run, annotators)


# --- a verdict racing the customer's cancel ----------------------------------------------


def test_a_verdict_and_a_cancel_at_once_one_wins(crowd: Tenant, server: LiveServer, database: Database) -> None:
    """Whichever commits first wins: a delivered task is not canceled afterwards (it was, on
    PostgreSQL, when the cancel had read the task before the verdict committed), and a
    canceled task takes no verdict."""
    project = crowd.project(redundancy={"min": 1, "max": 1}, review={"share": 1})
    crowd.add_tasks(project["id"], [{"data": {"text": f"item {i}"}} for i in range(RACES)])
    run = Run(project["id"], "annotate")
    annotate_all(run, crowd.annotators[:3])
    outcomes: Counter[tuple[int, int, str]] = Counter()
    with make_reviewer(database, server.url, "rita") as reviewer:
        for i in range(RACES):
            lease = reviewer.post(f"/projects/{project['id']}/reviews").json()
            body = {"action": "reject", "reason": "no"} if i % 2 else {"action": "accept"}
            verdict, cancel = at_once(
                partial(request, run.tally, reviewer, f"/reviews/{lease['id']}", json=body),
                partial(request, run.tally, crowd.owner, f"/tasks/{lease['task']['id']}/cancel"))
            task = crowd.owner.get(f"/tasks/{lease['task']['id']}").json()
            outcomes[(verdict.status_code, cancel.status_code, task["status"])] += 1
            # A rejected task is pending again, so a cancel after the rejection is one too.
            allowed = {(201, 409, "completed"), (409, 200, "canceled")} if i % 2 == 0 else {
                (201, 200, "canceled"), (409, 200, "canceled")}
            assert (verdict.status_code, cancel.status_code, task["status"]) in allowed, (verdict.text, cancel.text)
    assert run.tally.errors == [] and not [k for k in run.tally.counts if k.startswith("HTTP 5")]
    assert counter_violations(database, project["id"]) == [], outcomes


def test_an_answer_and_a_cancel_at_once_one_wins(crowd: Tenant, database: Database) -> None:
    """The same race with the annotator's submit: completed with its answer, or canceled with
    the answer refused, never both."""
    project = crowd.project(redundancy={"min": 1, "max": 1})
    crowd.add_tasks(project["id"], [{"data": {"text": f"item {i}"}} for i in range(RACES)])
    run = Run(project["id"], "annotate")
    outcomes: Counter[tuple[int, int, str]] = Counter()
    worker = crowd.annotators[0]
    for _ in range(RACES):
        lease = worker.post(f"/projects/{project['id']}/assignments").json()
        answer, cancel = at_once(
            partial(request, run.tally, worker, f"/assignments/{lease['id']}/submit",
                    json={"answer": {"label": "mixed"}}),
            partial(request, run.tally, crowd.owner, f"/tasks/{lease['task']['id']}/cancel"))
        task = crowd.owner.get(f"/tasks/{lease['task']['id']}").json()
        outcome = (answer.status_code, cancel.status_code, task["status"])
        outcomes[outcome] += 1
        assert outcome in {(201, 409, "completed"), (409, 200, "canceled")}, (answer.text, cancel.text)
    assert run.tally.errors == [] and not [k for k in run.tally.counts if k.startswith("HTTP 5")]
    assert counter_violations(database, project["id"]) == [], outcomes


def counter_violations(database: Database, project_id: int) -> list[str]:
    """Tasks whose counters differ from their rows: answers that count, and live leases."""
    with database.reader() as session:
        tasks = session.scalars(select(Task).where(Task.project_id == project_id)).all()
        counted = Counter(session.scalars(select(Annotation.task_id).where(
            Annotation.project_id == project_id, Annotation.rejected_at.is_(None))))
        live = Counter(session.scalars(select(Assignment.task_id).where(
            Assignment.project_id == project_id, Assignment.status == "active")))
    return [f"task {t.id}: n_annotations {t.n_annotations}, n_claimed {t.n_claimed}, {counted[t.id]} counted, "
            f"{live[t.id]} leases" for t in tasks
            if (t.n_annotations, t.n_claimed) != (counted[t.id], counted[t.id] + live[t.id])]
