"""The audit log's hash chains: linear and gapless under concurrent writers, one per
organization (and one for events without an organization), signed checkpoints, and an
exported log that verifies untouched and names the first event edited, deleted or moved."""

from __future__ import annotations

import json
import random
import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text

from qistas.db.engine import Database
from qistas.db.models import AuditEvent, AuditHead
from qistas.db.unit_of_work import write
from qistas.domain import audit, users
from qistas.domain.audit_chain import GENESIS, Signer, event_hash, normal_details, time_text, verify
from tests.conftest import BACKEND

SIGNER = Signer.from_secret("test-secret-" + "x" * 40)


def _org(database: Database, slug: str) -> int:
    with database.writer.begin() as session:
        return users.create_org(session, name=slug, slug=slug).id


def _chain(database: Database, org_id: int | None) -> list[AuditEvent]:
    with database.reader() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.chain_id == audit.chain_of(org_id))
                                    .order_by(AuditEvent.seq.is_(None), AuditEvent.seq, AuditEvent.id)))


def _assert_linear(events: list[AuditEvent]) -> None:
    previous = GENESIS
    for number, event in enumerate(events, start=1):
        assert event.seq == number
        assert event.prev_hash == previous
        assert event.hash == event_hash(audit.event_fields(event))
        previous = event.hash


def _write_events(database: Database, org_id: int | None, n: int, errors: list[BaseException]) -> None:
    try:
        for i in range(n):
            write(database, lambda session, i=i: audit.record(  # type: ignore[misc]
                session, actor=None, action="test.write", object_type="project", object_id=i,
                org_id=org_id, details={"i": i, "ratio": 0.5, "whole": 2.0}))
    except BaseException as exc:  # reported below, on the test's thread
        errors.append(exc)


def test_concurrent_writers_and_linkers_keep_each_chain_linear_and_gapless(database: Database) -> None:
    """Writers record while linkers (as several server processes' background workers, and
    readers of the log) link: every event is linked once, each chain without a gap or a fork,
    and each chain's head is its last event."""
    orgs = [_org(database, "acme"), _org(database, "rival")]
    errors: list[BaseException] = []
    writing = threading.Event()

    def linker() -> None:
        try:
            while writing.is_set():
                audit.link_pending(database)
                write(database, lambda session: audit.link_chain(session, org_id=orgs[0]))
        except BaseException as exc:
            errors.append(exc)

    writing.set()
    writers = [threading.Thread(target=_write_events, args=(database, org, 25, errors))
               for org in (*orgs, *orgs, *orgs, None)]
    linkers = [threading.Thread(target=linker) for _ in range(3)]
    for thread in (*writers, *linkers):
        thread.start()
    for thread in writers:
        thread.join()
    writing.clear()
    for thread in linkers:
        thread.join()
    assert errors == []
    audit.link_pending(database)
    for org_id, expected in ((orgs[0], 75), (orgs[1], 75), (None, 25)):
        events = _chain(database, org_id)
        assert len(events) == expected
        _assert_linear(events)
        with database.reader() as session:
            head = session.get_one(AuditHead, audit.chain_of(org_id))
            assert (head.seq, head.hash) == (events[-1].seq, events[-1].hash)
    assert audit.link_pending(database) is False


@pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite links as it records")
def test_sqlite_links_each_event_as_it_is_recorded(database: Database) -> None:
    org = _org(database, "acme")
    for action in ("a.one", "a.two"):
        write(database, lambda session, action=action: audit.record(  # type: ignore[misc]
            session, actor=None, action=action, object_type="org", object_id=org, org_id=org))
    events = _chain(database, org)
    assert [(e.seq, e.action) for e in events] == [(1, "a.one"), (2, "a.two")]
    _assert_linear(events)
    assert audit.link_pending(database) is False


@pytest.mark.skipif(BACKEND != "postgresql", reason="PostgreSQL records pending events")
def test_events_are_pending_until_linked_and_linked_in_the_order_written(database: Database) -> None:
    org = _org(database, "acme")
    for action in ("a.one", "a.two", "a.three"):
        write(database, lambda session, action=action: audit.record(  # type: ignore[misc]
            session, actor=None, action=action, object_type="org", object_id=org, org_id=org))
    events = _chain(database, org)
    assert [(e.seq, e.prev_hash, e.hash) for e in events] == [(None, None, None)] * 3
    with database.reader() as session:  # a page shows linked events only
        assert audit.events_page(session, org_id=org, after=None, limit=10, where=audit.EventFilter()) == []
    assert write(database, lambda session: audit.link(session, chain=org, limit=2)) == 2
    assert [e.seq for e in _chain(database, org)] == [1, 2, None]
    assert audit.link_pending(database) is False  # the last one: fewer than a chunk
    events = _chain(database, org)
    assert [(e.seq, e.action) for e in events] == [(1, "a.one"), (2, "a.two"), (3, "a.three")]
    _assert_linear(events)
    assert write(database, lambda session: audit.link_chain(session, org_id=org)) == 0


