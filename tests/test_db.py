"""The schema comes from migrations, and the migrations match the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import digest.models  # noqa: F401
from digest.db import current_revision
from digest.settings import Settings


def test_the_schema_is_at_the_latest_migration(engine: Engine) -> None:
    from alembic.script import ScriptDirectory

    from digest.db import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert current_revision(engine) == head


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert diff == [], f"models changed without a migration (make migration m=...): {diff}"


def test_the_head_read_from_the_files_is_alembics_head() -> None:
    # make_engine skips Alembic when the database is already at this head.
    from alembic.script import ScriptDirectory

    from digest.db import alembic_config, head_revision

    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_an_older_schema_is_still_upgraded(settings: Settings) -> None:
    import sqlalchemy as sa

    from digest.db import _upgraded, head_revision, make_engine

    engine = make_engine(settings)
    with engine.begin() as connection:  # as digest left it before migration 0005
        connection.execute(sa.text("DROP INDEX ix_delivery_claim"))
        connection.execute(
            sa.text("CREATE INDEX ix_delivery_claim ON deliveries (issue_id, status)")
        )
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '0004'"))
    _upgraded.discard(settings.db_url)  # as in a new process
    make_engine(settings)
    assert current_revision(engine) == head_revision()
