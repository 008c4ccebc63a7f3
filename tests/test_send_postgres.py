"""Two `digest issue send` processes on the same issue against PostgreSQL: rows are claimed with
FOR UPDATE SKIP LOCKED, so the work is shared and nobody gets the issue twice."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import select
from support_send import RecipientLog, add_send, smtp_server

from digest.db import make_engine, session_scope
from digest.models import Delivery, DeliveryStatus
from digest.settings import Settings

PG_URL = os.environ.get("DIGEST_TEST_DATABASE_URL", "")
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL, reason="needs DIGEST_TEST_DATABASE_URL (PostgreSQL)"),
]
RECIPIENTS = 600
NOW = datetime(2017, 3, 17, 8, 0, tzinfo=UTC)


@pytest.fixture
def server() -> Iterator[tuple[RecipientLog, int]]:
    # Every message is accepted after a short pause, so both senders overlap in time.
    log = RecipientLog(delay=0.005)
    with smtp_server(log) as port:
        yield log, port


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
    server: tuple[RecipientLog, int], pg_url: str, tmp_path: Path
) -> None:
    log, port = server
    settings = Settings(data_dir=tmp_path / "data", database_url=pg_url)
    engine = make_engine(settings)
    with session_scope(engine) as session:
        add_send(
            session,
            newsletter=settings.newsletter_id,
            recipients=RECIPIENTS,
            html='<p>%%NAME%%</p>\n<a href="%%UNSUBSCRIBE_URL%%">u</a>\n',
            text="%%NAME%%\n%%UNSUBSCRIBE_URL%%\n",
            confirmed_at=NOW,
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
