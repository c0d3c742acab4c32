"""What PostgreSQL builds for an export holds what the records built in Python hold: JSON Lines
with the same keys in the same order and the same values, and the flat table (csv, parquet,
hf) with the same cells, on varied tasks (Arabic, controls, emoji, floats of every kind,
timestamps with and without microseconds, rejected and excluded answers, a model annotator,
responses with confidences inside), under every export option."""

from __future__ import annotations

import json
import random
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qistas import jsontext
from qistas.db.engine import Database
from qistas.db.enums import AuditStatus, ReviewStatus, Role, TaskStatus
from qistas.db.models import Annotation, Assignment, Batch, ModelEndpoint, Project, Task, User
from qistas.domain import exportformats, exportsql, projects, results, users
from tests.conftest import BACKEND

pytestmark = pytest.mark.skipif(BACKEND != "postgresql", reason="PostgreSQL builds the lines; SQLite encodes records")

TEXTS = ["الخدمة ممتازة 👍🏽 لكن التوصيل بطيء", "plain", 'quote " backslash \\ tab \t', "controls \x01\x1f\n\r",
         "line sep \u2028 para \u2029", "🇸🇦 flag", "", "=1+2"]
FLOATS = [0.5, 1.0, 0.0, 2 / 3, 0.1 + 0.2, 1e-7, 123456.789, 4.0, 1e300, 12345678901234567.0]
START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(7 if depth < 2 else 4)
    if kind == 0:
        return rng.choice(TEXTS)
    if kind == 1:
        return rng.choice(FLOATS)
    if kind == 2:
        return rng.choice([0, -3, 2**70, True, False, None])
    if kind == 3:
        return rng.choice(TEXTS[:2])
    if kind == 4:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    return {rng.choice(["a", "b", "نص", "z\u00e9", "confidence_note"]): _value(rng, depth + 1) for _ in range(3)}


def _response(rng: random.Random) -> Any:
    """A classification label, or spans carrying a confidence each (as aggregators write them)."""
    if rng.random() < 0.5:
        return {"label": rng.choice(["positive", "negative", "سلبي"])}
    return {"spans": [{"start": s, "end": s + 3, "label": "PER", "confidence": rng.choice(FLOATS[:5])}
                      for s in range(rng.randrange(1, 3))]}


def _plain(response: Any) -> Any:
    if "spans" in response:
        return {"spans": [{k: v for k, v in span.items() if k != "confidence"} for span in response["spans"]]}
    return response


def _moment(rng: random.Random, offset: int) -> datetime:
    micros = rng.choice([0, 500000, 123, 999999, 10])
    return START + timedelta(seconds=offset, microseconds=micros)


