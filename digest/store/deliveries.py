"""The delivery ledger: one row per (issue, subscriber), written before SMTP sees a message."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select, update

from digest.models import Delivery, DeliveryStatus, Subscriber


def enqueue(
    session: Session, *, issue_id: int, subscribers: Sequence[Subscriber], now: datetime
) -> int:
    """Add a queued row for each subscriber that has none for this issue yet; return how many.

    An insert that ignores conflicts on the unique (issue, subscriber) pair, so that two
    workers enqueueing at once, or a re-run, never create a second row.
    """
    if not subscribers:
        return 0
    rows = [
        {"issue_id": issue_id, "subscriber_id": s.id, "email": s.email,
         "status": DeliveryStatus.QUEUED.value, "attempts": 0, "created_at": now}
        for s in subscribers
    ]  # fmt: skip
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(Delivery).values(rows).on_conflict_do_nothing()
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(Delivery).values(rows).on_conflict_do_nothing()
    result = session.execute(stmt)
    return int(result.rowcount or 0)


def mark_interrupted_uncertain(session: Session, *, issue_id: int, before: datetime) -> int:
    """Rows left in ``sending`` by a worker that died (claimed before ``before``) may or may
    not have gone out: they become ``uncertain`` and are reported, never silently resent."""
    result = session.execute(
        update(Delivery)
        .where(
            col(Delivery.issue_id) == issue_id,
            col(Delivery.status) == DeliveryStatus.SENDING.value,
            col(Delivery.claimed_at) < before,
        )
        .values(status=DeliveryStatus.UNCERTAIN.value)
    )
    return int(result.rowcount or 0)


def claim(
    session: Session, *, issue_id: int, limit: int, worker: str, now: datetime
) -> list[Delivery]:
    """Take up to ``limit`` queued rows for this worker and mark them ``sending``.

    On PostgreSQL, ``FOR UPDATE SKIP LOCKED`` lets several workers claim disjoint rows at once.
    The caller commits right after, before any message goes out.
    """
    query = (
        select(Delivery)
        .where(Delivery.issue_id == issue_id, Delivery.status == DeliveryStatus.QUEUED.value)
        .order_by(col(Delivery.id))
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = list(session.exec(query))
    for row in rows:
        row.status = DeliveryStatus.SENDING
        row.claimed_at = now
        row.worker = worker
        row.attempts += 1
        session.add(row)
    session.flush()
    return rows


def finish(
    session: Session,
    *,
    delivery_id: int,
    status: DeliveryStatus,
    now: datetime,
    message_id: str | None = None,
    code: int | None = None,
    error: str | None = None,
) -> None:
    values: dict[str, object] = {"status": status.value, "last_code": code, "last_error": error}
    if message_id is not None:
        values["message_id"] = message_id
    if status is DeliveryStatus.SENT:
        values["sent_at"] = now
    session.execute(update(Delivery).where(col(Delivery.id) == delivery_id).values(**values))


def counts(session: Session, *, issue_id: int) -> dict[str, int]:
    """Rows per state for one issue (every state present, zero when empty)."""
    found = dict(
        session.execute(
            select(Delivery.status, sa.func.count())
            .where(Delivery.issue_id == issue_id)
            .group_by(Delivery.status)
        ).all()
    )
    return {s.value: int(found.get(s.value, 0)) for s in DeliveryStatus}
