"""The send commands the CLI, web and jobs call: a whole send run, a test copy, the dry-run
plan, the ledger's status, and requeueing failures. Each opens its own engine and sessions."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from digest.db import make_engine, session_scope
from digest.errors import CheckFailed, StateError
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
    from digest.subscribers.recipients import parse_address

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
    from digest.subscribers.consent import may_receive

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


# --- the pre-send check -----------------------------------------------------------------------


@dataclass(frozen=True)
class PreSendCheck:
    """How a send checks one personalised copy first (``digest.check``): ``offline`` skips the
    network checks (links answer, the one-click POST); ``force`` sends despite failures, which
    are then kept in ``SendReport.check_warnings``."""

    offline: bool = True
    force: bool = False


def _gate(*, settings: Settings, issue: Issue, now: datetime, check: PreSendCheck) -> list[str]:
    """Run the check; return the failed rows when forced. Raises CheckFailed otherwise."""
    from digest.check import check_issue

    report = check_issue(settings=settings, issue=issue, now=now, offline=check.offline)
    failed = [f"{c.name} ({c.detail})" if c.detail else c.name for c in report.failures]
    if failed and not check.force:
        raise CheckFailed(
            f"issue {issue.week} was not sent: the pre-send check failed: {'; '.join(failed)}. "
            f"Fix these (see `digest issue check {issue.week}`) or send anyway with --force"
        )
    return failed


def _anything_due(engine: Engine, *, issue: Issue, policy: SendPolicy | None) -> bool:
    """Whether a send now could hand any message over (a finished issue usually has none)."""
    if issue.status != IssueStatus.SENT:
        return True
    assert issue.id is not None
    with session_scope(engine) as session:
        counts = ledger.counts(session, issue_id=issue.id)
    uncertain = counts[S.UNCERTAIN.value] if policy and policy.resend_uncertain else 0
    return counts[S.QUEUED.value] + counts[S.FAILED_TEMPORARY.value] + uncertain > 0


# --- the whole command ------------------------------------------------------------------------


def run_send(
    *,
    settings: Settings,
    now: datetime,
    ref: str | int | None = None,
    sender: Sender | None = None,
    policy: SendPolicy | None = None,
    progress: Progress | None = None,
    check: PreSendCheck | None = None,
    stop: threading.Event | None = None,
) -> SendReport:
    """Send an issue to every confirmed subscriber who has not had it; safe to re-run.

    The first run puts one ledger row per recipient; every run sends the rows still due.
    ``sender`` defaults to the SMTP pool from settings. With ``check``, one personalised copy
    is checked first (unless nothing is due) and a failure raises CheckFailed before anything
    is written, unless forced. ``stop`` ends the run cleanly (see ``deliver``). Raises
    StateError for a cancelled or missed issue, NotFound when there is no such issue,
    ConfigError for a bad DKIM key.
    """
    engine = make_engine(settings)
    return _run_send(
        engine,
        settings=settings,
        now=now,
        ref=ref,
        sender=sender,
        policy=policy,
        progress=progress,
        check=check,
        stop=stop,
    )


def _sendable(session: Session, *, settings: Settings, ref: str | int | None) -> Issue:
    issue = issue_store.get_issue(session, newsletter=settings.newsletter_id, ref=ref)
    if issue.status in (IssueStatus.CANCELLED, IssueStatus.MISSED):
        raise StateError(f"the issue for {issue.week} is {issue.status}; it will not be sent")
    return issue


def _run_send(
    engine: Engine,
    *,
    settings: Settings,
    now: datetime,
    ref: str | int | None,
    sender: Sender | None,
    policy: SendPolicy | None,
    progress: Progress | None,
    check: PreSendCheck | None,
    stop: threading.Event | None,
) -> SendReport:
    with session_scope(engine) as session:
        issue = _sendable(session, settings=settings, ref=ref)
    warnings: list[str] = []
    if check is not None and _anything_due(engine, issue=issue, policy=policy):
        # Before anything is written: a refused issue keeps its state and gets no ledger rows.
        warnings = _gate(settings=settings, issue=issue, now=now, check=check)
    with session_scope(engine) as session:
        issue = _sendable(session, settings=settings, ref=issue.id)  # it may have changed
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
                stop=stop,
            )
        finally:
            if sender is None:
                await active.aclose()

    report = asyncio.run(run())
    report.enqueued = enqueued
    report.check_warnings = warnings
    return report


def send_test_copy(
    *, settings: Settings, ref: str | int | None, address: str, now: datetime
) -> str:
    """``digest issue send --test-to``: one copy through the SMTP pool; returns its Message-ID."""
    engine = make_engine(settings)
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


def plan_send(*, settings: Settings, ref: str | int | None) -> tuple[str, list[PlanRow]]:
    """``--dry-run``: the issue's week and, per subscriber, whether a send now would mail them."""
    engine = make_engine(settings)
    issue = _issue(engine, settings=settings, ref=ref)
    assert issue.id is not None
    return issue.week, plan(engine, settings=settings, issue_id=issue.id)


def ledger_status(*, settings: Settings, ref: str | int | None, now: datetime) -> dict[str, Any]:
    """``digest issue status``: rows per state, the rate, and the failed and uncertain rows."""
    engine = make_engine(settings)
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


def requeue_failed(
    *, settings: Settings, ref: str | int | None, include_permanent: bool = False
) -> tuple[str, int]:
    """``digest issue retry-failed``: failed rows back to queued, attempts reset; how many."""
    engine = make_engine(settings)
    issue = _issue(engine, settings=settings, ref=ref)
    assert issue.id is not None
    statuses = [S.FAILED_TEMPORARY] + ([S.FAILED_PERMANENT] if include_permanent else [])
    with session_scope(engine) as session:
        count = ledger.requeue(session, issue_id=issue.id, statuses=statuses, reset_attempts=True)
    return issue.week, count
