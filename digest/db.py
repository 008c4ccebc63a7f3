"""Engine and sessions. The schema is owned by Alembic migrations in ``digest/migrations``;
every entry point calls :func:`make_engine`, which upgrades the schema on first use."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from digest.errors import ConfigError
from digest.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"
_upgraded: set[str] = set()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


_engines: dict[str, Engine] = {}


def make_engine(settings: Settings, *, upgrade_schema: bool = True) -> Engine:
    """The process's engine for ``settings.db_url`` (one pool per URL, made on first use);
    creates the data folder and upgrades the schema once.

    Raises ConfigError when the database cannot be reached.
    """
    url = settings.db_url
    cached = _engines.get(url)
    if cached is not None and (url in _upgraded or not upgrade_schema):
        return cached
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = cached or _new_engine(url)
    if upgrade_schema and url not in _upgraded:
        if not _at_head(engine):
            upgrade(engine)
        _upgraded.add(url)
    _engines[url] = engine
    return engine


def dispose_all() -> None:
    """Close every pooled connection (tests call this between tests; engines stay usable)."""
    for engine in _engines.values():
        engine.dispose()


def _new_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


_REVISION_LINE = re.compile(r"""^(down_revision|revision)\s*=\s*['"]?(\w+)""", re.MULTILINE)


def head_revision() -> str:
    """The newest migration's id, read from the migration files (no Alembic import: every CLI
    command asks this once, and importing Alembic costs more than the command itself)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for match in _REVISION_LINE.finditer(path.read_text()):
            (revisions if match[1] == "revision" else parents).add(match[2])
    (head,) = revisions - parents
    return head


def _at_head(engine: Engine) -> bool:
    """True when the database's schema is the newest migration's (False also when the
    database cannot be read: then ``upgrade`` says why)."""
    try:
        with engine.connect() as connection:
            version = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
            return version.scalar() == head_revision()
    except sa.exc.DBAPIError:
        return False


def upgrade(engine: Engine, *, revision: str = "head") -> None:
    """Apply Alembic migrations up to ``revision``. Raises ConfigError if the DB is unreachable."""
    from alembic import command

    try:
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    except OperationalError as exc:
        raise ConfigError(
            f"cannot reach the database {engine.url.render_as_string(hide_password=True)}: "
            f"{str(exc.orig).strip().splitlines()[0]} (check DIGEST_DATABASE_URL)"
        ) from None


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def alembic_config() -> Any:
    from alembic.config import Config

    config = Config(str(MIGRATIONS / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits when the block succeeds and rolls back when it raises."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
