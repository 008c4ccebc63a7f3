"""The consent log: append and read. There is deliberately no update or delete here.

Two guards keep the log append-only below this module too: an ORM guard (mapper events that
refuse to flush a changed or deleted ConsentEvent) and database triggers created by migration
0002 that refuse UPDATE and DELETE on ``consent_events``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session as SaSession
from sqlmodel import Session, col, select

from digest.models import ConsentEvent

GENESIS = "0" * 64
# Any fixed number: the PostgreSQL advisory lock that serialises appends to the chain.
_CHAIN_LOCK = 0x6469_6765_7374
_HEAD_KEY = "digest.consent_head"


class AppendOnlyViolation(RuntimeError):
    """Code tried to change or delete a consent event: a bug, never a person's mistake."""


def _refuse(_mapper: Any, _connection: Any, target: ConsentEvent) -> None:
    raise AppendOnlyViolation(f"consent event {target.id} cannot be changed or deleted")


sa.event.listen(ConsentEvent, "before_update", _refuse)
sa.event.listen(ConsentEvent, "before_delete", _refuse)


def lock_chain(session: Session) -> None:
    """Serialise appends until this transaction ends.

    PostgreSQL: a transaction-level advisory lock, so two writers cannot both read the same head.
    SQLite needs none: writers are serialised by the database lock, which the caller already
    holds because it wrote the subscriber row first.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHAIN_LOCK})


def chain_head(session: Session) -> str:
    """The hash of the newest event, or GENESIS for an empty log.

    Within one transaction the head this session appended last is remembered (``session.info``),
    which is safe because the chain lock is held until the transaction ends, when it is
    forgotten; a bulk import then needs no query per row.
    """
    cached = session.info.get(_HEAD_KEY)
    if cached is not None:
        return str(cached)
    head = session.exec(
        select(ConsentEvent.hash).order_by(col(ConsentEvent.id).desc()).limit(1)
    ).first()
    return head or GENESIS


def append_event(session: Session, event: ConsentEvent) -> ConsentEvent:
    """Insert ``event`` (already hashed by the caller) and flush so it gets its id."""
    session.add(event)
    session.flush()
    session.info[_HEAD_KEY] = event.hash
    return event


def append_rows(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert already-chained event rows (in chain order) in one executemany."""
    if not rows:
        return
    session.execute(sa.insert(ConsentEvent), rows)
    session.info[_HEAD_KEY] = rows[-1]["hash"]


def _forget_head(session: Any, *_args: Any) -> None:
    session.info.pop(_HEAD_KEY, None)


# Any transaction or savepoint ending (commit or rollback) forgets the remembered head.
sa.event.listen(SaSession, "after_transaction_end", _forget_head)


def events_for_subscriber(session: Session, *, subscriber_id: int) -> list[ConsentEvent]:
    return list(
        session.exec(
            select(ConsentEvent)
            .where(ConsentEvent.subscriber_id == subscriber_id)
            .order_by(col(ConsentEvent.id))
        ).all()
    )


def iter_event_rows(session: Session, *, batch: int = 2000) -> Iterator[sa.RowMapping]:
    """Every event as a plain row mapping, in chain order, fetched in batches by id.

    Plain rows (not ORM objects) so that verifying a long log keeps constant memory.
    """
    table = ConsentEvent.__table__  # type: ignore[attr-defined]
    after = 0
    while True:
        rows = (
            session.execute(
                sa.select(table).where(table.c.id > after).order_by(table.c.id).limit(batch)
            )
            .mappings()
            .all()
        )
        if not rows:
            return
        yield from rows
        after = rows[-1]["id"]


def count_events(session: Session) -> int:
    return int(session.exec(select(sa.func.count()).select_from(ConsentEvent)).one())
