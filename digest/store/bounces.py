"""Bounces: one row per bounced recipient of one report, and the queries that read them."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from digest.models import Bounce, BounceKind, Delivery, Issue


def add_bounce(session: Session, bounce: Bounce) -> Bounce:
    session.add(bounce)
    session.flush()
    return bounce


def already_recorded(session: Session, *, source: str, email: str) -> bool:
    """Whether this report was already handled for this address (re-reading a mailbox or a
    folder twice must not count a soft bounce twice)."""
    found = session.exec(
        select(Bounce.id).where(Bounce.source == source, Bounce.email == email).limit(1)
    ).first()
    return found is not None


def delivery_by_id(session: Session, delivery_id: int) -> Delivery | None:
    return session.get(Delivery, delivery_id)


def delivery_by_message_id(session: Session, message_id: str) -> Delivery | None:
    """The delivery that sent the message with this Message-ID (``<...>`` form)."""
    return session.exec(select(Delivery).where(Delivery.message_id == message_id).limit(1)).first()


def soft_bounce_issues(session: Session, *, email: str, since: datetime) -> set[str]:
    """The soft bounces of ``email`` since ``since``, one entry per issue (the retries and
    repeated notices of one message are one bounce; a bounce tied to no issue counts alone)."""
    rows = session.exec(
        select(Bounce.id, Bounce.issue_id).where(
            Bounce.email == email,
            Bounce.kind == BounceKind.SOFT,
            col(Bounce.received_at) >= since,
            col(Bounce.action) != "noted",
        )
    ).all()
    return {f"issue:{issue}" if issue is not None else f"bounce:{id_}" for id_, issue in rows}


def policy_count(session: Session, *, issue_id: int, since: datetime | None = None) -> int:
    """Policy rejections recorded for one issue (distinct recipients), at or after ``since``."""
    query = select(sa.func.count(sa.distinct(col(Bounce.email)))).where(
        Bounce.issue_id == issue_id, Bounce.kind == BounceKind.POLICY
    )
    if since is not None:
        query = query.where(col(Bounce.received_at) >= since)
    count = session.exec(query).one()
    return int(count)


def list_bounces(
    session: Session,
    *,
    kind: BounceKind | None = None,
    issue_id: int | None = None,
    limit: int = 100,
) -> list[Bounce]:
    """The newest bounces first, optionally of one kind or one issue."""
    query = select(Bounce).order_by(col(Bounce.received_at).desc(), col(Bounce.id).desc())
    if kind is not None:
        query = query.where(Bounce.kind == kind)
    if issue_id is not None:
        query = query.where(Bounce.issue_id == issue_id)
    return list(session.exec(query.limit(limit)).all())


def bounce_stats(session: Session) -> dict[str, Any]:
    """Counts by kind, by recipient domain (per kind, busiest first) and by issue week."""
    rows = session.exec(
        select(Bounce.kind, Bounce.email, Issue.week).join(
            Issue, col(Bounce.issue_id) == col(Issue.id), isouter=True
        )
    ).all()
    by_kind: Counter[str] = Counter()
    by_domain: dict[str, Counter[str]] = {}
    by_issue: dict[str, Counter[str]] = {}
    for kind, email, week in rows:
        name = str(BounceKind(kind).value)
        by_kind[name] += 1
        domain = email.rpartition("@")[2] or "(none)"
        by_domain.setdefault(domain, Counter())[name] += 1
        by_issue.setdefault(week or "(unknown)", Counter())[name] += 1
    return {
        "total": len(rows),
        "by_kind": {k.value: by_kind[k.value] for k in BounceKind},
        "by_domain": {d: dict(c) for d, c in sorted(by_domain.items(), key=_busiest)},
        "by_issue": {i: dict(c) for i, c in sorted(by_issue.items())},
    }


def _busiest(item: tuple[str, Counter[str]]) -> tuple[int, str]:
    return (-sum(item[1].values()), item[0])
