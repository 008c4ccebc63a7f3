"""Subscribers: lookups, the recipient query, counts. Status changes go through
``digest.subscribers.consent.transition`` only; ``set_status_if`` exists for it alone."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from digest.models import Bounce, Delivery, Subscriber, SubscriberStatus
from digest.store.suppressions import not_suppressed_clause

# An erased subscriber keeps its row (the consent log points at it) but no address:
# ``erased-<id>@erased.invalid`` (RFC 2606 reserves .invalid, so it can never be mailed).
ERASED_DOMAIN = "erased.invalid"


def get_subscriber(session: Session, subscriber_id: int) -> Subscriber | None:
    return session.get(Subscriber, subscriber_id)


def subscriber_by_email(session: Session, email: str) -> Subscriber | None:
    """The subscriber with this (already normalised) address, or None."""
    return session.exec(select(Subscriber).where(Subscriber.email == email)).first()


def subscriber_by_confirm_hash(session: Session, token_hash: str) -> Subscriber | None:
    return session.exec(
        select(Subscriber).where(Subscriber.confirm_token_hash == token_hash)
    ).first()


def subscribers_by_emails(session: Session, emails: Iterable[str]) -> dict[str, Subscriber]:
    """The known subscribers among ``emails`` (normalised), 500 per query."""
    wanted = list(dict.fromkeys(emails))
    found: dict[str, Subscriber] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        for sub in session.exec(select(Subscriber).where(col(Subscriber.email).in_(chunk))):
            found[sub.email] = sub
    return found


def set_status_if(
    session: Session,
    *,
    subscriber_id: int,
    expected: SubscriberStatus,
    to: SubscriberStatus,
    now: datetime,
) -> bool:
    """Move one subscriber from ``expected`` to ``to``; False when its status was no longer
    ``expected`` (a concurrent change won). The conditional UPDATE is what keeps two
    simultaneous confirmations from both writing an event."""
    values: dict[str, object] = {"status": to, "updated_at": now}
    if to is SubscriberStatus.CONFIRMED:
        values["confirmed_at"] = now
    result = session.execute(
        sa.update(Subscriber)
        .where(col(Subscriber.id) == subscriber_id, col(Subscriber.status) == expected)
        .values(**values)
        .execution_options(synchronize_session="fetch")
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def insert_many(session: Session, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert subscriber rows in bulk; their ids in the order given (for the consent log)."""
    result = session.execute(
        sa.insert(Subscriber).returning(col(Subscriber.id), sort_by_parameter_order=True), rows
    )
    return [int(i) for i in result.scalars().all()]


def may_receive_clause(*, newsletter: Any) -> sa.ColumnElement[bool]:
    """The consent predicates in SQL: confirmed, not paused, not erased, and not suppressed
    globally or for ``newsletter`` (a value or a bind parameter). Every query that picks
    recipients uses this one clause, so none can forget a part of it."""
    return sa.and_(
        col(Subscriber.status) == SubscriberStatus.CONFIRMED,
        col(Subscriber.paused).is_(False),
        col(Subscriber.erased_at).is_(None),
        not_suppressed_clause(col(Subscriber.email_hash), newsletter=newsletter),
    )


def confirmed_recipients(
    session: Session, *, newsletter: str, after_id: int = 0, limit: int = 1000
) -> list[Subscriber]:
    """Confirmed, unpaused, not erased, not suppressed subscribers with ``id > after_id``, by id.

    Consent and suppression are enforced here in SQL, so no caller can forget them; keyset
    paging (``after_id``) stays fast and stable while rows change underneath.
    """
    return list(
        session.exec(
            select(Subscriber)
            .where(may_receive_clause(newsletter=newsletter), col(Subscriber.id) > after_id)
            .order_by(col(Subscriber.id))
            .limit(limit)
        ).all()
    )


def list_subscribers(
    session: Session,
    *,
    status: SubscriberStatus | None = None,
    limit: int | None = None,
    offset: int = 0,
    include_erased: bool = False,
) -> list[Subscriber]:
    """Subscribers by id, optionally of one status; every matching row unless ``limit``."""
    query = select(Subscriber).order_by(col(Subscriber.id))
    if status is not None:
        query = query.where(Subscriber.status == status)
    if not include_erased:
        query = query.where(col(Subscriber.erased_at).is_(None))
    if offset:
        query = query.offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return list(session.exec(query).all())


def count_by_status(session: Session) -> dict[str, int]:
    """Live (not erased) subscribers per status, plus ``paused`` and ``erased`` counts."""
    rows = session.exec(
        select(Subscriber.status, sa.func.count())
        .where(col(Subscriber.erased_at).is_(None))
        .group_by(Subscriber.status)
    ).all()
    counts = {status.value: 0 for status in SubscriberStatus}
    counts.update({str(status): int(n) for status, n in rows})
    counts["paused"] = int(
        session.exec(
            select(sa.func.count())
            .select_from(Subscriber)
            .where(col(Subscriber.paused).is_(True), col(Subscriber.erased_at).is_(None))
        ).one()
    )
    counts["erased"] = int(
        session.exec(
            select(sa.func.count())
            .select_from(Subscriber)
            .where(col(Subscriber.erased_at).is_not(None))
        ).one()
    )
    return counts


def scrub_personal_data(session: Session, subscriber: Subscriber, *, now: datetime) -> None:
    """Remove the address and name from the subscriber row and from the delivery ledger and
    bounce records that copy it. The row itself stays because consent events refer to it."""
    assert subscriber.id is not None
    placeholder = f"erased-{subscriber.id}@{ERASED_DOMAIN}"
    old_email = subscriber.email
    session.execute(
        sa.update(Delivery)
        .where(col(Delivery.subscriber_id) == subscriber.id)
        .values(email=placeholder)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        sa.update(Bounce)
        .where(col(Bounce.email) == old_email)
        .values(email=placeholder, diagnostic=None, source="")
        .execution_options(synchronize_session=False)
    )
    subscriber.email = placeholder
    subscriber.email_hash = ""
    subscriber.name = ""
    subscriber.paused = False
    subscriber.confirm_token_hash = None
    subscriber.confirm_token_expires_at = None
    subscriber.erased_at = now
    subscriber.updated_at = now
    session.add(subscriber)
    session.flush()


def touch(session: Session, subscriber: Subscriber, *, now: datetime) -> None:
    """Save non-status changes (name, pause, token) to one subscriber."""
    subscriber.updated_at = now
    session.add(subscriber)
    session.flush()