@pytest.mark.skipif(BACKEND != "postgresql", reason="two write transactions at once (SQLite has one writer)")
def test_an_event_committed_after_a_newer_one_is_linked_after_it(database: Database) -> None:
    """Events are linked among those committed: one whose transaction is still open when a
    newer one is linked follows it in the chain, and none is skipped or linked twice."""
    org = _org(database, "acme")
    with database.writer.begin() as slow:
        audit.record(slow, actor=None, action="a.slow", object_type="org", object_id=1, org_id=org)
        for n in (2, 3):
            write(database, lambda session, n=n: audit.record(  # type: ignore[misc]
                session, actor=None, action=f"a.fast{n}", object_type="org", object_id=n, org_id=org))
        # A chunk of one at a time: each is full, yet the next scan must not start past the
        # open transaction, whose event comes from an older transaction id.
        assert audit.link_pending(database, chunk=1) is True
        assert audit.link_pending(database, chunk=1) is True
        assert audit.link_pending(database, chunk=1) is False
        assert [(e.seq, e.action) for e in _chain(database, org)] == [(1, "a.fast2"), (2, "a.fast3")]
    audit.link_pending(database)
    events = _chain(database, org)
    assert [(e.seq, e.action) for e in events] == [(1, "a.fast2"), (2, "a.fast3"), (3, "a.slow")]
    assert events[2].id < events[0].id and events[2].txid is not None and events[2].txid < events[0].txid
    _assert_linear(events)
    # With nothing open, the next scan starts past every event linked so far.
    write(database, lambda session: audit.record(session, actor=None, action="a.last", object_type="org",
                                                 object_id=4, org_id=org))
    audit.link_pending(database)
    with database.reader() as session:
        head = session.get_one(AuditHead, org)
    assert head.seq == 4 and head.pending_from > max(e.txid or 0 for e in _chain(database, org))


@pytest.mark.skipif(BACKEND != "postgresql", reason="two write transactions at once (SQLite has one writer)")
def test_recording_does_not_wait_for_the_chain_head(database: Database) -> None:
    """While a linker holds an organization's head, its requests still record and commit."""
    org = _org(database, "acme")
    errors: list[BaseException] = []
    with database.writer.begin() as linking:
        audit.link(linking, chain=org)  # the head row stays locked until this block ends
        recording = threading.Thread(target=_write_events, args=(database, org, 3, errors))
        recording.start()
        recording.join(timeout=10)
        assert not recording.is_alive(), "a request waited for the chain's head"
    assert errors == []
    audit.link_pending(database)
    _assert_linear(_chain(database, org))
    assert len(_chain(database, org)) == 3


@pytest.mark.skipif(BACKEND != "postgresql", reason="PostgreSQL's transaction ids")
def test_a_head_from_another_cluster_does_not_hide_pending_events(database: Database) -> None:
    """A dump restored into a new cluster keeps each head's ``pending_from``, an id of the old
    cluster's, beyond every id the new one gives out: the linker scans the chain whole then."""
    org = _org(database, "acme")
    write(database, lambda session: audit.record(session, actor=None, action="a.one", object_type="org",
                                                 object_id=1, org_id=org))
    audit.link_pending(database)
    with database.writer.begin() as session:
        session.execute(text("UPDATE audit_heads SET pending_from = :far WHERE chain_id = :chain"),
                        {"far": 2**62, "chain": org})
    write(database, lambda session: audit.record(session, actor=None, action="a.two", object_type="org",
                                                 object_id=2, org_id=org))
    assert audit.link_pending(database) is False
    events = _chain(database, org)
    assert [(e.seq, e.action) for e in events] == [(1, "a.one"), (2, "a.two")]
    _assert_linear(events)
    with database.reader() as session:
        assert session.get_one(AuditHead, org).pending_from < 2**62


def test_a_linked_event_is_hashed_as_it_reads_back(database: Database) -> None:
    """Details and time are hashed as the database gives them back, which is what an export
    writes and ``verify`` recomputes: a whole float, a time, Arabic, a line separator."""
    org = _org(database, "acme")
    write(database, lambda session: audit.record(
        session, actor=None, action="x", object_type="org", object_id=org, org_id=org,
        details={"whole": 2.0, "half": 0.5, "when": datetime(2026, 1, 1, tzinfo=UTC), "text": "نص \u2028 \"q\""}))
    audit.link_pending(database)
    write(database, lambda session: audit.checkpoint(session, org_id=org, signer=SIGNER))
    verdict = verify(_export(database, org), public_key=SIGNER.public_key)
    assert verdict.ok and verdict.events == 1, verdict.problem


