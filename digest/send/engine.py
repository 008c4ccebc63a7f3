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
recorded with their code and text and handed to the bounce rules; a 4.7.28 throttle pauses the
pool; an unreachable relay, or policy refusals past ``policy_pause_threshold`` in this run, stop
the run with ``SendReport.paused`` set, leaving every unsent row queued.

A ``stop`` event (set on SIGTERM by the CLI and the scheduler) ends the run cleanly: no row is
claimed after it is set, the messages already handed to SMTP finish and are recorded, and the
rest stays queued (``SendReport.stopped``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pydantic import SecretStr
from sqlalchemy.engine import Engine

from digest.db import session_scope
from digest.errors import InputError, RelayUnavailable, SendError
from digest.models import DeliveryStatus, Issue, IssueStatus
from digest.send import prebuild
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
    gather_wait: float = 0.001  # a round waits this long for workers still missing
    prebuild_from: int = 200  # build messages ahead in a child process from this many due rows

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
    paused_by_policy: bool = False  # paused for policy refusals (not for the relay)
    stopped: bool = False  # the stop event ended the run with rows still queued
    check_warnings: list[str] = field(default_factory=list)  # failed checks sent past (force)
    built_ahead: int = 0  # messages that the prebuild child built (see send.prebuild)
    built_ahead_trouble: str | None = None  # why the prebuild child stopped early, if it did
    counts: dict[str, int] = field(default_factory=dict)

    def summary(self, *, pause: bool = True) -> str:
        """One line: what this run did and the ledger's counts (``pause``: with why it paused,
        for callers that do not report the pause themselves)."""
        parts = [f"issue {self.issue_week}: {self.sent} sent now"]
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        if self.uncertain:
            parts.append(f"{self.uncertain} uncertain (resend with --resend-uncertain)")
        if self.paused and pause:
            parts.append(f"PAUSED: {self.paused}")
        if self.stopped:
            waiting = self.counts.get(S.QUEUED.value, 0)
            parts.append(f"stopped on request with {waiting} still queued (run again to resume)")
        totals = ", ".join(f"{k} {v}" for k, v in self.counts.items() if v)
        return "; ".join(parts) + (f" — ledger: {totals}" if totals else "")


# --- enqueue ----------------------------------------------------------------------------------


def enqueue_recipients(engine: Engine, *, settings: Settings, issue_id: int, now: datetime) -> int:
    """Add a ledger row for every confirmed, unsuppressed subscriber (one transaction)."""
    with session_scope(engine) as session:
        return ledger.enqueue_eligible(
            session, issue_id=issue_id, newsletter=settings.newsletter_id, now=now
        )


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
    stop: threading.Event | None = None,
) -> SendReport:
    """Send every due row of ``issue`` through ``sender``; return what happened.

    Raises ConfigError for an unusable DKIM key; database errors propagate. An unreachable
    relay or too many policy refusals do not raise: the report's ``paused`` says why and the
    unsent rows stay queued. Once ``stop`` is set no further row is claimed; the call returns
    when the messages in flight are recorded (``report.stopped``).
    """
    policy = policy or SendPolicy()
    halt = stop or threading.Event()
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
        stop=halt,
        since=now,
    )
    stopping: list[str] = []
    prebuilt = None
    due = before[S.QUEUED.value]
    if policy.prebuild_from and due >= policy.prebuild_from and prebuild.available():
        prebuilt = prebuild.Prebuilder(stock=4 * settings.smtp_connections)
        prebuilt.start(
            prebuild.Work(
                engine,
                template=template,
                settings=settings,
                issue_id=issue.id,
                secret=settings.secret() if settings.verp_domain else b"",
                skip=settings.smtp_connections,
                clock=clock,
            )
        )

    async def work() -> None:
        ready = getattr(sender, "ready", None)
        while not stopping and not halt.is_set():
            # A rate-limit wait or a throttling pause can be long: a stop request cuts it short.
            if ready is not None:
                if stop is None:
                    await ready()
                elif not await _unless_stopped(ready(), halt):
                    return
            item = await rounds.next()
            if item is None:
                return
            if isinstance(item, float):
                await _sleep_unless_stopped(item, halt)
                continue
            back_to_queue = {"id": item.claim.delivery_id, "status": S.QUEUED.value}
            if stopping or halt.is_set():  # the relay went down, or a stop came, meanwhile
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
                    prebuilt=prebuilt,
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
        if prebuilt is not None:
            prebuilt.close()
            report.built_ahead = prebuilt.used
            report.built_ahead_trouble = prebuilt.trouble
        try:
            await rounds.settle()
        finally:
            rounds.flush()
    if stopping or rounds.paused:
        report.paused = stopping[0] if stopping else rounds.paused
        report.paused_by_policy = not stopping
    with session_scope(engine) as session:
        report.counts = ledger.counts(session, issue_id=issue.id)
        report.uncertain = report.counts[S.UNCERTAIN.value]
        pending = report.counts[S.QUEUED.value] + report.counts[S.SENDING.value]
        report.stopped = halt.is_set() and not report.paused and bool(pending)
        retry = ledger.next_retry_at(session, issue_id=issue.id, max_attempts=policy.max_attempts)
        current = session.get(Issue, issue.id)
        if current is not None and not pending and retry is None and not report.paused:
            current.status, current.sent_at = IssueStatus.SENT, current.sent_at or clock()
            session.add(current)
    return report


STOP_POLL = 0.2  # seconds between looks at the stop event while waiting


async def _unless_stopped(waiting: Awaitable[None], halt: threading.Event) -> bool:
    """Await ``waiting`` unless ``halt`` is set first (then cancel it); True when it finished."""
    task = asyncio.ensure_future(waiting)
    while not task.done():
        await asyncio.wait({task}, timeout=STOP_POLL)
        if halt.is_set() and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return False
    task.result()
    return True


async def _sleep_unless_stopped(seconds: float, halt: threading.Event) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while not halt.is_set() and (left := end - loop.time()) > 0:
        await asyncio.sleep(min(left, STOP_POLL))


async def _send_one(
    job: Job,
    *,
    template: MessageTemplate,
    sender: Sender,
    settings: Settings,
    clock: Clock,
    policy: SendPolicy,
    report: SendReport,
    prebuilt: prebuild.Prebuilder | None = None,
) -> dict[str, Any]:
    """Build, sign and hand over one message (or take the one built ahead for this very
    recipient); return the ledger update.

    Raises RelayUnavailable when the message could not be handed over at all.
    """
    row, recipient = job.claim, job.recipient
    now = clock()
    attempts = row.attempts + 1
    built = prebuilt.take(row.delivery_id, recipient) if prebuilt is not None else None
    message_id = built.message_id if built else new_message_id(settings=settings)
    try:
        data = built.data if built else template.render(recipient, date=now, message_id=message_id)
        await sender.send(
            envelope_from=template.envelope_from(recipient),
            recipients=[recipient.email],
            message=data,
            handover_after=job.committed,  # the pool shields it while it waits
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
