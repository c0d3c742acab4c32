"""The claim finds tasks in flight through their index, not by walking past completed ones."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from qistas.db.engine import Database
from qistas.domain import assignments
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
    started_first = assignments._NEXT[0][True]
    with database.engine.connect() as connection:
        plan = "\n".join(row[0] for row in connection.exec_driver_sql(
            "EXPLAIN " + str(started_first.statement.compile(dialect=connection.dialect)),
            {"project_id": setup.project_id, "annotator_id": setup.annotator_ids[0], "status_1": "pending",
             "status_2": "in_progress", "param_1": 1}))
    assert "ix_tasks_in_flight" in plan, plan
