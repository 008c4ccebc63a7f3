"""The delivery ledger: one row per (issue, subscriber), written before SMTP sees a message.

States: queued → sending → sent | failed_temporary | failed_permanent | uncertain, and skipped
(consent or suppression changed before the message went out). A row is ``sending`` only while
one connection holds it; a process that dies leaves at most one such row per connection, which
``mark_dead_workers_uncertain`` turns into ``uncertain`` on the next start.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select, update

from digest.models import Delivery, DeliveryStatus, Subscriber
from digest.store.subscribers import may_receive_clause

S = DeliveryStatus
TABLE: sa.Table = Delivery.__table__  # type: ignore[attr-defined]


def enqueue_eligible(session: Session, *, issue_id: int, newsletter: str, now: datetime) -> int:
    """Add a queued row for every subscriber who may receive ``newsletter`` and has no row for
    this issue yet; return how many were added.

    One ``INSERT … SELECT`` with the consent clause of the recipient query, ignoring conflicts
    on the unique (issue, subscriber) pair: two workers enqueueing at once, or a re-run, never
    create a second row, and no subscriber passes through Python on the way.
    """
    picked = sa.select(
        sa.literal(issue_id, sa.Integer),
        col(Subscriber.id),
        col(Subscriber.email),
        sa.literal(S.QUEUED.value, sa.String),
        sa.literal(0, sa.Integer),
        sa.literal(now, TABLE.c.created_at.type),
    ).where(may_receive_clause(newsletter=newsletter)).order_by(col(Subscriber.id))
    columns = ["issue_id", "subscriber_id", "email", "status", "attempts", "created_at"]
    stmt: Any
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(TABLE).from_select(columns, picked).on_conflict_do_nothing()
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(TABLE).from_select(columns, picked).on_conflict_do_nothing()
    # Counted, not read from rowcount: drivers disagree on it for INSERT … SELECT.
    before = _rows_for(session, issue_id)
    session.execute(stmt)
    return _rows_for(session, issue_id) - before


def _rows_for(session: Session, issue_id: int) -> int:
    query = sa.select(sa.func.count()).where(TABLE.c.issue_id == issue_id)
    return int(session.execute(query).scalar_one())


@dataclass(frozen=True, slots=True)
class Claimed:
    """A row this worker now holds in ``sending``."""

    delivery_id: int
    subscriber_id: int
    email: str
    attempts: int


@functools.cache
def _claim_statement(*, postgres: bool, retries: bool) -> sa.Update:
    """A claim statement, built once: the send loop runs it every round.

    Queued rows and due retries are claimed by two statements, not one with an OR: each then
    walks the (issue, status, id) index from its first due row, so a claim costs the same at
    the end of a long send as at its start (an OR made SQLite scan and sort the whole issue).
    """
    now = sa.bindparam("p_now", type_=TABLE.c.next_attempt_at.type)
    if retries:
        due = sa.and_(
            TABLE.c.status == S.FAILED_TEMPORARY.value,
            TABLE.c.next_attempt_at.is_not(None),
            TABLE.c.next_attempt_at <= now,
            TABLE.c.attempts < sa.bindparam("p_max_attempts", type_=sa.Integer),
        )
    else:
        due = TABLE.c.status == S.QUEUED.value
    pick = (
        sa.select(TABLE.c.id)
        .where(TABLE.c.issue_id == sa.bindparam("p_issue_id", type_=sa.Integer), due)
        .order_by(TABLE.c.id)
        .limit(sa.bindparam("p_limit", type_=sa.Integer))
    )
    if postgres:
        pick = pick.with_for_update(skip_locked=True)
    return (
        sa.update(TABLE)
        .where(TABLE.c.id.in_(pick.scalar_subquery()))
        .values(status=S.SENDING.value, worker=sa.bindparam("p_worker"), claimed_at=now)
        .returning(TABLE.c.id, TABLE.c.subscriber_id, TABLE.c.email, TABLE.c.attempts)
    )


def claim(
    session: Session, *, issue_id: int, limit: int, worker: str, now: datetime, max_attempts: int
) -> list[Claimed]:
    """Move up to ``limit`` due rows to ``sending`` for ``worker``: queued rows first, then
    temporary failures whose backoff has passed.

    ``UPDATE … WHERE id IN (SELECT … LIMIT n [FOR UPDATE SKIP LOCKED]) RETURNING``: on
    PostgreSQL several workers claim disjoint rows without waiting on each other; on SQLite the
    single statement is atomic under its one-writer lock. The caller commits before sending.
    """
    postgres = session.get_bind().dialect.name == "postgresql"
    params: dict[str, Any] = {
        "p_issue_id": issue_id,
        "p_now": now,
        "p_max_attempts": max_attempts,
        "p_worker": worker,
    }
    found: list[Claimed] = []
    for retries in (False, True):
        if len(found) >= limit:
            break
        params["p_limit"] = limit - len(found)
        rows = session.connection().execute(
            _claim_statement(postgres=postgres, retries=retries), params
        )
        found += (Claimed(int(r[0]), int(r[1]), str(r[2]), int(r[3])) for r in rows)
    return sorted(found, key=lambda c: c.delivery_id)


def upcoming(
    session: Session, *, issue_id: int, after: int, limit: int
) -> list[tuple[Claimed, str]]:
    """The next ``limit`` queued rows after id ``after``, in the order claims take them, each
    with its subscriber's name. Read only: what the send loop builds ahead (``send.prebuild``);
    consent is checked when a row is claimed, not here."""
    rows = session.connection().execute(
        _upcoming_statement(), {"p_issue_id": issue_id, "p_after": after, "p_limit": limit}
    )
    return [(Claimed(int(r[0]), int(r[1]), str(r[2]), int(r[3])), str(r[4] or "")) for r in rows]


@functools.cache
def _upcoming_statement() -> sa.Select[Any]:
    return (
        sa.select(
            TABLE.c.id, TABLE.c.subscriber_id, TABLE.c.email, TABLE.c.attempts, col(Subscriber.name)
        )
        .join(Subscriber, col(Subscriber.id) == TABLE.c.subscriber_id)
        .where(
            TABLE.c.issue_id == sa.bindparam("p_issue_id", type_=sa.Integer),
            TABLE.c.status == S.QUEUED.value,
            TABLE.c.id > sa.bindparam("p_after", type_=sa.Integer),
        )
        .order_by(TABLE.c.id)
        .limit(sa.bindparam("p_limit", type_=sa.Integer))
    )


def record(session: Session, outcomes: Iterable[dict[str, Any]]) -> None:
    """Write outcomes (dicts with ``id`` and the columns to set), one executemany per shape.

    Each UPDATE only touches a row still in ``sending``: a row that another process already
    marked ``uncertain`` keeps that state.
    """
    by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for outcome in outcomes:
        by_shape.setdefault(tuple(sorted(outcome)), []).append(outcome)
    for keys, rows in by_shape.items():
        session.connection().execute(
            _record_statement(keys), [{f"v_{k}": v for k, v in r.items()} for r in rows]
        )


@functools.cache
def _record_statement(keys: tuple[str, ...]) -> sa.Update:
    # Typed bind parameters, so UTCDateTime stores datetimes as on every other path.
    values = {k: sa.bindparam(f"v_{k}", type_=TABLE.c[k].type) for k in keys if k != "id"}
    return (
        sa.update(TABLE)
        .where(TABLE.c.id == sa.bindparam("v_id"), TABLE.c.status == S.SENDING.value)
        .values(**values)
    )


def mark_dead_workers_uncertain(
    session: Session, *, issue_id: int, is_dead: Callable[[str | None, datetime | None], bool]
) -> int:
    """Rows left in ``sending`` by a worker that is gone may or may not have gone out: they
    become ``uncertain`` (reported, resent only on request). Returns how many."""
    rows = session.execute(
        select(Delivery.id, Delivery.worker, Delivery.claimed_at).where(
            col(Delivery.issue_id) == issue_id, col(Delivery.status) == S.SENDING.value
        )
    ).all()
    dead = [int(r[0]) for r in rows if is_dead(r[1], r[2])]
    for start in range(0, len(dead), 500):
        session.execute(
            update(Delivery)
            .where(
                col(Delivery.id).in_(dead[start : start + 500]),
                col(Delivery.status) == S.SENDING.value,
            )
            .values(status=S.UNCERTAIN.value, last_error="interrupted while sending")
        )
    return len(dead)


def requeue(
    session: Session, *, issue_id: int, statuses: Sequence[DeliveryStatus], reset_attempts: bool
) -> int:
    """Put rows in ``statuses`` back to ``queued`` (retry-failed, --resend-uncertain)."""
    values: dict[str, Any] = {"status": S.QUEUED.value, "next_attempt_at": None, "worker": None}
    if reset_attempts:
        values["attempts"] = 0
    result = session.execute(
        update(Delivery)
        .where(
            col(Delivery.issue_id) == issue_id,
            col(Delivery.status).in_([s.value for s in statuses]),
        )
        .values(**values)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def next_retry_at(session: Session, *, issue_id: int, max_attempts: int) -> datetime | None:
    """When the earliest temporary failure that still has attempts left becomes due."""
    value = session.execute(
        select(sa.func.min(Delivery.next_attempt_at)).where(
            col(Delivery.issue_id) == issue_id,
            col(Delivery.status) == S.FAILED_TEMPORARY.value,
            col(Delivery.attempts) < max_attempts,
            col(Delivery.next_attempt_at).is_not(None),
        )
    ).scalar()
    if value is None:
        return None
    # min() bypasses the column type on some backends: make it aware UTC like the model does.
    from datetime import UTC

    when: datetime = value
    return when if when.tzinfo else when.replace(tzinfo=UTC)


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


@dataclass(frozen=True)
class Rate:
    last_minute: int
    per_second: float  # over the whole send so far
    first_sent_at: datetime | None
    last_sent_at: datetime | None


def rate(session: Session, *, issue_id: int, now: datetime) -> Rate:
    """How fast the issue went out: sends in the last minute, and the average per second."""
    first, last, total = session.execute(
        select(sa.func.min(Delivery.sent_at), sa.func.max(Delivery.sent_at), sa.func.count()).where(
            col(Delivery.issue_id) == issue_id, col(Delivery.status) == S.SENT.value
        )
    ).one()
    recent = session.execute(
        select(sa.func.count()).where(
            col(Delivery.issue_id) == issue_id,
            col(Delivery.status) == S.SENT.value,
            col(Delivery.sent_at) >= now - timedelta(minutes=1),
        )
    ).scalar_one()
    from datetime import UTC

    first = first.replace(tzinfo=UTC) if first is not None and first.tzinfo is None else first
    last = last.replace(tzinfo=UTC) if last is not None and last.tzinfo is None else last
    span = (last - first).total_seconds() if first and last else 0.0
    per_second = (total - 1) / span if span > 0 else 0.0
    return Rate(int(recent), per_second, first, last)


def sent_times(session: Session, *, since: datetime) -> list[float]:
    """Epoch seconds of every send since ``since`` (all issues): seeds the hour/day quotas."""
    rows = session.execute(
        select(Delivery.sent_at).where(
            col(Delivery.status) == S.SENT.value, col(Delivery.sent_at) >= since
        )
    ).scalars()
    from datetime import UTC

    return [(r if r.tzinfo else r.replace(tzinfo=UTC)).timestamp() for r in rows if r]


def failures(session: Session, *, issue_id: int, limit: int = 50) -> list[Delivery]:
    """Failed and uncertain rows with their codes, for the status table."""
    return list(
        session.exec(
            select(Delivery)
            .where(
                col(Delivery.issue_id) == issue_id,
                col(Delivery.status).in_(
                    [S.FAILED_PERMANENT.value, S.FAILED_TEMPORARY.value, S.UNCERTAIN.value]
                ),
            )
            .order_by(col(Delivery.id))
            .limit(limit)
        ).all()
    )


def states_by_subscriber(session: Session, *, issue_id: int) -> dict[int, str]:
    """subscriber id → this issue's delivery state (for --dry-run)."""
    rows = session.execute(
        select(Delivery.subscriber_id, Delivery.status).where(col(Delivery.issue_id) == issue_id)
    ).all()
    return {int(r[0]): str(r[1]) for r in rows}


def eligible_names(
    session: Session, *, subscriber_ids: Sequence[int], newsletter: str
) -> dict[int, str]:
    """subscriber id → name, for those among ``subscriber_ids`` who may receive ``newsletter``
    right now (the consent clause of the recipient query). One query per claimed batch; the
    send loop asks ``subscribers.consent.may_receive`` for the reason of any row left out."""
    if not subscriber_ids:
        return {}
    rows = session.connection().execute(
        _eligible_statement(), {"p_ids": list(subscriber_ids), "p_newsletter": newsletter}
    )
    return {int(r[0]): str(r[1] or "") for r in rows}


@functools.cache
def _eligible_statement() -> Any:
    newsletter: Any = sa.bindparam("p_newsletter")
    return sa.select(col(Subscriber.id), col(Subscriber.name)).where(
        col(Subscriber.id).in_(sa.bindparam("p_ids", expanding=True)),
        may_receive_clause(newsletter=newsletter),
    )
