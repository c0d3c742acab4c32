"""The claim finds tasks in flight through their index, not by walking past completed ones."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from qistas.db.engine import Database
from qistas.db.queries import assignments as queries
from qistas.domain import results
from tests.domain.test_engine_concurrency import make_project

take_function = importlib.import_module("qistas.db.migrations.versions.0027_bounded_sweep")  # the one called


def test_postgresql_plans_the_started_first_query_on_the_in_flight_index(database: Database) -> None:
    if database.engine.dialect.name != "postgresql":
        pytest.skip("SQLite finds them through ix_tasks_claim, a range it then sorts")
    setup = make_project(database, n_tasks=3000, n_annotators=1, redundancy={"min": 3, "max": 3})
    with database.engine.begin() as connection:  # a project far along: most tasks done
        first = connection.execute(text("SELECT min(id) FROM tasks WHERE project_id = :p"),
                                   {"p": setup.project_id}).scalar_one()
        connection.execute(text("UPDATE tasks SET status = 'completed', n_claimed = 3, n_annotations = 3 "
                                "WHERE project_id = :p AND id < :cut"), {"p": setup.project_id, "cut": first + 2900})
        connection.execute(text("ANALYZE tasks"))
    started_first = queries.NEXT[0][True]
    with database.engine.connect() as connection:
        plan = "\n".join(row[0] for row in connection.exec_driver_sql(
            "EXPLAIN " + str(started_first.statement.compile(dialect=connection.dialect)),
            {"project_id": setup.project_id, "annotator_id": setup.annotator_ids[0], "status_1": "pending",
             "status_2": "in_progress", "param_1": 1}))
    assert "ix_tasks_in_flight" in plan, plan


def test_postgresql_checks_what_the_annotator_saw_with_one_index_probe_per_task(database: Database) -> None:
    """A new project's lone annotator: statistics from before any answer say they have none,
    and an anti-join planned on that compared every task in flight with every assignment of
    theirs (24 ms per take at 600 answers). The check must stay a probe of the unique
    (task, annotator) index per task, whatever the statistics say."""
    if database.engine.dialect.name != "postgresql":
        pytest.skip("SQLite plans the subquery as a probe of the same unique index")
    setup = make_project(database, n_tasks=1000, n_annotators=1, redundancy={"min": 3, "max": 3})
    annotator = setup.annotator_ids[0]
    with database.engine.begin() as connection:
        connection.execute(text("ANALYZE tasks"))
        connection.execute(text("ANALYZE assignments"))  # empty: the statistics of a fresh project
        # Since then the annotator answered 600 tasks, each now in flight (1 of 3 answers).
        connection.execute(text(
            "INSERT INTO assignments (task_id, project_id, annotator_id, status, created_at, expires_at) "
            "SELECT id, project_id, :a, 'submitted', now(), now() FROM tasks WHERE project_id = :p "
            "ORDER BY id LIMIT 600"), {"a": annotator, "p": setup.project_id})
        connection.execute(text(
            "UPDATE tasks SET n_claimed = 1, n_annotations = 1 WHERE id IN "
            "(SELECT task_id FROM assignments WHERE annotator_id = :a)"), {"a": annotator})
    started_first = queries.NEXT[0][True].statement
    with database.engine.connect() as connection:
        compiled = started_first.compile(dialect=connection.dialect)
        plan = "\n".join(row[0] for row in connection.exec_driver_sql(
            "EXPLAIN " + str(compiled),
            {**compiled.params, "project_id": setup.project_id, "annotator_id": annotator}))
    assert "Anti Join" not in plan, plan
    assert "assignments_task_id_annotator_id_key" in plan, plan


def test_the_ranked_claim_reads_its_index_in_order_on_both_databases(database: Database) -> None:
    """Active learning's order (serve_rank, then id) is one ordered read of ix_tasks_ranked,
    not a sort of every open task."""
    setup = make_project(database, n_tasks=2000, n_annotators=1, redundancy={"min": 1, "max": 1})
    ranked = queries.NEXT_RANKED[1][database.engine.dialect.name == "postgresql"].statement
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE tasks SET serve_rank = 2000 - id WHERE project_id = :p"),
                           {"p": setup.project_id})
        connection.execute(text("ANALYZE tasks"))
        compiled = ranked.compile(dialect=connection.dialect)
        explain = "EXPLAIN QUERY PLAN " if connection.dialect.name == "sqlite" else "EXPLAIN "
        params = {**compiled.params, "project_id": setup.project_id, "annotator_id": setup.annotator_ids[0]}
        if compiled.positiontup:  # SQLite's driver takes positional parameters
            params = tuple(params[name] for name in compiled.positiontup)  # type: ignore[assignment]
        rows = connection.exec_driver_sql(explain + str(compiled), params).all()
    plan = "\n".join(str(row[-1]) for row in rows)
    assert "ix_tasks_ranked" in plan, plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan


def _plan(connection: Any, statement: Any, **values: Any) -> str:
    compiled = statement.compile(dialect=connection.dialect)
    explain = "EXPLAIN QUERY PLAN " if connection.dialect.name == "sqlite" else "EXPLAIN "
    params = {**compiled.params, **values}
    if compiled.positiontup:  # SQLite's driver takes positional parameters
        params = tuple(params[name] for name in compiled.positiontup)
    return "\n".join(str(row[-1]) for row in connection.exec_driver_sql(explain + str(compiled), params).all())


def test_changes_since_a_cursor_read_the_partial_completion_index_in_order(database: Database) -> None:
    """``ix_tasks_completed`` holds completed tasks only (a claim's UPDATE writes no entry in it);
    the "since a cursor" read compares ``completed_at``, which proves its condition on both databases."""
    setup = make_project(database, n_tasks=2000, n_annotators=1, redundancy={"min": 1, "max": 1})
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE tasks SET status = 'completed', completed_at = created_at "
                                "WHERE project_id = :p AND id % 2 = 0"), {"p": setup.project_id})
        connection.execute(text("ANALYZE tasks"))
        now = datetime.now(UTC)
        since = results.since_query(project_id=setup.project_id, limit=100, settled_before=now,
                                    since=results.make_cursor(now - timedelta(days=1), 0))
        plan = _plan(connection, since)
    assert "ix_tasks_completed" in plan, plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan


def test_the_take_functions_ranked_claim_reads_the_partial_ranked_index(database: Database) -> None:
    """PL/pgSQL plans ``qistas_take``'s statements once, generic: the ranked claim's literals
    (``status = 'pending'``, ``n_claimed = 0``) must still prove ``ix_tasks_ranked``'s condition."""
    if database.engine.dialect.name != "postgresql":
        pytest.skip("the function is PostgreSQL's")
    setup = make_project(database, n_tasks=2000, n_annotators=1, redundancy={"min": 3, "max": 3})
    ranked = ("SELECT t.id, t.status, t.data " + take_function.CANDIDATES.replace("p_project", "$1")
              .replace("p_annotator", "$2") + " AND t.is_gold IS false AND t.n_claimed < t.required AND "
              "t.n_claimed = 0 ORDER BY t.serve_rank, t.id LIMIT 1 FOR UPDATE SKIP LOCKED")
    for part in ("AND t.is_gold IS false AND t.n_claimed < t.required AND t.n_claimed = 0",
                 "ORDER BY t.serve_rank, t.id LIMIT 1 FOR UPDATE SKIP LOCKED"):
        assert part in take_function.TAKE  # the function's own statement
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE tasks SET serve_rank = 2000 - id WHERE project_id = :p"),
                           {"p": setup.project_id})
        connection.execute(text("ANALYZE tasks"))
        connection.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
        connection.exec_driver_sql("PREPARE ranked_claim(bigint, bigint) AS " + ranked)
        plan = "\n".join(row[0] for row in connection.exec_driver_sql(
            f"EXPLAIN EXECUTE ranked_claim({setup.project_id}, {setup.annotator_ids[0]})"))
        connection.exec_driver_sql("DEALLOCATE ranked_claim")
    assert "ix_tasks_ranked" in plan and "Sort" not in plan, plan
