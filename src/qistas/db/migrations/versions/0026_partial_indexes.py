"""fewer index entries per answer: the tasks' completion and active-learning indexes and the
audit events' time index become partial, the audit events' index of ``org_id`` goes

A claim changes ``n_claimed`` (a key of the tasks' indexes), so its UPDATE writes an entry in
every index of the table; PostgreSQL skips a partial index whose condition the new row does not
meet. ``ix_tasks_completed`` holds completed tasks only (``completed_at IS NOT NULL``: the
queries that read it compare ``completed_at``, which implies it); ``ix_tasks_ranked`` holds the
unstarted open tasks only (``status = 'pending' AND n_claimed = 0``, the ranked claim's own
literals), keyed by what it orders them by. On PostgreSQL an audit event is written pending,
then linked (a second version of its row, with entries in every index again):
``ix_audit_events_at`` now holds linked events only (``seq IS NOT NULL``, which the reads of a
chain say), and ``ix_audit_events_org_id`` goes: no query reads it (events are read by chain),
and organizations are never deleted.

Revision ID: 0026_partial_indexes
Revises: 0025_annotations_project_index
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026_partial_indexes"
down_revision = "0025_annotations_project_index"
branch_labels = None
depends_on = None

COMPLETED = sa.text("completed_at IS NOT NULL")
UNSTARTED = sa.text("status = 'pending' AND n_claimed = 0")
LINKED = sa.text("seq IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_tasks_completed", table_name="tasks")
    op.create_index("ix_tasks_completed", "tasks", ["project_id", "completed_at", "id"],
                    postgresql_where=COMPLETED, sqlite_where=COMPLETED)
    op.drop_index("ix_tasks_ranked", table_name="tasks")
    op.create_index("ix_tasks_ranked", "tasks", ["project_id", "serve_rank", "id"],
                    postgresql_where=UNSTARTED, sqlite_where=UNSTARTED)
    op.drop_index("ix_audit_events_org_id", table_name="audit_events")
    op.drop_index("ix_audit_events_at", table_name="audit_events")
    op.create_index("ix_audit_events_at", "audit_events", ["at"], postgresql_where=LINKED, sqlite_where=LINKED)


def downgrade() -> None:
    op.drop_index("ix_audit_events_at", table_name="audit_events")
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    op.create_index("ix_audit_events_org_id", "audit_events", ["org_id"])
    op.drop_index("ix_tasks_ranked", table_name="tasks")
    op.create_index("ix_tasks_ranked", "tasks", ["project_id", "status", "n_claimed", "serve_rank", "id"])
    op.drop_index("ix_tasks_completed", table_name="tasks")
    op.create_index("ix_tasks_completed", "tasks", ["project_id", "completed_at", "id"])
