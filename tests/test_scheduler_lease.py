"""The leader lease: one scheduler acts, a standby takes over when the holder dies."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from scheduler_support import eventually
from sqlalchemy.engine import Engine

from digest.store.leases import AdvisoryLease, RowLease, leader_lease

T0 = datetime(2026, 11, 27, 8, tzinfo=UTC)
TTL = timedelta(seconds=30)


def test_a_live_row_lease_keeps_a_second_scheduler_on_standby(engine: Engine) -> None:
    first = RowLease(engine, name="scheduler:friday", holder="host-a:1", ttl=TTL)
    second = RowLease(engine, name="scheduler:friday", holder="host-b:2", ttl=TTL)
    assert first.try_acquire(now=T0)
    assert not second.try_acquire(now=T0 + timedelta(seconds=1))
    assert first.renew(now=T0 + timedelta(seconds=20))
    # Renewed at +20 s, so still held at +45 s.
    assert not second.try_acquire(now=T0 + timedelta(seconds=45))
    assert first.current_holder(now=T0 + timedelta(seconds=45)) == "host-a:1"


def test_a_standby_takes_over_when_the_holder_stops_renewing(engine: Engine) -> None:
    first = RowLease(engine, name="scheduler:friday", holder="host-a:1", ttl=TTL)
    second = RowLease(engine, name="scheduler:friday", holder="host-b:2", ttl=TTL)
    assert first.try_acquire(now=T0)
    later = T0 + TTL + timedelta(seconds=1)  # the holder died: no renewal
    assert second.try_acquire(now=later)
    # The old holder, had it only been paused, learns it lost the lease and must stop.
    assert not first.renew(now=later + timedelta(seconds=1))
    assert not first.try_acquire(now=later + timedelta(seconds=1))


def test_releasing_lets_the_standby_in_at_once(engine: Engine) -> None:
    first = RowLease(engine, name="scheduler:friday", holder="host-a:1", ttl=TTL)
    second = RowLease(engine, name="scheduler:friday", holder="host-b:2", ttl=TTL)
    assert first.try_acquire(now=T0)
    first.release()
    assert second.try_acquire(now=T0 + timedelta(seconds=1))
    # Releasing a lease one does not hold changes nothing.
    first.release()
    assert second.current_holder(now=T0 + timedelta(seconds=2)) == "host-b:2"


def test_leases_of_different_newsletters_do_not_block_each_other(engine: Engine) -> None:
    assert RowLease(engine, name="scheduler:friday", holder="a", ttl=TTL).try_acquire(now=T0)
    assert RowLease(engine, name="scheduler:monday", holder="b", ttl=TTL).try_acquire(now=T0)


PG_URL = os.environ.get("DIGEST_TEST_DATABASE_URL", "")


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="DIGEST_TEST_DATABASE_URL is not set")
def test_the_advisory_lock_passes_to_the_standby_when_the_holder_dies() -> None:
    engine = sa.create_engine(PG_URL)
    name = f"scheduler:test-{os.getpid()}"
    first = leader_lease(engine, name=name, holder="a", ttl=TTL)
    second = leader_lease(engine, name=name, holder="b", ttl=TTL)
    assert isinstance(first, AdvisoryLease) and isinstance(second, AdvisoryLease)
    try:
        assert first.try_acquire(now=T0)
        assert not second.try_acquire(now=T0)
        assert first.renew(now=T0)
        # The holder's process dies: the server ends its session, and the lock goes with it.
        assert first._conn is not None
        pid = first._conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        with engine.connect() as admin:
            admin.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        # Termination is asynchronous: poll, bounded, until the server has dropped the session.
        assert eventually(lambda: second.try_acquire(now=T0), within=10.0)
        assert not first.renew(now=T0)
    finally:
        first.release()
        second.release()
        engine.dispose()
