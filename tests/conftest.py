"""Shared fixtures: real databases (a SQLite file always; PostgreSQL when
DIGEST_TEST_DATABASE_URL is set), a real SMTP server (aiosmtpd on 127.0.0.1), settings."""

from __future__ import annotations

import os
import shutil
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from sqlalchemy.engine import Engine
from sqlmodel import Session

from digest.db import dispose_all, make_engine
from digest.settings import Settings

PG_URL = os.environ.get("DIGEST_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite"] + (["postgres"] if PG_URL else [])
SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.environ.get("DIGEST_REQUIRE_POSTGRES") and not PG_URL:
        raise pytest.UsageError(
            "DIGEST_REQUIRE_POSTGRES is set but DIGEST_TEST_DATABASE_URL is not"
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating each time would be slow)."""
    folder = tmp_path_factory.mktemp("template")
    make_engine(Settings(data_dir=folder)).dispose()
    return folder / "digest.db"


@pytest.fixture(scope="session")
def pg_schema_url() -> Iterator[str]:
    """A schema of its own per test process inside the `test` database (so that parallel
    workers and parallel runs never meet), migrated once and dropped at the end."""
    schema = f"t_{_worker()}_{os.getpid()}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "data" / "digest.db"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(template, target)
        yield f"sqlite:///{target}"
        return
    url: str = request.getfixturevalue("pg_schema_url")
    engine = sa.create_engine(url)
    make_engine(Settings(data_dir=tmp_path / "pg", database_url=url)).dispose()
    with engine.begin() as conn:
        tables = [
            r[0]
            for r in conn.execute(
                sa.text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            )
            if r[0] != "alembic_version"
        ]
        if tables:
            names = ", ".join(f'"{t}"' for t in tables)
            conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()
    yield url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        base_url="https://news.example.org",
        from_email="digest@news.example.org",
        transactional_from_email="confirm@news.example.org",
        secret_key="test-secret-key-not-for-production",  # type: ignore[arg-type]
        timezone="Europe/London",
    )


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    yield make_engine(settings)


@pytest.fixture(autouse=True)
def _close_pooled_connections() -> Iterator[None]:
    yield
    dispose_all()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as s:
        yield s


@dataclass
class SmtpSink:
    """What a real aiosmtpd server on 127.0.0.1 received."""

    host: str
    port: int
    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def recipients(self) -> list[str]:
        with self.lock:
            return [r for _, rcpts, _ in self.messages for r in rcpts]


class _Collect:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.sink.lock:
            self.sink.messages.append(
                (envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content))
            )
        return "250 OK"


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    port = free_port()
    sink = SmtpSink(host="127.0.0.1", port=port)
    controller = Controller(_Collect(sink), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture
def shared_dir() -> Path:
    """../shared beside the repository; tests that read it skip when it is absent."""
    path = Path(os.environ.get("DIGEST_SHARED_DIR", SHARED))
    if not path.is_dir():
        pytest.skip(f"{path} is absent (corpus and seed are read at run time only)")
    return path