def _build(database: Database, seed: int = 7, n_tasks: int = 160) -> tuple[int, dict[int, str]]:
    rng = random.Random(seed)
    with database.writer.begin() as session:
        org = users.create_org(session, name="Lines", slug=f"lines-{seed}")
        owner = users.create_user(session, email=f"owner{seed}@lines.test", role="owner", org_id=org.id)
        endpoint = ModelEndpoint(org_id=org.id, name="judge", base_url="http://127.0.0.1:9", model="m-1")
        session.add(endpoint)
        session.flush()
        model = User(email=f"model{seed}@lines.test", role=Role.MODEL, org_id=org.id, endpoint_id=endpoint.id)
        session.add(model)
        workers = [users.create_user(session, email=f"w{i}-{seed}@lines.test", role="annotator") for i in range(5)]
        session.flush()
        project = projects.create_project(
            session, org_id=org.id, actor=owner, name="lines", redundancy={"min": 3, "max": 3},
            task={"type": "classification", "labels": ["positive", "negative", "سلبي"], "text_field": "text"})
        batches = [Batch(project_id=project.id, name=name) for name in ("دفعة ١", '"quoted"', "\\N")]
        session.add_all(batches)
        session.flush()
        people = [w.id for w in workers] + [model.id]
        for number in range(n_tasks):
            response = _response(rng) if rng.random() < 0.8 else None
            completed = _moment(rng, number) if response is not None and rng.random() < 0.9 else None
            task = Task(
                project_id=project.id,
                unique_id=rng.choice([f"u-{number}", f"م-{number}", f'q"{number}\\', f"t\t{number}\n\\N\\t\x0b"]),
                batch_id=rng.choice([None, *(batch.id for batch in batches)]),
                data={"text": rng.choice(TEXTS), "extra": _value(rng)},
                meta=rng.choice([None, {"source": rng.choice(TEXTS)}, _value(rng)]),
                status="completed" if completed else rng.choice(["pending", "in_progress"]),
                required=3, response=response, completed_at=completed,
                confidence=rng.choice([None, *FLOATS[:7]]) if response is not None else None,
                method=rng.choice([None, "majority_vote", "ديفيد-سكين", ""]),
                needs_review=rng.choice([None, True, False]), details=rng.choice([None, {"k": _value(rng)}]),
                review_status=rng.choice(["none", "pending", "accepted"]), audit_status=rng.choice(["none", "sampled"]),
                predictions=rng.choice([None, [{"model": "m", "response": _value(rng)}]]))
            session.add(task)
            session.flush()
            for annotator in rng.sample(people, rng.randrange(0, 5)):
                at = _moment(rng, number)
                lease = Assignment(task_id=task.id, project_id=project.id, annotator_id=annotator, status="submitted",
                                   created_at=at, expires_at=at + timedelta(minutes=5), ended_at=at)
                session.add(lease)
                session.flush()
                agrees = response is not None and rng.random() < 0.6
                session.add(Annotation(
                    assignment_id=lease.id, task_id=task.id, project_id=project.id, annotator_id=annotator,
                    answer=_plain(response) if agrees else {"label": rng.choice(["negative", "سلبي"])},
                    seconds=rng.choice([None, float("nan"), *FLOATS]), created_at=at,
                    rejected_at=at if rng.random() < 0.15 else None, excluded_at=at if rng.random() < 0.1 else None))
        session.flush()
        names = {person: f"annotator-{person}" for person in people}
        return project.id, names


def _both(database: Database, project_id: int, names: dict[int, str], options: results.ExportOptions,
          annotators: list[int] | None = None) -> tuple[list[str], list[str]]:
    pseudonym: Callable[[int], str] = names.__getitem__
    annotators = list(names) if annotators is None else annotators  # heads passed in, unless told
    with database.reader() as session:
        selection = _select(session, project_id, options)
        built = b"".join(exportsql.iter_export_lines(session, selection=selection, pseudonym=pseudonym,
                                                       annotators=annotators)).decode()
    with database.reader() as session:
        selection = _select(session, project_id, options)
        records = [jsontext.dumps(r) for r in results.iter_export_records(session, selection=selection,
                                                                           pseudonym=pseudonym)]
    assert built.endswith("\n") or not built
    return built.split("\n")[:-1] if built else [], records


def _select(session: Session, project_id: int, options: results.ExportOptions) -> results.Selection:
    project = session.get(Project, project_id)
    assert project is not None
    return results.select_export(session, project=project, options=options,
                                 settled_before=datetime.now(UTC) + timedelta(days=3650))


def _same(built: list[str], records: list[str]) -> None:
    assert len(built) == len(records)
    for line, record in zip(built, records, strict=True):
        parsed, expected = json.loads(line), json.loads(record)
        assert list(parsed) == list(expected)  # the same keys in the same order
        for annotation, wanted in zip(parsed["annotations"], expected["annotations"], strict=True):
            assert list(annotation) == list(wanted)
        assert parsed == expected, (line, record)


