"""Alembic environment: runs on the connection digest hands over, or on DIGEST_DATABASE_URL."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import digest.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from digest.db import make_engine
from digest.settings import load_settings

target_metadata = SQLModel.metadata


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        engine = make_engine(load_settings(), upgrade_schema=False)
        with engine.begin() as own:
            _configure_and_run(own)
    else:
        _configure_and_run(connection)


def _configure_and_run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite needs batch mode to alter tables
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
