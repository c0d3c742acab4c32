"""The claim finds tasks in flight through their index, not by walking past completed ones."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from qistas.db.engine import Database
from qistas.db.queries import assignments as queries
from tests.domain.test_engine_concurrency import make_project


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
