"""Queries the schedule asks: what is due to send, what has missed its deadline, and the
operator's schedule/approve/cancel transitions.

Every state change here is a conditional UPDATE on the issue's current status, so two schedulers
(or a scheduler and an operator) racing on one issue cannot both win.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from digest.errors import NotFound, StateError
from digest.models import Issue, IssueStatus, Source, Subscriber, SubscriberStatus

_ISSUES = Issue.__table__  # type: ignore[attr-defined]
_SOURCES = Source.__table__  # type: ignore[attr-defined]

# Statuses from which an operator may (re)schedule a send. A missed issue may be rescheduled:
# that is the operator's explicit decision, not a silent late send.
_SCHEDULABLE = (IssueStatus.DRAFT, IssueStatus.APPROVED, IssueStatus.MISSED)


def sends_due(session: Session, *, newsletter: str, now: datetime) -> list[Issue]:
    """Issues to work on now: approved ones whose scheduled time has come, and sends that were
    interrupted (still ``sending``: the ledger resumes them without duplicates). Oldest first."""
    approved_due = (col(Issue.status) == IssueStatus.APPROVED) & (col(Issue.scheduled_for) <= now)
    interrupted = col(Issue.status) == IssueStatus.SENDING
    return list(
        session.exec(
            select(Issue)
            .where(Issue.newsletter == newsletter, approved_due | interrupted)
            .order_by(col(Issue.scheduled_for), col(Issue.id))
        )
    )


def claim_send(session: Session, *, issue_id: int, now: datetime) -> bool:
    """Move an approved, due issue to ``sending``; False when someone else got there first or
    its state changed (cancelled, rescheduled)."""
    result = session.execute(
        sa.update(_ISSUES)
        .where(
            _ISSUES.c.id == issue_id,
            _ISSUES.c.status == IssueStatus.APPROVED.value,
            _ISSUES.c.scheduled_for <= now,
        )
        .values(status=IssueStatus.SENDING.value, send_started_at=now)
    )
    return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]


def mark_missed(session: Session, *, issue_id: int, deadline_passed_for: datetime) -> bool:
    """Mark an approved issue missed when it was scheduled at or before ``deadline_passed_for``
    (= now minus the send deadline). False when it was not (any more) in that state."""
    result = session.execute(
        sa.update(_ISSUES)
        .where(
            _ISSUES.c.id == issue_id,
            _ISSUES.c.status == IssueStatus.APPROVED.value,
            _ISSUES.c.scheduled_for < deadline_passed_for,
        )
        .values(status=IssueStatus.MISSED.value)
    )
    return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]


def record_missed_week(session: Session, *, newsletter: str, week: str) -> bool:
    """Record that ``week`` got no issue before its send deadline: a ``missed`` row with no
    content. The unique week key makes this happen once; False if the week has an issue."""
    try:
        with session.begin_nested():
            session.add(
                Issue(newsletter=newsletter, week=week, status=IssueStatus.MISSED,
                      subject="(not built before its send deadline)")
            )  # fmt: skip
    except IntegrityError:
        return False
    return True


def approve(session: Session, *, newsletter: str, ref: str | int, at: datetime) -> Issue:
    """Approve a draft (or move a scheduled or missed issue) to be sent at ``at``.

    Raises NotFound for an unknown issue, StateError when it is sending, sent or cancelled.
    """
    issue = _get(session, newsletter=newsletter, ref=ref)
    result = session.execute(
        sa.update(_ISSUES)
        .where(_ISSUES.c.id == issue.id, _ISSUES.c.status.in_([s.value for s in _SCHEDULABLE]))
        .values(status=IssueStatus.APPROVED.value, scheduled_for=at)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise StateError(
            f"the issue for {issue.week} is {issue.status}; only a draft, approved or missed "
            "issue can be scheduled"
        )
    session.refresh(issue)
    return issue


def approve_draft(session: Session, *, newsletter: str, issue_id: int, at: datetime) -> bool:
    """Approve a fresh draft for sending at ``at`` (the build job's auto-send); False when it is
    no longer a draft (an operator or another scheduler acted first)."""
    result = session.execute(
        sa.update(_ISSUES)
        .where(
            _ISSUES.c.id == issue_id,
            _ISSUES.c.newsletter == newsletter,
            _ISSUES.c.status == IssueStatus.DRAFT.value,
        )
        .values(status=IssueStatus.APPROVED.value, scheduled_for=at)
    )
    return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]


def cancel(session: Session, *, newsletter: str, ref: str | int) -> Issue:
    """Cancel a draft or scheduled issue: it will not be sent.

    Raises NotFound for an unknown issue, StateError once sending has started.
    """
    issue = _get(session, newsletter=newsletter, ref=ref)
    result = session.execute(
        sa.update(_ISSUES)
        .where(
            _ISSUES.c.id == issue.id,
            _ISSUES.c.status.in_([IssueStatus.DRAFT.value, IssueStatus.APPROVED.value]),
        )
        .values(status=IssueStatus.CANCELLED.value, scheduled_for=None)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise StateError(
            f"the issue for {issue.week} is {issue.status}; only a draft or approved issue "
            "can be cancelled"
        )
    session.refresh(issue)
    return issue


def pending_before(
    session: Session, *, created_before: datetime, limit: int = 500
) -> list[Subscriber]:
    """Subscriptions still pending (never confirmed) that were created before the cut-off."""
    return list(
        session.exec(
            select(Subscriber)
            .where(
                Subscriber.status == SubscriberStatus.PENDING,
                col(Subscriber.created_at) < created_before,
            )
            .order_by(col(Subscriber.id))
            .limit(limit)
        )
    )


def _get(session: Session, *, newsletter: str, ref: str | int) -> Issue:
    from digest.store.issues import get_issue

    issue = get_issue(session, newsletter=newsletter, ref=ref)
    if issue.id is None:  # pragma: no cover - rows from the database always have an id
        raise NotFound(f"no issue {ref!r}")
    return issue


def sources_due(session: Session, *, now: datetime, default_minutes: int) -> list[Source]:
    """Sources whose own interval (else the default) has passed since they were last checked,
    never-checked ones first. Filtered in Python: a publisher has tens of sources, not
    thousands, and the per-row interval would need dialect-specific date arithmetic in SQL."""
    rows = session.exec(select(Source).order_by(col(Source.last_checked_at), col(Source.id)))
    return [
        s
        for s in rows
        if s.last_checked_at is None
        or s.last_checked_at + timedelta(minutes=s.interval_minutes or default_minutes) <= now
    ]
