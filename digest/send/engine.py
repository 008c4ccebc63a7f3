"""The send loop: every eligible subscriber gets the issue once, through crashes and failures.

``deliver`` runs one worker per SMTP connection. Workers never touch the database themselves:
they ask a ``claims.Rounds`` coordinator for their next row and hand it their last outcome; it
applies all outcomes and claims all the rows asked for in ONE transaction per round
(group commit). A row is committed as ``sending`` before its message is built and handed over,
and its outcome is committed in the same transaction that gives its worker the next row, so a
crash at any instant leaves at most one ``sending`` row per connection. The next run turns those
into ``uncertain`` (reported, resent only with ``resend_uncertain``) and sends everything else
that is still due, exactly once.

Consent and suppression are re-checked for each row in the transaction that claims it, right
before its message is built. Temporary failures (4xx, dropped connections) come back after an
exponential backoff with jitter, up to ``SendPolicy.max_attempts``; permanent ones (5xx) are
recorded with their code and text; a 4.7.28 throttle pauses the pool; an unreachable relay stops
the run with ``SendReport.paused`` set, leaving every unsent row queued.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pydantic import SecretStr
from sqlalchemy.engine import Engine

from digest.db import session_scope
from digest.errors import InputError, RelayUnavailable, SendError
from digest.models import DeliveryStatus, Issue, IssueStatus
from digest.send.claims import Job, Rounds, is_dead_worker, worker_name
from digest.send.dkim import DkimSigner
from digest.send.message import MessageTemplate, new_message_id
from digest.send.smtp import Sender, Throttled
from digest.settings import Settings
from digest.store import deliveries as ledger

S = DeliveryStatus
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class SendPolicy:
    """How hard to try. Tests shorten the waits; the defaults suit a real relay."""

    max_attempts: int = 5
    retry_base: float = 60.0  # first retry after about a minute, then 2, 4, 8 … minutes
    retry_cap: float = 3600.0
    wait_for_retries: float = 900.0  # a run waits this long for due retries, then leaves them
    resend_uncertain: bool = False
    stale_after: timedelta = timedelta(minutes=15)  # a claim by another machine counts as dead

    def backoff(self, attempts: int) -> float:
        """Seconds before attempt ``attempts + 1``: exponential, capped, with ±50 % jitter."""
        base = min(self.retry_cap, self.retry_base * 2.0 ** max(0, attempts - 1))
        return float(base * random.uniform(0.5, 1.5))


class Progress(Protocol):
    def start(self, total: int) -> None: ...
    def advance(self, outcome: str) -> None: ...


@dataclass
class SendReport:
    issue_week: str
    enqueued: int = 0
    sent: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    retrying: int = 0
    uncertain: int = 0
    resent_uncertain: int = 0
    paused: str | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        parts = [f"issue {self.issue_week}: {self.sent} sent now"]
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        if self.uncertain:
            parts.append(f"{self.uncertain} uncertain (resend with --resend-uncertain)")
        if self.paused:
            parts.append(f"PAUSED: {self.paused}")
        totals = ", ".join(f"{k} {v}" for k, v in self.counts.items() if v)
        return "; ".join(parts) + (f" — ledger: {totals}" if totals else "")


# --- enqueue ----------------------------------------------------------------------------------


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


# --- the loop ---------------------------------------------------------------------------------


def build_template(*, settings: Settings, issue: Issue) -> MessageTemplate:
    """The issue's pre-encoded message, signed when DKIM is configured."""
    return MessageTemplate.build(
        subject=issue.subject,
        html=issue.html,
        text=issue.text,
        settings=settings,
        campaign=issue.week,
        signer=DkimSigner.from_settings(settings),
    )


