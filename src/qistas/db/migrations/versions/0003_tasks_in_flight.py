"""an index of the tasks in flight (started, still open)

Revision ID: 0003_tasks_in_flight
Revises: 0002_delivery, 0002_quality, 0002_web_sessions
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_tasks_in_flight"
down_revision = ("0002_delivery", "0002_quality", "0002_web_sessions")
branch_labels = None
depends_on = None

IN_FLIGHT = sa.text("status = 'pending' AND n_claimed > 0")


def upgrade() -> None:
    op.create_index("ix_tasks_in_flight", "tasks", ["project_id", "id"],
                    postgresql_where=IN_FLIGHT, sqlite_where=IN_FLIGHT)


def downgrade() -> None:
    op.drop_index("ix_tasks_in_flight", table_name="tasks")
