"""Each job's unit of work. A task asks the store what is due, does it, and returns one line
for the log. Every task is safe to run twice, late, or from two schedulers at once: the store's
unique week key, the issue's conditional status changes and the delivery ledger decide.

Tasks read the clock only through ``ctx.clock`` so tests drive them with explicit times.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from digest.bounces.sources import Mailbox
from digest.db import session_scope
from digest.errors import CheckFailed, DigestError
from digest.models import IssueStatus, SubscriberStatus
from digest.settings import Settings
from digest.store import issues as issue_store
from digest.store import schedule as due
from jobs.calendar import (
    build_time,
    last_fire,
    send_deadline,
    send_time,
    send_trigger,
    week_key,
    week_to_build,
)
from jobs.notify import Notifier

if TYPE_CHECKING:
    # Only for annotations: the send stack loads when a send runs.
    from digest.send.smtp import Sender

log = logging.getLogger("digest.jobs")

PENDING_EXPIRY = timedelta(days=30)

# Two jobs send (the weekly `send` and the `send-scheduled` sweep); within one process they take
# turns, so they never race over the same issue. Across processes the lease and the store do.
_SENDING = threading.Lock()


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class TaskContext:
    """What a task may touch. ``sender`` is the SMTP sender for digests (None: the pool from
    settings); ``mailbox`` is the bounce mailbox (None: IMAP from settings); ``stop`` is set
    on SIGTERM so a task can end between units of work."""

    settings: Settings
    engine: Engine
    notifier: Notifier
    clock: Callable[[], datetime] = utcnow
    sender: Sender | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    mailbox: Mailbox | None = None


# --- build ----------------------------------------------------------------------------------


def build(ctx: TaskContext) -> str:
    """Build the week's issue once its build time has come; then approve it for its send time
    (AUTO_SEND) or ask the operator to approve it. A draft the schedule already built is not
    rebuilt on every restart."""
    from digest.pipeline import build_issue

    s, now = ctx.settings, ctx.clock()
    target = week_to_build(now, settings=s)
    if target is None:
        return "nothing to build: the next build time has not come"
    week, late = target
    with session_scope(ctx.engine) as session:
        existing = issue_store.issue_for_week(session, newsletter=s.newsletter_id, week=week)
        state = None if existing is None else (existing.status, existing.built_at, existing.id)
    if state is not None and state[0] != IssueStatus.DRAFT:
        return f"issue {week} is already {state[0]}"
    if state is not None and state[1] is not None and state[1] >= build_time(week, settings=s):
        issue_id = state[2]
        assert issue_id is not None
        return _after_build(ctx, week=week, issue_id=issue_id, now=now, told_before=True)
    try:
        # On time, the pipeline's own window (the seven days before the coming send); late, the
        # week is named, because the coming send is already next week's.
        result = build_issue(settings=s, now=now, week=week if late else None)
    except DigestError as exc:
        ctx.notifier.tell(
            f"the issue for {week} could not be built",
            f"Building the issue for {week} failed at {_local(now, s)}:\n\n  {exc}\n\n"
            "Fix the cause, then run: digest issue build --week " + week,
        )
        return f"build {week} failed: {exc}"
    except IntegrityError:
        # Two schedulers built the same week at once; the unique week key let one win.
        with session_scope(ctx.engine) as session:
            if issue_store.issue_for_week(session, newsletter=s.newsletter_id, week=week) is None:
                raise
        return f"issue {week} was built by another scheduler meanwhile"
    if result.issue is None or result.issue.id is None:
        return result.message
    if result.issue.week != week:  # the pipeline keyed it differently: trust the pipeline
        week = result.issue.week
    outcome = _after_build(ctx, week=week, issue_id=result.issue.id, now=now, told_before=False)
    return f"{result.message}; {outcome}"


def _after_build(
    ctx: TaskContext, *, week: str, issue_id: int, now: datetime, told_before: bool
) -> str:
    s = ctx.settings
    if s.auto_send:
        at = send_time(week, settings=s)
        with session_scope(ctx.engine) as session:
            approved = due.approve_draft(
                session, newsletter=s.newsletter_id, issue_id=issue_id, at=at
            )
        if not approved:
            return f"issue {week} changed meanwhile; left as it is"
        if at <= now:  # built after its send time: send now rather than at the next sweep
            return f"scheduled to send now (late); {send(ctx)}"
        return f"scheduled to send {_local(at, s)}"
    if not told_before:
        ctx.notifier.tell(
            f"the draft for {week} awaits your approval",
            f"The issue for {week} was built at {_local(now, s)}.\n\n"
            f"Preview it: digest issue preview {week}\n"
            f"Approve it for {_local(send_time(week, settings=s), s)}:"
            f" digest issue approve {week}\n",
        )
    return "draft awaits approval (digest issue approve)"


# --- send -----------------------------------------------------------------------------------


def send(ctx: TaskContext) -> str:
    """Send every issue whose time has come; resume interrupted sends; mark issues not started
    by their deadline as missed and tell the operator, instead of sending them late."""
    with _SENDING:
        return _send(ctx)


def _send(ctx: TaskContext) -> str:
    from digest.pipeline import send_issue

    s, now = ctx.settings, ctx.clock()
    lines: list[str] = []
    with session_scope(ctx.engine) as session:
        work = [
            (i.id, i.week, i.status, i.scheduled_for)
            for i in due.sends_due(session, newsletter=s.newsletter_id, now=now)
        ]
    for issue_id, week, status, scheduled_for in work:
        assert issue_id is not None
        if ctx.stop.is_set():
            lines.append("stopping: the rest waits for the next run")
            break
        if status == IssueStatus.APPROVED:
            assert scheduled_for is not None
            deadline = send_deadline(scheduled_for, settings=s)
            if now > deadline:
                lines.append(
                    _missed(ctx, issue_id=issue_id, week=week, scheduled_for=scheduled_for, now=now)
                )
                continue
            with session_scope(ctx.engine) as session:
                claimed = due.claim_send(session, issue_id=issue_id, now=now)
            if not claimed:
                lines.append(f"issue {week}: another worker started it")
                continue
        try:
            # ctx.stop (SIGTERM) ends the send within the batch in flight; the rest stays queued.
            report = send_issue(settings=s, now=now, ref=issue_id, sender=ctx.sender, stop=ctx.stop)
        except DigestError as exc:
            # The issue stays `sending`; the next run resumes it through the ledger.
            lines.append(f"issue {week}: send stopped ({exc}); it resumes on the next run")
            if isinstance(exc, CheckFailed) and status == IssueStatus.APPROVED:
                # Told once, on the first refusal; later sweeps retry quietly.
                ctx.notifier.tell(
                    f"the issue for {week} was NOT sent: the pre-send check failed",
                    f"{exc}\n\nOnce fixed, it goes out on the next sweep.\n",
                )
            continue
        lines.append(report.summary())
        if report.stopped:
            lines.append(f"issue {week}: stopped for shutdown; it resumes on the next run")
            break
    lines.extend(_unbuilt_week(ctx, now=now))
    return "; ".join(lines) or "nothing due to send"


def _missed(
    ctx: TaskContext, *, issue_id: int, week: str, scheduled_for: datetime, now: datetime
) -> str:
    s = ctx.settings
    with session_scope(ctx.engine) as session:
        marked = due.mark_missed(
            session, issue_id=issue_id,
            deadline_passed_for=now - timedelta(hours=s.send_deadline_hours),
        )  # fmt: skip
    if not marked:
        return f"issue {week}: changed meanwhile"
    ctx.notifier.tell(
        f"the issue for {week} was NOT sent: its deadline passed",
        f"The issue for {week} was scheduled for {_local(scheduled_for, s)} but had not started "
        f"by its deadline ({s.send_deadline_hours:g} h later); it is marked missed and will not "
        f"be sent by itself.\n\nTo send it anyway: digest issue schedule {week} --at now\n",
    )
    return f"issue {week} missed its send deadline: marked missed, operator told"


def _unbuilt_week(ctx: TaskContext, *, now: datetime) -> list[str]:
    """A week whose send deadline passed (within the last grace period) with no issue at all
    is recorded as missed, once, and the operator told. Older weeks are left alone, so a
    scheduler started long after does not report weeks nobody expected."""
    s = ctx.settings
    last_send = last_fire(send_trigger(s), at_or_before=now)
    deadline = send_deadline(last_send, settings=s)
    if not deadline < now <= deadline + timedelta(minutes=s.misfire_grace_minutes):
        return []
    week = week_key(last_send, settings=s)
    with session_scope(ctx.engine) as session:
        recorded = due.record_missed_week(session, newsletter=s.newsletter_id, week=week)
    if not recorded:
        return []
    ctx.notifier.tell(
        f"no issue went out for {week}",
        f"No issue for {week} was built before its send deadline "
        f"({_local(deadline, s)}); the week is recorded as missed.\n",
    )
    return [f"week {week} had no issue by its deadline: recorded missed, operator told"]


# --- ingest, bounces, subscriptions, pruning ------------------------------------------------


def ingest(ctx: TaskContext) -> str:
    """Ingest every source that is due (its own interval, else INGEST_EVERY_MINUTES): feeds
    and pages over HTTP, dumps and saved files from disk, one transaction per source."""
    from digest.pipeline import ingest_all

    return ingest_all(settings=ctx.settings, now=ctx.clock(), stop=ctx.stop).summary()


def bounces(ctx: TaskContext) -> str:
    """Read the bounce mailbox and apply each report (suppression, soft-bounce counts); each
    message moves to the processed folder only after its changes are committed. Alerts (a
    policy block, a complaint spike) are passed on to the operator."""
    from digest.bounces.apply import poll_mailbox

    s = ctx.settings
    if ctx.mailbox is None and not s.imap_host:
        return "no bounce mailbox configured (IMAP_HOST is empty)"
    try:
        report = poll_mailbox(settings=s, engine=ctx.engine, clock=ctx.clock, mailbox=ctx.mailbox)
    except DigestError as exc:
        return f"bounce mailbox not read: {exc}"
    for alert in report.alerts:
        ctx.notifier.tell("bounce alert", alert)
    return report.summary()


def expire_pending(ctx: TaskContext) -> str:
    """Subscriptions never confirmed within 30 days end (as unsubscribed, with a consent
    event saying why), so their address is not kept waiting forever."""
    from digest.subscribers import consent

    s, now = ctx.settings, ctx.clock()
    expired = 0
    while not ctx.stop.is_set():
        with session_scope(ctx.engine) as session:
            batch = due.pending_before(session, created_before=now - PENDING_EXPIRY, limit=200)
            for subscriber in batch:
                try:
                    with session.begin_nested():
                        consent.transition(
                            session, subscriber, SubscriberStatus.UNSUBSCRIBED,
                            source="expiry", now=now, list_id=s.newsletter_id,
                            evidence=f"not confirmed within {PENDING_EXPIRY.days} days",
                        )  # fmt: skip
                    expired += 1
                except DigestError as exc:  # confirmed meanwhile: leave it
                    log.info("not expired: %s", exc)
        if len(batch) < 200:
            break
    return f"{expired} pending subscription(s) expired"


def prune(ctx: TaskContext) -> str:
    """Delete raw ingest files (DATA_DIR/raw) older than RAW_RETENTION_DAYS."""
    s, now = ctx.settings, ctx.clock()
    folder = s.data_dir / "raw"
    if not folder.is_dir():
        return "no raw data kept (DATA_DIR/raw does not exist)"
    cutoff = (now - timedelta(days=s.raw_retention_days)).timestamp()
    removed = 0
    for path in sorted(folder.rglob("*")):
        if ctx.stop.is_set():
            break
        if path.is_file() and path.stat().st_mtime < cutoff:
            path.unlink()
            removed += 1
    return f"{removed} raw file(s) older than {s.raw_retention_days} days removed"


# --- helpers ---------------------------------------------------------------------------------


def _local(moment: datetime, settings: Settings) -> str:
    local = moment.astimezone(settings.zone)
    return f"{local:%a %Y-%m-%d %H:%M %Z} ({moment.astimezone(UTC):%H:%M} UTC)"