@pytest.mark.parametrize("options", [
    results.ExportOptions(),
    results.ExportOptions(completed=True),
    results.ExportOptions(min_confidence=0.5),
    results.ExportOptions(batch="دفعة ١"),
    results.ExportOptions(since="0.0"),
], ids=["all", "completed", "min_confidence", "batch", "since"])
def test_lines_hold_what_the_records_hold(database: Database, options: results.ExportOptions) -> None:
    project_id, names = _build(database)
    built, records = _both(database, project_id, names, options)
    assert len(built) > 20
    _same(built, records)


JSON_CELLS = ("data", "metadata", "response", "annotations", "details", "predictions")


def _arrow_columns(tables: list[Any]) -> list[dict[str, list[Any]]]:
    """Arrow tables as the flat table's chunks of Python values; each of the one schema."""
    assert all(table.schema == exportformats.arrow_schema() for table in tables)
    return [table.to_pydict() for table in tables]


READS = {
    "fetched": exportsql.iter_export_columns,  # csv
    "copied": lambda *args, **kwargs: _arrow_columns(list(exportsql.iter_export_tables(*args, **kwargs))),  # parquet

}


@pytest.mark.parametrize("options", [results.ExportOptions(), results.ExportOptions(since="0.0"),
                                     results.ExportOptions(batch="\\N", min_confidence=0.1)],
                         ids=["all", "since", "batch"])
@pytest.mark.parametrize("known", [True, False], ids=["named", "unnamed"])
@pytest.mark.parametrize("read", list(READS))
def test_flat_columns_hold_what_the_records_hold(database: Database, options: results.ExportOptions,
                                                 known: bool, read: str) -> None:
    project_id, names = _build(database, seed=5)
    pseudonym: Callable[[int], str] = names.__getitem__
    with database.reader() as session:
        selection = _select(session, project_id, options)
        built = list(READS[read](session, selection=selection, pseudonym=pseudonym,
                                 annotators=list(names) if known else []))
    with database.reader() as session:
        selection = _select(session, project_id, options)
        expected = list(exportformats.record_columns(
            lambda: results.iter_export_records(session, selection=selection, pseudonym=pseudonym)))
    names_in_order = [name for name, _ in exportformats.FLAT_COLUMNS]

    def joined(chunks: list[dict[str, list[Any]]]) -> dict[str, list[Any]]:
        assert all(list(chunk) == names_in_order for chunk in chunks)
        return {name: [v for chunk in chunks for v in chunk[name]] for name in names_in_order}

    mine, theirs = joined(built), joined(expected)
    assert len(mine["task_id"]) == len(theirs["task_id"]) > (5 if options.batch else 20)
    for name in names_in_order:
        if name in JSON_CELLS:
            assert [None if v is None else json.loads(v) for v in mine[name]] == \
                   [None if v is None else json.loads(v) for v in theirs[name]], name
        else:
            assert mine[name] == theirs[name], name
            assert [type(v) for v in mine[name]] == [type(v) for v in theirs[name]], name
    assert any(a is not None and a not in (0.0, 1.0) for a in mine["agreement"])


