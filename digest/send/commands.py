"""The send commands the CLI, web and jobs call: a whole send run, a test copy, the dry-run
plan, the ledger's status, and requeueing failures. Each opens its own engine and sessions."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from digest.db import make_engine, session_scope
from digest.errors import StateError
from digest.models import DeliveryStatus, Issue, IssueStatus, TestSend
from digest.send.engine import (
    Progress,
    SendPolicy,
    SendReport,
    build_template,
    deliver,
    enqueue_recipients,
)
from digest.send.message import Recipient, new_message_id
from digest.send.smtp import Sender, SmtpPool
from digest.settings import Settings
from digest.store import deliveries as ledger
from digest.store import issues as issue_store

S = DeliveryStatus


def _issue(engine: Engine, *, settings: Settings, ref: str | int | None) -> Issue:
    with session_scope(engine) as session:
        return issue_store.get_issue(session, newsletter=settings.newsletter_id, ref=ref)


# --- one copy for a person checking the issue -------------------------------------------------


async def send_test(
    engine: Engine,
    *,
    settings: Settings,
    issue: Issue,
    address: str,
    sender: Sender,
    now: datetime,
    requested_by: str = "cli",
) -> str:
    """Send one copy of ``issue`` to ``address`` without touching the ledger; record a TestSend.

    Returns the Message-ID. Raises InputError for a bad address, SendError when refused.
    """
    from digest.subscribers.service import parse_address

    email = parse_address(address)
    template = build_template(settings=settings, issue=issue)
    base = settings.base_url
    recipient = Recipient(
        email=email,
        name="",
        unsubscribe_url=f"{base}/u/test-copy",
        preferences_url=f"{base}/p/test-copy",
    )
    message_id = new_message_id(settings=settings)
    data = template.render(recipient, date=now, message_id=message_id)
    await sender.send(
        envelope_from=template.envelope_from(recipient), recipients=[email], message=data
    )
    assert issue.id is not None
    with session_scope(engine) as session:
        session.add(
            TestSend(issue_id=issue.id, email=email, sent_at=now, requested_by=requested_by)
        )
    return message_id


# --- who would receive it ---------------------------------------------------------------------


@dataclass(frozen=True)
class PlanRow:
    email: str
    send: bool
    reason: str


def plan(engine: Engine, *, settings: Settings, issue_id: int) -> list[PlanRow]:
    """Every subscriber and whether a send now would mail them, with the reason if not."""
    from digest.store.subscribers import list_subscribers
    from digest.subscribers.service import may_receive

    done = {
        S.SENT.value: "already sent",
        S.FAILED_PERMANENT.value: "failed permanently",
        S.UNCERTAIN.value: "uncertain (needs --resend-uncertain)",
        S.SKIPPED.value: "skipped",
        S.SENDING.value: "being sent by another worker",
    }
    out: list[PlanRow] = []
    with session_scope(engine) as session:
        states = ledger.states_by_subscriber(session, issue_id=issue_id)
        for subscriber in list_subscribers(session):
            state = states.get(subscriber.id or 0)
            if state in done:
                out.append(PlanRow(subscriber.email, False, done[state]))
                continue
            reason = may_receive(session, subscriber, newsletter=settings.newsletter_id)
            out.append(PlanRow(subscriber.email, reason is None, reason or ""))
    return out


# --- the whole command ------------------------------------------------------------------------


def run_send(
    *,
    settings: Settings,
    now: datetime,
    ref: str | int | None = None,
    sender: Sender | None = None,
    policy: SendPolicy | None = None,
    progress: Progress | None = None,
) -> SendReport:
    """Send an issue to every confirmed subscriber who has not had it; safe to re-run.

    The first run puts one ledger row per recipient; every run sends the rows still due.
    ``sender`` defaults to the SMTP pool from settings. Raises StateError for a cancelled or
    missed issue, NotFound when there is no such issue, ConfigError for a bad DKIM key.
    """
    engine = make_engine(settings)
    try:
        return _run_send(
            engine,
            settings=settings,
            now=now,
            ref=ref,
            sender=sender,
            policy=policy,
            progress=progress,
        )
    finally:
        engine.dispose()


def _run_send(
    engine: Engine,
    *,
    settings: Settings,
    now: datetime,
    ref: str | int | None,
    sender: Sender | None,
    policy: SendPolicy | None,
    progress: Progress | None,
) -> SendReport:
    with session_scope(engine) as session:
        issue = issue_store.get_issue(session, newsletter=settings.newsletter_id, ref=ref)
        if issue.status in (IssueStatus.CANCELLED, IssueStatus.MISSED):
            raise StateError(f"the issue for {issue.week} is {issue.status}; it will not be sent")
        first_run = issue.status != IssueStatus.SENT
        if first_run and issue.status != IssueStatus.SENDING:
            issue.status, issue.send_started_at = IssueStatus.SENDING, now
            session.add(issue)
    assert issue.id is not None
    enqueued = (
        enqueue_recipients(engine, settings=settings, issue_id=issue.id, now=now)
        if first_run
        else 0
    )

    async def run() -> SendReport:
        active: Sender = sender if sender is not None else SmtpPool(settings)
        try:
            return await deliver(
                engine,
                settings=settings,
                issue=issue,
                sender=active,
                policy=policy,
                progress=progress,
            )
        finally:
            if sender is None:
                await active.aclose()

    report = asyncio.run(run())
    report.enqueued = enqueued
    return report


def send_test_copy(
    *, settings: Settings, ref: str | int | None, address: str, now: datetime
) -> str:
    """``digest issue send --test-to``: one copy through the SMTP pool; returns its Message-ID."""
    engine = make_engine(settings)
    try:
        issue = _issue(engine, settings=settings, ref=ref)

        async def run() -> str:
            pool = SmtpPool(settings)
            try:
                return await send_test(
                    engine, settings=settings, issue=issue, address=address, sender=pool, now=now
                )
            finally:
                await pool.aclose()

        return asyncio.run(run())
    finally:
        engine.dispose()


def plan_send(*, settings: Settings, ref: str | int | None) -> tuple[str, list[PlanRow]]:
    """``--dry-run``: the issue's week and, per subscriber, whether a send now would mail them."""
    engine = make_engine(settings)
    try:
        issue = _issue(engine, settings=settings, ref=ref)
        assert issue.id is not None
        return issue.week, plan(engine, settings=settings, issue_id=issue.id)
    finally:
        engine.dispose()