def test_two_records_in_one_transaction_and_a_rollback_leave_no_gap(database: Database) -> None:
    org = _org(database, "acme")

    def two(session: object) -> None:
        for action in ("a.one", "a.two"):
            audit.record(session, actor=None, action=action, object_type="org", object_id=org,  # type: ignore[arg-type]
                         org_id=org)

    write(database, two)
    audit.link_pending(database)

    def failing(session: object) -> None:
        two(session)
        audit.link_chain(session, org_id=org)  # as a reader of the log would, in the same transaction
        raise RuntimeError("the route failed")

    with pytest.raises(RuntimeError):
        write(database, failing)
    write(database, two)
    audit.link_pending(database)
    events = _chain(database, org)
    assert [e.action for e in events] == ["a.one", "a.two", "a.one", "a.two"]
    _assert_linear(events)


@pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite links as it records")
def test_a_head_another_process_moved_is_read_again(database: Database) -> None:
    """SQLite: this process remembers the head it last wrote; another process (here: the note set back
    to what it was before event 2) moved the head since. The next event still links to event 2."""
    org = _org(database, "acme")

    def one(session: object) -> None:
        audit.record(session, actor=None, action="a.one", object_type="org", object_id=org,  # type: ignore[arg-type]
                     org_id=org)

    write(database, one)
    seen = audit._last_heads[audit.chain_of(org)]
    write(database, one)  # as if written by another process: this one's note still says event 1
    audit._last_heads[audit.chain_of(org)] = seen
    write(database, one)
    events = _chain(database, org)
    assert [e.seq for e in events] == [1, 2, 3] and events[2].prev_hash == events[1].hash
    _assert_linear(events)
    audit._last_heads.clear()  # a process that has written nothing yet
    write(database, one)
    _assert_linear(_chain(database, org))
    assert verify(_export(database, org), public_key=SIGNER.public_key).problem is None



def test_event_hashes_are_the_canonical_hashes_of_their_fields() -> None:
    """``record`` hashes its fields without the walk that makes whole floats integers (they
    hold none): the same text, the same hash, as ``verify`` computes from the exported line."""
    fields = {"org": 7, "seq": 12, "at": "2026-12-01T09:30:00.000123Z", "actor": "annotator-0a1b2c3d4e",
              "action": "annotation.create", "object_type": "task", "object_id": 99,
              "details": normal_details({"annotation": 5, "text": "نص \u2028 \"q\"", "ok": True, "none": None}),
              "prev_hash": GENESIS}
    line = json.loads(json.dumps({"type": "event", **fields}))
    assert event_hash(fields, plain=True) == event_hash(fields) == event_hash(line)
    assert normal_details({"ratio": 2.0, "when": datetime(2026, 1, 1, tzinfo=UTC)}) == {
        "ratio": 2, "when": "2026-01-01 00:00:00+00:00"}  # the round trip through JSON for other values


def test_event_times_read_as_strftime_writes_them() -> None:
    rng = random.Random(7)
    start = datetime(1, 1, 1, tzinfo=UTC)
    for i in range(20_000):
        at = start + timedelta(microseconds=rng.randrange(0, 10**17 * 3))
        if i % 2:
            at = at.astimezone(timezone(timedelta(minutes=rng.randrange(-720, 841, 15))))
        assert time_text(at) == at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _export(database: Database, org_id: int) -> list[str]:
    with database.reader() as session:
        return list(audit.export_lines(session, org_id=org_id, signer=SIGNER))


def _logged(database: Database, n: int = 6) -> tuple[int, list[str]]:
    org = _org(database, "acme")
    for i in range(n):
        write(database, lambda session, i=i: audit.record(  # type: ignore[misc]
            session, actor=None, action="results.read", object_type="project", object_id=i, org_id=org,
            details={"count": i, "text": "نص عربي"}))
        if i == 3:
            write(database, lambda session: audit.checkpoint(session, org_id=org, signer=SIGNER))
    write(database, lambda session: audit.checkpoint(session, org_id=org, signer=SIGNER))
    return org, _export(database, org)


def test_an_untouched_export_verifies_with_the_public_key(database: Database) -> None:
    _, lines = _logged(database)
    verdict = verify(lines, public_key=SIGNER.public_key)
    assert verdict.ok, verdict.problem
    assert (verdict.events, verdict.checkpoints, verdict.warnings) == (6, 2, [])


def _events_of(lines: list[str]) -> list[int]:
    return [i for i, line in enumerate(lines) if json.loads(line)["type"] == "event"]


