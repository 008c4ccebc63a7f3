"""Two `digest issue send` processes on the same issue against PostgreSQL: rows are claimed with
FOR UPDATE SKIP LOCKED, so the work is shared and nobody gets the issue twice."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from sqlmodel import select

from digest.db import make_engine, session_scope
from digest.models import Delivery, DeliveryStatus, Issue, IssueStatus, Subscriber
from digest.settings import Settings

PG_URL = os.environ.get("DIGEST_TEST_DATABASE_URL", "")
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL, reason="needs DIGEST_TEST_DATABASE_URL (PostgreSQL)"),
]
RECIPIENTS = 600
NOW = datetime(2017, 3, 17, 8, 0, tzinfo=UTC)


class SlowLog:
    """Accepts every message after a short pause, so both senders overlap in time."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(0.005)
        with self.lock:
            self.received.update(envelope.rcpt_tos)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server() -> Iterator[tuple[SlowLog, int]]:
    log, port = SlowLog(), free_port()
    controller = Controller(log, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield log, port
    finally:
        controller.stop()


@pytest.fixture
def pg_url() -> Iterator[str]:
    schema = f"t_send_two_{os.getpid()}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def test_two_senders_share_the_work_and_nobody_gets_it_twice(
    server: tuple[SlowLog, int], pg_url: str, tmp_path: Path
) -> None:
    log, port = server
    settings = Settings(data_dir=tmp_path / "data", database_url=pg_url)
    engine = make_engine(settings)
    with session_scope(engine) as session:
        session.add_all(
            Subscriber(
                email=f"r{i:04d}@example.org", name=f"R {i}", status="confirmed", confirmed_at=NOW
            )
            for i in range(RECIPIENTS)
        )
        session.add(
            Issue(
                newsletter=settings.newsletter_id,
                week="2017-W11",
                subject="The week",
                html='<p>%%NAME%%</p>\n<a href="%%UNSUBSCRIBE_URL%%">u</a>\n',
                text="%%NAME%%\n%%UNSUBSCRIBE_URL%%\n",
                status=IssueStatus.APPROVED,
            )
        )
    env = dict(
        os.environ,
        DIGEST_DATA_DIR=str(tmp_path / "data"),
        DIGEST_DATABASE_URL=pg_url,
        DIGEST_SMTP_HOST="127.0.0.1",
        DIGEST_SMTP_PORT=str(port),
        DIGEST_SMTP_CONNECTIONS="3",
        DIGEST_SECRET_KEY="two-senders-test-secret",
    )
    code = "from digest.cli import main; main()"
    with (tmp_path / "a.log").open("wb") as a, (tmp_path / "b.log").open("wb") as b:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", code, "issue", "send", "--quiet", "--force", "--offline"],
                env=env,
                stdout=out,
                stderr=out,
            )
            for out in (a, b)
        ]
        for proc in procs:
            proc.wait(timeout=300)
    logs = [(tmp_path / n).read_text() for n in ("a.log", "b.log")]
    assert [p.returncode for p in procs] == [0, 0], logs

    with session_scope(engine) as session:
        rows = session.exec(select(Delivery)).all()
    engine.dispose()
    assert len(rows) == RECIPIENTS
    assert {r.status for r in rows} == {DeliveryStatus.SENT}
    assert len(log.received) == RECIPIENTS and max(log.received.values()) == 1
    per_process = Counter((r.worker or "").split(":")[1] for r in rows)
    assert len(per_process) == 2, per_process  # both processes sent a share
    assert min(per_process.values()) > RECIPIENTS // 10, per_process
