"""The migrations build the schema the models describe: nothing missing, nothing extra."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from qistas.db.engine import Database
from qistas.db.models import Base


def test_the_migrated_schema_is_the_models_schema(database: Database) -> None:
    with database.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
