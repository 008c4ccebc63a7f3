"""Leader leases: only one scheduler acts on a database at a time.

Two shapes behind one small protocol:

* PostgreSQL: a session-level advisory lock held on a dedicated connection. If the holder dies,
  its connection closes and the server drops the lock at once, so a standby takes over on its
  next poll.
* SQLite (and anything else): a ``leases`` row with an expiry. The holder renews it well before
  it expires; a standby may take it only once it has expired, so a holder that dies without
  releasing is replaced after at most one lease period.

Every method that compares times takes an explicit ``now`` so tests can drive the clock.
"""

from __future__ import annotations

import contextlib
import hashlib
from datetime import datetime, timedelta
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from digest.models import Lease

_LEASES = Lease.__table__  # type: ignore[attr-defined]


class LeaderLease(Protocol):
    holder: str

    def try_acquire(self, *, now: datetime) -> bool:
        """True when this holder now holds the lease (also when it already did)."""

    def renew(self, *, now: datetime) -> bool:
        """Extend the lease; False means it was lost and the holder must stop acting."""

    def release(self) -> None:
        """Give the lease up so that a standby can take over without waiting."""


class RowLease:
    """A ``leases`` row with an expiry; works on every backend, used on SQLite."""

    def __init__(self, engine: Engine, *, name: str, holder: str, ttl: timedelta) -> None:
        self.engine = engine
        self.name = name
        self.holder = holder
        self.ttl = ttl

    def try_acquire(self, *, now: datetime) -> bool:
        # One conditional UPDATE takes an expired lease or extends our own; the unique primary
        # key makes the INSERT of a first lease race-free between processes.
        with self.engine.begin() as conn:
            taken = conn.execute(
                sa.update(_LEASES)
                .where(_LEASES.c.name == self.name)
                .where(sa.or_(_LEASES.c.holder == self.holder, _LEASES.c.expires_at < now))
                .values(holder=self.holder, expires_at=now + self.ttl)
            )
            if taken.rowcount == 1:
                return True
            exists = conn.execute(
                sa.select(_LEASES.c.name).where(_LEASES.c.name == self.name)
            ).first()
            if exists is not None:
                return False
            try:
                with conn.begin_nested():
                    conn.execute(
                        sa.insert(_LEASES).values(
                            name=self.name, holder=self.holder, expires_at=now + self.ttl
                        )
                    )
            except IntegrityError:
                return False
            return True

    def renew(self, *, now: datetime) -> bool:
        with self.engine.begin() as conn:
            kept = conn.execute(
                sa.update(_LEASES)
                .where(_LEASES.c.name == self.name, _LEASES.c.holder == self.holder)
                .values(expires_at=now + self.ttl)
            )
            return kept.rowcount == 1

    def release(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.delete(_LEASES).where(
                    _LEASES.c.name == self.name, _LEASES.c.holder == self.holder
                )
            )

    def current_holder(self, *, now: datetime) -> str | None:
        """Who holds an unexpired lease, if anyone (for status lines)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(_LEASES.c.holder).where(
                    _LEASES.c.name == self.name, _LEASES.c.expires_at >= now
                )
            ).first()
        return None if row is None else str(row[0])


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_try_advisory_lock`` from a lease name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class AdvisoryLease:
    """A PostgreSQL session advisory lock, held on its own autocommit connection."""

    def __init__(self, engine: Engine, *, name: str, holder: str) -> None:
        self.engine = engine
        self.name = name
        self.holder = holder
        self.key = advisory_key(name)
        self._conn: Connection | None = None

    def try_acquire(self, *, now: datetime) -> bool:
        if self._conn is not None:
            return self.renew(now=now)
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar()
        if got:
            self._conn = conn
            return True
        conn.close()
        return False

    def renew(self, *, now: datetime) -> bool:
        # The lock lives as long as the session: a live connection that still lists the lock
        # means we still hold it.
        if self._conn is None:
            return False
        try:
            held = self._conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND pid = pg_backend_pid()"
                    " AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = :k"
                ),
                {"k": self.key},
            ).scalar()
        except DBAPIError:
            self._drop()
            return False
        if not held:
            self._drop()
        return bool(held)

    def release(self) -> None:
        if self._conn is None:
            return
        with contextlib.suppress(DBAPIError):  # a dead session took the lock with it
            self._conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
        self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(DBAPIError):
                self._conn.close()
            self._conn = None


def leader_lease(engine: Engine, *, name: str, holder: str, ttl: timedelta) -> LeaderLease:
    """The lease that fits the backend: an advisory lock on PostgreSQL, a row elsewhere."""
    if engine.dialect.name == "postgresql":
        return AdvisoryLease(engine, name=name, holder=holder)
    return RowLease(engine, name=name, holder=holder, ttl=ttl)
