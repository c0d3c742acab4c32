"""models as annotators: model users, the projects' model_annotators setting, pre-label job modes

Revision ID: 0013_model_annotators
Revises: 0012_model_endpoints
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from qistas.db.types import JSONType

revision = "0013_model_annotators"
down_revision = "0012_model_endpoints"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("endpoint_id", BigId, nullable=True))
        batch.create_foreign_key("fk_users_endpoint_id", "model_endpoints", ["endpoint_id"], ["id"])
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("model_annotators", JSONType, nullable=False, server_default="{}"))
    with op.batch_alter_table("prelabel_jobs") as batch:
        batch.add_column(sa.Column("mode", sa.String(16), nullable=False, server_default="predictions"))


def downgrade() -> None:
    with op.batch_alter_table("prelabel_jobs") as batch:
        batch.drop_column("mode")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("model_annotators")
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint("fk_users_endpoint_id", type_="foreignkey")
        batch.drop_column("endpoint_id")