@pytest.mark.parametrize("known", [True, False], ids=["named", "unnamed"])
def test_copied_tables_are_the_fetched_columns_exactly(database: Database, known: bool, tmp_path: Path) -> None:
    """Parquet's and hf's tables, copied out in PostgreSQL's text format and parsed by Arrow,
    hold csv's values fetched through the driver, text for text: NULL apart from the text
    ``\\N``, tabs, newlines and backslashes in values, the annotators named, the agreements
    counted in Python; read by one backend or by three."""
    project_id, names = _build(database, seed=37, n_tasks=240)
    pseudonym: Callable[[int], str] = names.__getitem__
    annotators = list(names) if known else []
    with database.reader() as session:
        selection = _select(session, project_id, results.ExportOptions())
        fetched = list(exportsql.iter_export_columns(session, selection=selection, pseudonym=pseudonym,
                                                     annotators=annotators))
    for readers in (None, exportsql.Readers(count=3, spool_dir=tmp_path, per_reader=20)):
        with database.reader() as session:
            selection = _select(session, project_id, results.ExportOptions())
            copied = _arrow_columns(list(exportsql.iter_export_tables(
                session, selection=selection, pseudonym=pseudonym, annotators=annotators, readers=readers)))
        assert [len(chunk["task_id"]) for chunk in copied] == [len(chunk["task_id"]) for chunk in fetched] or readers
        for name, _ in exportformats.FLAT_COLUMNS:
            assert [v for chunk in copied for v in chunk[name]] == [v for chunk in fetched for v in chunk[name]], name
    every = {name: [v for chunk in fetched for v in chunk[name]] for name, _ in exportformats.FLAT_COLUMNS}
    assert any("\t" in u and "\n" in u and "\\N" in u for u in every["unique_id"])
    assert "\\N" in every["batch"] and None in every["batch"] and "" in every["method"] and None in every["method"]
    assert any(a is not None and a not in (0.0, 1.0) for a in every["agreement"])
    assert any("\\" in cell for cell in every["data"] if cell)


def test_the_varied_cases_are_there(database: Database) -> None:
    """The comparison above covers what it claims: each kind of value occurs."""
    project_id, names = _build(database)
    built, _ = _both(database, project_id, names, results.ExportOptions())
    parsed = [json.loads(line) for line in built]
    answers = [a for p in parsed for a in p["annotations"]]
    assert any(a.get("rejected") for a in answers) and any(a.get("excluded") for a in answers)
    assert any(a["source"] == "model" and a["model"] == "judge/m-1" for a in answers)
    assert any(a["seconds"] is None for a in answers) and any(a["seconds"] == 4.0 for a in answers)
    assert any(p["provenance"]["agreement"] not in (None, 0.0, 1.0) for p in parsed)
    spans = [p for p in parsed if p["response"] and "spans" in p["response"]]
    assert any(p["provenance"]["agreement"] for p in spans)  # counted in Python, confidences left out
    assert {p["completed_at"][19:] for p in parsed if p["completed_at"]} >= {"+00:00", ".500000+00:00", ".000123+00:00"}
    assert any(p["annotations"] == [] for p in parsed)
    assert "الخدمة ممتازة 👍🏽" in "\n".join(built) and "\\u0627" not in "\n".join(built)  # Arabic as it is


def test_annotators_not_named_up_front_are_named_in_python(database: Database) -> None:
    """An annotator whose first answer commits after the export read the project's annotators
    (no head passed in), or any annotator of an export too small to name the whole workforce
    for, is named from a marker in the query's text: the same lines."""
    project_id, names = _build(database, seed=11, n_tasks=60)
    built, records = _both(database, project_id, names, results.ExportOptions(), annotators=[])
    assert "\x01" not in "".join(built)
    _same(built, records)


def test_exact_float_and_time_text(database: Database) -> None:
    """The text of the database's numbers and times is what Python writes: whole floats with
    ``.0``, shortest exact digits (the same value, in another exponent form where either
    writes one: ``1e-07`` for ``1e-7``), NaN as null, six digits of microseconds."""
    project_id, names = _build(database, seed=3, n_tasks=80)
    built, records = _both(database, project_id, names, results.ExportOptions())

    def values(line: str, key: str) -> list[str]:
        return [part.split(",", 1)[0].rstrip("}]") for part in line.split(key)[1:]]

    compared = 0
    for line, record in zip(built, records, strict=True):
        for key in ('"confidence":', '"completed_at":', '"seconds":', '"agreement":', '"created_at":'):
            for mine, theirs in zip(values(line, key), values(record, key), strict=True):
                if mine.startswith(" "):  # inside a stored JSON value, as the database prints it
                    continue
                if "e" in mine or "e" in theirs:
                    assert float(mine) == float(theirs)
                else:
                    assert mine == theirs
                compared += 1
    assert compared > 500


