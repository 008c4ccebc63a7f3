"""Faults on the wire: a real aiosmtpd server that answers 421/451 at random, drops connections
after the message data without answering, and refuses some recipients with 550. Every deliverable
recipient must get exactly one copy; every refusal is recorded with its code."""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select
from support_send import add_send, smtp_server

from digest.db import session_scope
from digest.models import Delivery, DeliveryStatus, Issue
from digest.send.engine import SendPolicy, SendReport, deliver, enqueue_recipients
from digest.send.smtp import SmtpPool
from digest.settings import Settings

NOW = datetime(2017, 3, 17, 8, 0, tzinfo=UTC)
HTML = '<p>Hello %%NAME%%</p>\n<p>News.</p>\n<a href="%%UNSUBSCRIBE_URL%%">unsubscribe</a>\n'
TEXT = "Hello %%NAME%%\n\nUnsubscribe: %%UNSUBSCRIBE_URL%%\n"


class Faulty:
    """Random temporary failures and drops (seeded), fixed permanent refusals."""

    def __init__(self, *, refuse: set[str], seed: int = 3, rate: float = 0.15) -> None:
        self.rng = random.Random(seed)
        self.rate = rate
        self.refuse = refuse
        self.received: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.lock = threading.Lock()

    def _roll(self) -> bool:
        with self.lock:
            return self.rng.random() < self.rate

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        if self._roll():
            code = "421 4.3.2 closing, try later" if self._roll() else "451 4.3.0 try again later"
            self.faults[code[:3]] += 1
            return code
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self._roll():
            self.faults["drop"] += 1
            server.transport.close()  # gone before answering: nothing was accepted
            return "421 gone"
        if self._roll():
            self.faults["451-data"] += 1
            return "451 4.3.0 queue full"
        with self.lock:
            self.received.update(envelope.rcpt_tos)
        return "250 OK"


@pytest.fixture
def faulty() -> Iterator[tuple[Faulty, int]]:
    handler = Faulty(refuse={f"r{i:04d}@example.org" for i in range(0, 300, 37)})
    with smtp_server(handler) as port:
        yield handler, port


def test_every_deliverable_recipient_gets_one_copy_through_random_faults(
    faulty: tuple[Faulty, int], settings: Settings, engine: Engine
) -> None:
    handler, port = faulty
    with session_scope(engine) as session:
        add_send(
            session,
            newsletter=settings.newsletter_id,
            recipients=300,
            html=HTML,
            text=TEXT,
            confirmed_at=NOW,
        )
    cfg = settings.model_copy(update={"smtp_port": port, "smtp_connections": 4})
    pool = SmtpPool(cfg, connect_backoff=0.01)
    policy = SendPolicy(max_attempts=12, retry_base=0.01, retry_cap=0.05, wait_for_retries=5)
    with session_scope(engine) as session:
        issue = session.exec(select(Issue)).one()
    enqueue_recipients(engine, settings=cfg, issue_id=issue.id or 0, now=NOW)

    async def run() -> SendReport:
        try:
            return await deliver(engine, settings=cfg, issue=issue, sender=pool, policy=policy)
        finally:
            await pool.aclose()

    report = asyncio.run(run())

    assert handler.faults["421"] and handler.faults["451"] and handler.faults["drop"]
    assert pool.connects > cfg.smtp_connections  # 421s and drops forced reconnects
    with session_scope(engine) as session:
        rows = {d.email: d for d in session.exec(select(Delivery)).all()}
    refused = handler.refuse
    assert {e for e, d in rows.items() if d.status == DeliveryStatus.FAILED_PERMANENT} == refused
    assert all(rows[e].last_code == 550 and "5.1.1" in (rows[e].last_error or "") for e in refused)
    deliverable = set(rows) - refused
    assert {e for e in deliverable if rows[e].status == DeliveryStatus.SENT} == deliverable
    assert set(handler.received) == deliverable
    assert max(handler.received.values()) == 1
    assert report.sent == len(deliverable) and report.counts["failed_temporary"] == 0
    assert any(rows[e].attempts > 1 for e in deliverable)
