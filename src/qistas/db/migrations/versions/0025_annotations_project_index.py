"""annotations: the index on ``project_id`` alone goes; ``ix_annotations_annotator_order``
(``project_id, annotator_id, id``) serves every lookup by project as its first column does

Every answer wrote an entry in both; PostgreSQL and SQLite find a project's answers through
the composite index's first column as through an index of that column alone.

Revision ID: 0025_annotations_project_index
Revises: 0024_take_function
"""

from __future__ import annotations

from alembic import op

revision = "0025_annotations_project_index"
down_revision = "0024_take_function"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_annotations_project_id", table_name="annotations")


def downgrade() -> None:
    op.create_index("ix_annotations_project_id", "annotations", ["project_id"])