def ledger_status(*, settings: Settings, ref: str | int | None, now: datetime) -> dict[str, Any]:
    """``digest issue status``: rows per state, the rate, and the failed and uncertain rows."""
    engine = make_engine(settings)
    try:
        issue = _issue(engine, settings=settings, ref=ref)
        assert issue.id is not None
        with session_scope(engine) as session:
            counts = ledger.counts(session, issue_id=issue.id)
            rate = ledger.rate(session, issue_id=issue.id, now=now)
            problems = ledger.failures(session, issue_id=issue.id)
            return {
                "issue": issue.week,
                "status": str(issue.status),
                "counts": counts,
                "total": sum(counts.values()),
                "sent_last_minute": rate.last_minute,
                "per_second": round(rate.per_second, 2),
                "first_sent_at": rate.first_sent_at,
                "last_sent_at": rate.last_sent_at,
                "problems": [
                    {
                        "email": p.email,
                        "status": str(p.status),
                        "code": p.last_code,
                        "error": p.last_error,
                        "attempts": p.attempts,
                    }
                    for p in problems
                ],
            }
    finally:
        engine.dispose()


def requeue_failed(
    *, settings: Settings, ref: str | int | None, include_permanent: bool = False
) -> tuple[str, int]:
    """``digest issue retry-failed``: failed rows back to queued, attempts reset; how many."""
    engine = make_engine(settings)
    try:
        issue = _issue(engine, settings=settings, ref=ref)
        assert issue.id is not None
        statuses = [S.FAILED_TEMPORARY] + ([S.FAILED_PERMANENT] if include_permanent else [])
        with session_scope(engine) as session:
            count = ledger.requeue(
                session, issue_id=issue.id, statuses=statuses, reset_attempts=True
            )
        return issue.week, count
    finally:
        engine.dispose()