@pytest.mark.parametrize("options", [results.ExportOptions(), results.ExportOptions(since="0.0")], ids=["all", "since"])
def test_several_readers_read_what_one_reads(database: Database, options: results.ExportOptions,
                                             tmp_path: Path) -> None:
    """An export read by three connections at once, each a range of it on the transaction's
    snapshot, holds the same lines and columns in the same order as one read by one."""
    project_id, names = _build(database, seed=13, n_tasks=200)
    pseudonym: Callable[[int], str] = names.__getitem__
    three = exportsql.Readers(count=3, spool_dir=tmp_path, per_reader=20)
    found: dict[str, Any] = {}
    for label, readers in (("one", None), ("three", three)):
        with database.reader() as session:
            selection = _select(session, project_id, options)
            found[label] = (b"".join(exportsql.iter_export_lines(session, selection=selection, pseudonym=pseudonym,
                                                                 readers=readers)),
                            list(exportsql.iter_export_columns(session, selection=selection, pseudonym=pseudonym,
                                                               readers=readers)))
    assert found["three"][0] == found["one"][0] and found["one"][0].count(b"\n") > 100
    assert sum(len(c["task_id"]) for c in found["three"][1]) == sum(len(c["task_id"]) for c in found["one"][1])
    assert [c for chunk in found["three"][1] for c in chunk["task_id"]] == \
           [c for chunk in found["one"][1] for c in chunk["task_id"]]
    assert list(tmp_path.iterdir()) == []  # the ranges' files have no name and are gone
    assert not [t for t in threading.enumerate() if t.name == "export-range"]


@pytest.mark.parametrize("read", [exportsql.iter_export_lines, exportsql.iter_export_tables], ids=["fetched", "copied"])
def test_an_export_left_early_stops_its_readers(database: Database, tmp_path: Path, read: Any) -> None:
    """A download cut off after its first lines (or an export job taken over) stops the threads
    reading the later ranges (a copy cancelled) and returns their connections and its extra
    reader slots."""
    project_id, names = _build(database, seed=17, n_tasks=120)
    checked_out = database.engine.pool.checkedout()  # type: ignore[attr-defined]
    with database.reader() as session:
        selection = _select(session, project_id, results.ExportOptions())
        lines = read(session, selection=selection, pseudonym=names.__getitem__,
                     readers=exportsql.Readers(count=4, spool_dir=tmp_path, per_reader=10))
        try:
            assert len(next(lines)) > 0
            assert exportsql._SLOTS.used == 3  # three later ranges, read by threads of their own
        finally:
            lines.close()
        assert exportsql._SLOTS.used == 0
        assert not [t for t in threading.enumerate() if t.name == "export-range"]
        # Only the session's own connection is still out: the ranges' are back in the pool.
        assert database.engine.pool.checkedout() == checked_out + 1  # type: ignore[attr-defined]
    assert database.engine.pool.checkedout() == checked_out  # type: ignore[attr-defined]


def test_ranges_in_completion_order_whatever_the_session_time_zone(database: Database, db_url: str,
                                                                   tmp_path: Path) -> None:
    """A ``since`` export read in ranges split at completion times (naive UTC in the database)
    on connections whose time zone is not UTC holds the same lines, times as UTC."""
    project_id, names = _build(database, seed=19, n_tasks=200)
    pseudonym: Callable[[int], str] = names.__getitem__
    riyadh = Database.from_url(db_url, connect_args={"options": "-c TimeZone=Asia/Riyadh"})
    try:
        found = []
        for db, readers in ((database, None), (riyadh, exportsql.Readers(count=4, spool_dir=tmp_path, per_reader=20))):
            with db.reader() as session:
                selection = _select(session, project_id, results.ExportOptions(since="0.0"))
                found.append(b"".join(exportsql.iter_export_lines(session, selection=selection, pseudonym=pseudonym,
                                                                  readers=readers)))
        assert found[0] == found[1] and found[0].count(b"\n") > 100
    finally:
        riyadh.dispose()


