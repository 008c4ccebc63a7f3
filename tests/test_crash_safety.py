"""Crash safety: SIGKILL `digest issue send` at random points of a 2,000-recipient send and
restart it each time; a real aiosmtpd server on 127.0.0.1 logs what arrived.

Every recipient must arrive exactly once, apart from rows reported ``uncertain``; each kill may
leave at most one such row per SMTP connection.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select
from support_send import RecipientLog, add_send, smtp_server

from digest.db import make_engine, session_scope
from digest.models import Delivery, DeliveryStatus
from digest.settings import Settings

RECIPIENTS = 2000
CONNECTIONS = 4
KILLS = 5
NOW = datetime(2017, 3, 17, 8, 0, tzinfo=UTC)
HTML = (
    "<p>Hello %%NAME%%</p>\n"
    + "<p>A story of the week.</p>\n" * 200
    + ('<a href="%%UNSUBSCRIBE_URL%%">unsubscribe</a>\n')
)
TEXT = "Hello %%NAME%%\n\nThe week.\n\nUnsubscribe: %%UNSUBSCRIBE_URL%%\n"


@pytest.fixture
def server() -> Iterator[tuple[RecipientLog, int]]:
    log = RecipientLog()
    with smtp_server(log) as port:
        yield log, port


def prepare(data_dir: Path, n: int) -> Settings:
    """A SQLite store with ``n`` confirmed subscribers and one approved issue."""
    settings = Settings(
        data_dir=data_dir, base_url="https://news.example.org", from_email="digest@news.example.org"
    )
    engine = make_engine(settings)
    with session_scope(engine) as session:
        add_send(
            session,
            newsletter=settings.newsletter_id,
            recipients=n,
            html=HTML,
            text=TEXT,
            confirmed_at=NOW,
            email="r{:05d}@example.org",
            name="Reader {}",
        )
    engine.dispose()
    return settings


def sender_process(data_dir: Path, port: int, *, log: Path) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        DIGEST_DATA_DIR=str(data_dir),
        DIGEST_SMTP_HOST="127.0.0.1",
        DIGEST_SMTP_PORT=str(port),
        DIGEST_SMTP_CONNECTIONS=str(CONNECTIONS),
        DIGEST_BASE_URL="https://news.example.org",
        DIGEST_FROM_EMAIL="digest@news.example.org",
        DIGEST_DATABASE_URL="",
    )
    code = "from digest.cli import main; main()"
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [
                sys.executable,
                "-c",
                code,
                "issue",
                "send",
                "--quiet",
                "--json",
                "--force",
                "--offline",
            ],
            env=env,
            stdout=out,
            stderr=out,
        )


def ledger(settings: Settings) -> dict[str, str]:
    engine = make_engine(settings)
    try:
        with session_scope(engine) as session:
            return {d.email: str(d.status) for d in session.exec(select(Delivery)).all()}
    finally:
        engine.dispose()


@pytest.mark.slow
def test_killing_the_sender_at_random_points_never_sends_anyone_twice(
    server: tuple[RecipientLog, int], tmp_path: Path
) -> None:
    log, port = server
    settings = prepare(tmp_path / "data", RECIPIENTS)
    rng = random.Random(7)
    kills = 0
    for _ in range(KILLS * 3):
        if kills == KILLS:
            break
        proc = sender_process(settings.data_dir, port, log=tmp_path / "send.log")
        # Kill after the process has started sending (or finished starting up), at random.
        deadline = time.monotonic() + 60
        before = sum(log.received.values())
        while sum(log.received.values()) == before and proc.poll() is None:
            assert time.monotonic() < deadline, "the sender never started sending"
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 1.5))
        if proc.poll() is not None:
            break  # it finished before we could kill it
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        in_flight = Counter(ledger(settings).values())[DeliveryStatus.SENDING.value]
        assert in_flight <= CONNECTIONS, f"{in_flight} rows in flight after kill {kills}"
    final = sender_process(settings.data_dir, port, log=tmp_path / "send.log")
    final.wait(timeout=300)
    assert final.returncode == 0, (tmp_path / "send.log").read_text()[-2000:]
    assert kills >= 3, "the send finished before the kills could test anything"

    states = ledger(settings)
    uncertain = {e for e, s in states.items() if s == DeliveryStatus.UNCERTAIN.value}
    assert len(uncertain) <= kills * CONNECTIONS
    assert not [e for e, n in log.received.items() if n > 1], "someone got the issue twice"
    for email, state in states.items():
        if state == DeliveryStatus.SENT.value:
            assert log.received[email] == 1, email
        else:
            assert state == DeliveryStatus.UNCERTAIN.value, (email, state)
    assert len(states) == RECIPIENTS
    assert set(log.received) | uncertain == set(states)
