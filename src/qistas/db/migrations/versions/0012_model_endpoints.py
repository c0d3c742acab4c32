"""organizations' model endpoints and the projects' pre-label jobs

Revision ID: 0012_model_endpoints
Revises: 0011_predictions
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from qistas.db.types import JSONType, UTCDateTime

revision = "0012_model_endpoints"
down_revision = "0011_predictions"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "model_endpoints",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("org_id", BigId, sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("base_url", sa.String(2048), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("api_key_sealed", sa.String(1024), nullable=True),
        sa.Column("max_concurrency", sa.Integer(), nullable=False),
        sa.Column("requests_per_minute", sa.Integer(), nullable=True),
        sa.Column("timeout_seconds", sa.Float(), nullable=False),
        sa.Column("allow_private", sa.Boolean(), nullable=False),
        sa.Column("price_input_per_1k", sa.Float(), nullable=True),
        sa.Column("price_output_per_1k", sa.Float(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_model_endpoints_org_id", "model_endpoints", ["org_id"])
    op.create_table(
        "prelabel_jobs",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("project_id", BigId, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("endpoint_id", BigId, sa.ForeignKey("model_endpoints.id"), nullable=False),
        sa.Column("requested_by", BigId, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("template", JSONType, nullable=False),
        sa.Column("only_pending", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", UTCDateTime, nullable=True),
        sa.Column("tasks_total", sa.Integer(), nullable=True),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("last_task_id", sa.BigInteger(), nullable=True),
        sa.Column("failures", JSONType, nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("error", sa.String(500), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=True),
        sa.Column("finished_at", UTCDateTime, nullable=True),
    )
    op.create_index("ix_prelabel_jobs_project_id", "prelabel_jobs", ["project_id"])
    op.create_index("ix_prelabel_jobs_endpoint_id", "prelabel_jobs", ["endpoint_id"])
    op.create_index("ix_prelabel_jobs_queue", "prelabel_jobs", ["status", "lease_until"])


def downgrade() -> None:
    op.drop_table("prelabel_jobs")
    op.drop_table("model_endpoints")