def test_exports_at_once_share_the_extra_readers(database: Database, tmp_path: Path) -> None:
    """Two exports at once in one process: the second finds the extra reader connections taken
    by the first and reads with its own connection alone, the same lines."""
    project_id, names = _build(database, seed=23, n_tasks=150)
    readers = exportsql.Readers(count=3, spool_dir=tmp_path, per_reader=10)
    with database.reader() as first, database.reader() as second:
        lines = exportsql.iter_export_lines(first, selection=_select(first, project_id, results.ExportOptions()),
                                            pseudonym=names.__getitem__, readers=readers)
        try:
            head = next(lines)
            assert exportsql._SLOTS.used == 2
            alone = b"".join(exportsql.iter_export_lines(
                second, selection=_select(second, project_id, results.ExportOptions()), pseudonym=names.__getitem__,
                readers=readers))
            assert exportsql._SLOTS.used == 2
            assert head + b"".join(lines) == alone
        finally:
            lines.close()
    assert exportsql._SLOTS.used == 0


def test_the_enumerations_quoted_without_escaping_need_none() -> None:
    """The task's status, review status and audit status are written as JSON strings without
    ``to_json``'s escaping: their values must stay plain lowercase words."""
    for enumeration in (TaskStatus, ReviewStatus, AuditStatus):
        for value in enumeration:
            assert re.fullmatch("[a-z_]+", value), (enumeration, value)
            assert json.dumps(str(value)) == f'"{value}"'


def test_the_annotators_of_a_project_are_walked_one_probe_each(database: Database) -> None:
    """Who answered in the project (their heads are made once, before a large export), found by a
    walk of the annotators' index: the same as a ``DISTINCT`` over every answer."""
    project_id, _ = _build(database, seed=29, n_tasks=120)
    other, _ = _build(database, seed=31, n_tasks=40)
    with database.reader() as session:
        walked = list(session.scalars(exportsql._ANSWERED, {"project_id": project_id}))
        every = set(session.scalars(select(Annotation.annotator_id).where(Annotation.project_id == project_id)))
        others = set(session.scalars(select(Annotation.annotator_id).where(Annotation.project_id == other)))
        assert walked == sorted(every) and len(walked) > 3
        assert others - every  # the other project's annotators are not walked
        assert list(session.scalars(exportsql._ANSWERED, {"project_id": -1})) == []


def _rows_touched(plan: dict[str, Any]) -> float:
    """The rows every node of an ``EXPLAIN (ANALYZE, FORMAT JSON)`` plan produced, all loops."""
    return plan["Actual Rows"] * plan["Actual Loops"] + sum(_rows_touched(p) for p in plan.get("Plans", []))


@pytest.mark.parametrize("shape", [exportsql._Parts.lines, exportsql._Parts.columns], ids=["lines", "columns"])
def test_a_large_workforce_is_not_read_for_each_task(database: Database, shape: Any) -> None:
    """The heads passed to the statement for everyone who answered in the project (thousands in a
    large workforce) are looked up per answer: the statement's work grows with the tasks and
    answers, not with their product with the workforce (a join with the heads was planned as a
    scan of all of them for each task)."""
    project_id, names = _build(database, seed=41, n_tasks=100)
    workforce = list(names) + list(range(10**6, 10**6 + 20_000))  # answered elsewhere, or since
    with database.reader() as session:
        selection = _select(session, project_id, results.ExportOptions())
        heads = exportsql._Heads(lambda annotator_id: f"annotator-{annotator_id}", {})
        statement = shape(exportsql._Parts(selection, heads.of(workforce), []))
        connection = session.connection()
        sql, values = exportsql._driver_statement(connection, statement)
        (plan,), = connection.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, values).one()
        answers = session.scalar(select(func.count()).select_from(Annotation)
                                 .where(Annotation.project_id == project_id))
    assert _rows_touched(plan["Plan"]) < 20 * (selection.total + answers) < len(workforce)
