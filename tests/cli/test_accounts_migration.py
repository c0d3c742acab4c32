"""The accounts migration on a database that already holds people, tokens and work: emails
become unique per organization without losing a row (SQLite rebuilds the users table)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from qistas.db.engine import Database
from qistas.db.migrate import upgrade
from tests.conftest import database_at, fresh_database


def test_upgrading_keeps_every_user_token_session_and_lease(tmp_path: Path) -> None:
    with fresh_database(tmp_path, None) as url:
        database = database_at(url, "0004_task_decision")
        try:
            with database.writer.begin() as session:
                run = session.execute
                run(text("INSERT INTO organizations (id, name, slug, created_at) VALUES (1, 'A', 'a', '2026-01-01')"))
                run(text("INSERT INTO users (id, email, role, org_id, is_reviewer, is_active, created_at) "
                         "VALUES (1, 'w@crowd.test', 'annotator', NULL, false, true, '2026-01-01'), "
                         "(2, 'o@a.test', 'owner', 1, false, true, '2026-01-01')"))
                run(text("INSERT INTO api_tokens (id, user_id, token_hash, name, created_at) "
                         "VALUES (1, 1, 'h1', 'cli', '2026-01-01')"))
                run(text("INSERT INTO web_sessions (id, session_hash, user_id, csrf_token, created_at, expires_at) "
                         "VALUES (1, 's1', 2, 'c', '2026-01-01', '2036-01-01')"))
                run(text("INSERT INTO projects (id, org_id, name, task_spec, instructions, redundancy_min, "
                         "redundancy_max, gold_policy, priority, workforce, created_at) VALUES (1, 1, 'p', '{}', '', "
                         "1, 1, '{}', 0, 'shared', '2026-01-01')"))
                run(text("INSERT INTO tasks (id, project_id, data, is_gold, status, required, n_claimed, "
                         "n_annotations, below_target, created_at) VALUES (1, 1, '{}', false, 'pending', 1, 1, 0, "
                         "false, '2026-01-01')"))
                run(text("INSERT INTO assignments (id, task_id, project_id, annotator_id, status, created_at, "
                         "expires_at) VALUES (1, 1, 1, 1, 'active', '2026-01-01', '2036-01-01')"))
            database.dispose()
            upgrade(url)
            database = Database.from_url(url)
            with database.reader() as session:
                counts = [session.scalar(text(f"SELECT count(*) FROM {name}"))
                          for name in ("users", "api_tokens", "web_sessions", "assignments")]
                scope = session.scalar(text("SELECT scope FROM api_tokens"))
            assert counts == [2, 1, 1, 1]
            assert scope == "admin"  # tokens issued before scopes keep doing everything
            with database.writer.begin() as session:  # the same email, another organization: allowed now
                session.execute(text("INSERT INTO users (id, email, role, org_id, is_reviewer, is_active, created_at) "
                                     "VALUES (3, 'w@crowd.test', 'member', 1, false, true, '2026-01-01')"))
        finally:
            database.dispose()
