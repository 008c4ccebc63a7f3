"""Suppressions: address hashes that must not receive mail, globally or for one newsletter.

Only hashes are kept, so a suppression outlives the erasure of the person it protects.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from digest.models import Suppression

GLOBAL = "global"


def add_suppression(
    session: Session, *, email_hash: str, scope: str, reason: str, now: datetime
) -> bool:
    """Record a suppression unless the same (hash, scope) is already there.

    Returns True when a row was added. Safe under concurrency: the unique (hash, scope)
    constraint decides, and a losing insert is skipped, not raised.
    """
    values = {"email_hash": email_hash, "scope": scope, "reason": reason, "created_at": now}
    dialect = session.get_bind().dialect.name
    stmt: sa.Insert
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(Suppression).values(**values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(Suppression).values(**values).on_conflict_do_nothing()
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        if find_suppression(session, email_hash=email_hash, scopes=[scope]) is not None:
            return False
        stmt = sa.insert(Suppression).values(**values)
    result = session.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]


def remove_suppression(session: Session, *, email_hash: str, scope: str | None = None) -> int:
    """Delete the suppressions of one hash (one scope, or all when ``scope`` is None).

    Returns how many rows went.
    """
    stmt = sa.delete(Suppression).where(col(Suppression.email_hash) == email_hash)
    if scope is not None:
        stmt = stmt.where(col(Suppression.scope) == scope)
    result = session.execute(stmt)
    return int(result.rowcount)  # type: ignore[attr-defined]


def find_suppression(
    session: Session, *, email_hash: str, scopes: Iterable[str]
) -> Suppression | None:
    """The first suppression of ``email_hash`` in any of ``scopes`` (global ones first)."""
    wanted = list(scopes)
    rows = session.exec(
        select(Suppression).where(
            Suppression.email_hash == email_hash, col(Suppression.scope).in_(wanted)
        )
    ).all()
    rows = sorted(rows, key=lambda r: (r.scope != GLOBAL, r.id or 0))
    return rows[0] if rows else None


def suppressed_hashes(session: Session, *, hashes: Iterable[str], newsletter: str) -> set[str]:
    """Which of ``hashes`` are suppressed for ``newsletter`` (or globally): one query per
    500 hashes, for checking a whole import at once."""
    wanted = list(dict.fromkeys(hashes))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        found.update(
            session.exec(
                select(Suppression.email_hash).where(
                    col(Suppression.email_hash).in_(chunk),
                    col(Suppression.scope).in_([GLOBAL, newsletter]),
                )
            ).all()
        )
    return found


def list_suppressions(session: Session, *, scope: str | None = None) -> list[Suppression]:
    query = select(Suppression).order_by(col(Suppression.id))
    if scope is not None:
        query = query.where(Suppression.scope == scope)
    return list(session.exec(query).all())


def not_suppressed_clause(email_hash_column: Any, *, newsletter: str) -> sa.ColumnElement[bool]:
    """A WHERE clause: no suppression for this row's hash, globally or for ``newsletter``.

    The recipient query uses it so that consent and suppression are enforced in SQL, not after.
    """
    return ~sa.exists().where(
        col(Suppression.email_hash) == email_hash_column,
        col(Suppression.scope).in_([GLOBAL, newsletter]),
    )


def list_for_hash(session: Session, *, email_hash: str) -> list[Suppression]:
    """Every suppression of one address hash, oldest first."""
    return list(
        session.exec(
            select(Suppression)
            .where(Suppression.email_hash == email_hash)
            .order_by(col(Suppression.id))
        ).all()
    )