async def deliver(
    engine: Engine,
    *,
    settings: Settings,
    issue: Issue,
    sender: Sender,
    clock: Clock = utcnow,
    policy: SendPolicy | None = None,
    progress: Progress | None = None,
) -> SendReport:
    """Send every due row of ``issue`` through ``sender``; return what happened.

    Raises ConfigError for an unusable DKIM key; database errors propagate. An unreachable
    relay does not raise: the report's ``paused`` says why and the unsent rows stay queued.
    """
    policy = policy or SendPolicy()
    # Read the token secret once, not from its file for every link of every message.
    settings = settings.model_copy(update={"secret_key": SecretStr(settings.secret().decode())})
    assert issue.id is not None
    report = SendReport(issue_week=issue.week)
    template = build_template(settings=settings, issue=issue)
    worker = worker_name()
    now = clock()
    with session_scope(engine) as session:
        ledger.mark_dead_workers_uncertain(
            session,
            issue_id=issue.id,
            is_dead=lambda w, at: is_dead_worker(w, at, now=now, stale_after=policy.stale_after),
        )
        if policy.resend_uncertain:
            report.resent_uncertain = ledger.requeue(
                session, issue_id=issue.id, statuses=[S.UNCERTAIN], reset_attempts=False
            )
        limiter = getattr(sender, "limiter", None)
        if limiter is not None and not limiter.unlimited:
            limiter.seed(ledger.sent_times(session, since=now - timedelta(days=1)))
        before = ledger.counts(session, issue_id=issue.id)
    if progress:
        progress.start(before[S.QUEUED.value] + before[S.FAILED_TEMPORARY.value])

    rounds = Rounds(
        engine,
        settings=settings,
        issue_id=issue.id,
        worker=worker,
        policy=policy,
        clock=clock,
        report=report,
        progress=progress,
    )
    stopping: list[str] = []

    async def work() -> None:
        ready = getattr(sender, "ready", None)
        while not stopping:
            if ready is not None:
                await ready()
            item = await rounds.next()
            if item is None:
                return
            if isinstance(item, float):
                await asyncio.sleep(item)
                continue
            back_to_queue = {"id": item.claim.delivery_id, "status": S.QUEUED.value}
            if stopping:  # another connection found the relay down while we waited
                rounds.record(back_to_queue)
                return
            try:
                outcome = await _send_one(
                    item,
                    template=template,
                    sender=sender,
                    settings=settings,
                    clock=clock,
                    policy=policy,
                    report=report,
                )
            except RelayUnavailable:
                rounds.record(back_to_queue)  # never handed over: it waits for the next run
                raise
            rounds.record(outcome)
            if progress:
                progress.advance(outcome["status"])

    async def guarded() -> None:
        try:
            await work()
        except RelayUnavailable as exc:
            stopping.append(str(exc))

    try:
        await asyncio.gather(*(guarded() for _ in range(settings.smtp_connections)))
    finally:
        rounds.flush()
    if stopping:
        report.paused = stopping[0]
    with session_scope(engine) as session:
        report.counts = ledger.counts(session, issue_id=issue.id)
        report.uncertain = report.counts[S.UNCERTAIN.value]
        pending = report.counts[S.QUEUED.value] + report.counts[S.SENDING.value]
        retry = ledger.next_retry_at(session, issue_id=issue.id, max_attempts=policy.max_attempts)
        current = session.get(Issue, issue.id)
        if current is not None and not pending and retry is None and not report.paused:
            current.status, current.sent_at = IssueStatus.SENT, current.sent_at or clock()
            session.add(current)
    return report


async def _send_one(
    job: Job,
    *,
    template: MessageTemplate,
    sender: Sender,
    settings: Settings,
    clock: Clock,
    policy: SendPolicy,
    report: SendReport,
) -> dict[str, Any]:
    """Build, sign and hand over one message; return the ledger update.

    Raises RelayUnavailable when the message could not be handed over at all.
    """
    row, recipient = job.claim, job.recipient
    now = clock()
    message_id = new_message_id(settings=settings)
    attempts = row.attempts + 1
    try:
        data = template.render(recipient, date=now, message_id=message_id)
        await sender.send(
            envelope_from=template.envelope_from(recipient),
            recipients=[recipient.email],
            message=data,
        )
    except InputError as exc:  # an address or value that can never be sent
        report.failed.append((row.email, str(exc)))
        return {
            "id": row.delivery_id,
            "status": S.FAILED_PERMANENT.value,
            "attempts": attempts,
            "last_code": None,
            "last_error": str(exc)[:2000],
        }
    except RelayUnavailable:
        raise
    except Throttled as exc:
        resume = datetime.fromtimestamp(exc.resume_at, UTC)
        return {
            "id": row.delivery_id,
            "status": S.FAILED_TEMPORARY.value,
            "attempts": row.attempts,
            "next_attempt_at": resume,
            "last_code": exc.code,
            "last_error": str(exc)[:2000],
        }
    except SendError as exc:
        if exc.permanent:
            report.failed.append((row.email, str(exc)))
            return {
                "id": row.delivery_id,
                "status": S.FAILED_PERMANENT.value,
                "attempts": attempts,
                "last_code": exc.code,
                "last_error": str(exc)[:2000],
            }
        retry_at = None
        if attempts < policy.max_attempts:
            retry_at = now + timedelta(seconds=policy.backoff(attempts))
            report.retrying += 1
        else:
            report.failed.append((row.email, str(exc)))
        return {
            "id": row.delivery_id,
            "status": S.FAILED_TEMPORARY.value,
            "attempts": attempts,
            "next_attempt_at": retry_at,
            "last_code": exc.code,
            "last_error": str(exc)[:2000],
        }
    report.sent += 1
    return {
        "id": row.delivery_id,
        "status": S.SENT.value,
        "attempts": attempts,
        "sent_at": clock(),
        "message_id": message_id,
        "last_code": 250,
        "last_error": None,
    }
