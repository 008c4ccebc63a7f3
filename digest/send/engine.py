"""The send loop: enqueue every eligible subscriber in the ledger, then claim, build, sign and
hand each message to the sender, recording the outcome row by row.

A crash at any instant followed by a re-run sends each remaining recipient once: rows are
committed as ``sending`` before SMTP sees the message and ``sent`` right after; rows found in
``sending`` on start are ``uncertain``, not resent.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from digest.db import session_scope
from digest.errors import RelayUnavailable, SendError
from digest.models import DeliveryStatus, Issue, IssueStatus
from digest.settings import Settings
from digest.store import deliveries as ledger

BATCH = 100
STALE_AFTER = timedelta(minutes=10)


@dataclass
class SendReport:
    issue_week: str
    enqueued: int = 0
    sent: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    uncertain: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        parts = [f"issue {self.issue_week}: {self.sent} sent now"]
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        if self.uncertain:
            parts.append(f"{self.uncertain} uncertain (resend with --resend-uncertain)")
        totals = ", ".join(f"{k} {v}" for k, v in self.counts.items() if v)
        return "; ".join(parts) + (f" — ledger: {totals}" if totals else "")


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def enqueue_recipients(engine: Engine, *, settings: Settings, issue_id: int, now: datetime) -> int:
    """Add a ledger row for every confirmed, unsuppressed subscriber, page by page."""
    from digest.subscribers.service import confirmed_recipients

    added, after = 0, 0
    while True:
        with session_scope(engine) as session:
            page = confirmed_recipients(
                session, newsletter=settings.newsletter_id, after_id=after, limit=1000
            )
            if not page:
                return added
            added += ledger.enqueue(session, issue_id=issue_id, subscribers=page, now=now)
            after = max(s.id or 0 for s in page)


async def deliver(
    engine: Engine,
    *,
    settings: Settings,
    issue: Issue,
    sender: object,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> SendReport:
    """Send every queued row of ``issue`` through ``sender`` (a digest.send Sender)."""
    from digest.models import Subscriber
    from digest.send.dkim import DkimSigner
    from digest.send.message import MessageTemplate, Recipient, new_message_id
    from digest.subscribers.service import may_receive, preferences_url, unsubscribe_url

    assert issue.id is not None
    report = SendReport(issue_week=issue.week)
    template = MessageTemplate.build(
        subject=issue.subject, html=issue.html, text=issue.text, settings=settings,
        campaign=issue.week,
    )  # fmt: skip
    signer = DkimSigner.from_settings(settings)
    worker = worker_name()
    with session_scope(engine) as session:
        report.uncertain = ledger.mark_interrupted_uncertain(
            session, issue_id=issue.id, before=clock() - STALE_AFTER
        )
    slots = asyncio.Semaphore(settings.smtp_connections)

    async def one(delivery_id: int, subscriber: Subscriber) -> None:
        now = clock()
        message_id = new_message_id(settings=settings)
        recipient = Recipient(
            email=subscriber.email, name=subscriber.name,
            unsubscribe_url=unsubscribe_url(settings=settings, subscriber=subscriber),
            preferences_url=preferences_url(settings=settings, subscriber=subscriber),
            delivery_id=delivery_id,
        )  # fmt: skip
        data = template.render(recipient, date=now, message_id=message_id)
        if signer is not None:
            data = signer.sign(data)
        async with slots:
            try:
                await sender.send(  # type: ignore[attr-defined]
                    envelope_from=settings.from_email, recipients=[subscriber.email], message=data
                )
            except RelayUnavailable:
                with session_scope(engine) as session:
                    ledger.finish(
                        session, delivery_id=delivery_id, status=DeliveryStatus.QUEUED, now=now
                    )
                raise
            except SendError as exc:
                status = (
                    DeliveryStatus.FAILED_PERMANENT
                    if exc.permanent
                    else DeliveryStatus.FAILED_TEMPORARY
                )
                with session_scope(engine) as session:
                    ledger.finish(session, delivery_id=delivery_id, status=status, now=now,
                                  message_id=message_id, code=exc.code, error=str(exc))  # fmt: skip
                report.failed.append((subscriber.email, str(exc)))
                return
        with session_scope(engine) as session:
            ledger.finish(session, delivery_id=delivery_id, status=DeliveryStatus.SENT, now=clock(),
                          message_id=message_id)  # fmt: skip
        report.sent += 1

    while True:
        with session_scope(engine) as session:
            rows = ledger.claim(session, issue_id=issue.id, limit=BATCH, worker=worker, now=clock())
            batch: list[tuple[int, Subscriber]] = []
            for row in rows:
                subscriber = session.get(Subscriber, row.subscriber_id)
                reason = (
                    "subscriber no longer exists" if subscriber is None
                    else may_receive(session, subscriber, newsletter=settings.newsletter_id)
                )  # fmt: skip
                if reason is not None or subscriber is None:
                    row.status, row.last_error = DeliveryStatus.SKIPPED, reason
                    session.add(row)
                    report.skipped.append((row.email, reason or ""))
                else:
                    assert row.id is not None
                    batch.append((row.id, subscriber))
        if not rows:
            break
        await asyncio.gather(*(one(did, sub) for did, sub in batch))
    with session_scope(engine) as session:
        report.counts = ledger.counts(session, issue_id=issue.id)
        current = session.get(Issue, issue.id)
        if current is not None and not report.counts[DeliveryStatus.QUEUED.value]:
            current.status, current.sent_at = IssueStatus.SENT, clock()
            session.add(current)
    return report