def test_an_edited_event_is_named(database: Database) -> None:
    _, lines = _logged(database)
    at = _events_of(lines)[2]  # event 3
    row = json.loads(lines[at])
    row["details"]["count"] = 99
    lines[at] = json.dumps(row) + "\n"
    verdict = verify(lines, public_key=SIGNER.public_key)
    assert not verdict.ok and verdict.seq == 3 and verdict.line == at + 1
    assert "changed" in (verdict.problem or "")


def test_a_deleted_event_is_named(database: Database) -> None:
    _, lines = _logged(database)
    del lines[_events_of(lines)[1]]  # event 2
    verdict = verify(lines, public_key=SIGNER.public_key)
    assert not verdict.ok and verdict.seq == 3 and "missing" in (verdict.problem or "")


def test_reordered_events_are_named(database: Database) -> None:
    _, lines = _logged(database)
    first, second = _events_of(lines)[3:5]
    lines[first], lines[second] = lines[second], lines[first]
    verdict = verify(lines, public_key=SIGNER.public_key)
    assert not verdict.ok and verdict.seq == 5 and verdict.line == first + 1


def test_a_rewritten_chain_is_caught_by_its_checkpoint(database: Database) -> None:
    """Recomputing every hash after an edit keeps the links, but not the signed hash."""
    _, lines = _logged(database)
    previous = GENESIS
    for at in _events_of(lines):
        row = json.loads(lines[at])
        if row["seq"] == 2:
            row["action"] = "nothing.read"
        row["prev_hash"] = previous
        row["hash"] = previous = event_hash(row)
        lines[at] = json.dumps(row) + "\n"
    verdict = verify(lines, public_key=SIGNER.public_key)
    assert not verdict.ok and verdict.seq == 4 and "checkpoint" in (verdict.problem or "")


def test_a_truncated_log_and_a_foreign_key_are_refused(database: Database) -> None:
    _, lines = _logged(database)
    last_event = _events_of(lines)[-1]
    verdict = verify(lines[:last_event] + lines[last_event + 1:], public_key=SIGNER.public_key)
    assert not verdict.ok and verdict.seq == 6 and "end" in (verdict.problem or "")
    other = Signer.from_secret("another instance's secret " + "y" * 30)
    verdict = verify(lines, public_key=other.public_key)
    assert not verdict.ok and "signature" in (verdict.problem or "")
    # Without a key of one's own, the file's own key is used, and said so.
    verdict = verify(lines)
    assert verdict.ok and verdict.warnings


def test_checkpoints_fall_due_every_n_events(database: Database) -> None:
    org = _org(database, "acme")
    for i in range(5):
        write(database, lambda session, i=i: audit.record(  # type: ignore[misc]
            session, actor=None, action="x", object_type="org", object_id=i, org_id=org))
    with database.reader() as session:  # PostgreSQL: pending events are not in the chain yet
        assert audit.chains_due(session, every=1) == ([] if BACKEND == "postgresql" else [org])
    audit.link_pending(database)
    with database.reader() as session:
        assert audit.chains_due(session, every=5) == [org]
        assert audit.chains_due(session, every=6) == []
    assert audit.sign_due(database, signer=SIGNER, every=5) is True
    assert audit.sign_due(database, signer=SIGNER, every=5) is False
    write(database, lambda session: audit.record(session, actor=None, action="x", object_type="org", object_id=9,
                                                 org_id=org))
    assert audit.keep_chains(database, signer=SIGNER, every=1) is True  # what the background worker runs
    assert audit.keep_chains(database, signer=SIGNER, every=1) is False
    with database.reader() as session:
        assert [e.seq for e in audit.events_page(session, org_id=org, after=None, limit=10,
                                                 where=audit.EventFilter())] == [1, 2, 3, 4, 5, 6]
    with database.reader() as session:
        assert audit.chains_due(session, every=1) == []
        assert [c.seq for c in audit.checkpoints(session, org_id=org)] == [5, 6]


def test_annotators_are_named_by_pseudonym_only(database: Database) -> None:
    org = _org(database, "acme")
    with database.writer.begin() as session:
        worker = users.create_user(session, email="w@crowd.test", role="annotator")
        owner = users.create_user(session, email="o@acme.test", role="owner", org_id=org)
        audit.record(session, actor=worker, action="task.take", object_type="task", object_id=1, org_id=org,
                     pseudonym=lambda user_id: f"annotator-{user_id * 7}")
        audit.record(session, actor=worker, action="task.read", object_type="task", object_id=1, org_id=org)
        audit.record(session, actor=owner, action="results.read", object_type="project", object_id=1, org_id=org)
    audit.link_pending(database)
    assert [e.actor for e in _chain(database, org)] == [
        f"annotator-{worker.id * 7}", "annotator", f"owner:{owner.id}"]
