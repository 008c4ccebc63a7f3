"""A stop request always ends the scheduler: also a signal that lands while the main thread waits
on the stop event, and a stop while the lease cannot be renewed. No test here measures speed:
each waits, with a generous bound, for an outcome the old code never reached (it deadlocked in
the signal handler; its lease-keeping thread died, leaving the scheduler running)."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from scheduler_support import dispose_pipeline_engines, eventually  # noqa: F401 (autouse)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from digest.settings import Settings
from jobs.notify import MemoryNotifier
from jobs.scheduler import Runner

ROOT = Path(__file__).resolve().parents[1]
BOUND = 120.0  # seconds: only a hang reaches it

sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

# The main thread holds the stop event's own lock, as it does for a moment inside every
# `stop.wait()`, when SIGTERM arrives; the interpreter runs Python-level handlers at the loop's
# bytecodes, still inside the lock. A handler that set the event there would wait for that lock
# forever. Afterwards the handlers in place before are back.
SIGNAL_SCRIPT = """
import os, signal, threading
from jobs.signals import stop_on_signals

stop = threading.Event()
got = []
with stop_on_signals(lambda received: (got.append(received.name), stop.set())):
    with stop._cond:
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(100_000):
            pass
    assert stop.wait(60), "the stop request never came"
assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
assert signal.set_wakeup_fd(-1) == -1
print("stopped by", *got)
"""


def test_a_sigterm_landing_while_the_main_thread_holds_the_stop_events_lock_still_stops() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", SIGNAL_SCRIPT],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        out, _ = proc.communicate(timeout=BOUND)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("deadlocked: the signal handler waited for a lock its own thread held")
    assert proc.returncode == 0, out
    assert out.strip() == "stopped by SIGTERM"


class UnrenewableLease:
    """Always granted, never renewed: every renewal fails as on a SQLite file kept locked by
    another process beyond the busy timeout."""

    holder = "test:unrenewable"

    def __init__(self) -> None:
        self.renewals = 0
        self.released = 0
        self.renew_failed = threading.Event()

    def try_acquire(self, *, now: datetime) -> bool:
        return True

    def renew(self, *, now: datetime) -> bool:
        self.renewals += 1
        self.renew_failed.set()
        raise OperationalError("UPDATE leases", {}, sqlite3.OperationalError("database is locked"))

    def release(self) -> None:
        self.released += 1


def run_in_thread(runner: Runner) -> tuple[threading.Thread, list[int]]:
    status: list[int] = []
    thread = threading.Thread(target=lambda: status.append(runner.run()), daemon=True)
    thread.start()
    return thread, status


@sqlite_only
def test_a_leader_whose_renewals_fail_keeps_leading_and_still_stops_when_asked(
    settings: Settings, engine: Engine
) -> None:
    lease = UnrenewableLease()
    runner = Runner(
        settings, engine=engine, notifier=MemoryNotifier(), lease=lease,
        renew_every=0.01, lease_ttl=timedelta(hours=1),
    )  # fmt: skip
    thread, status = run_in_thread(runner)
    try:
        assert lease.renew_failed.wait(BOUND)
        assert eventually(lambda: lease.renewals >= 3)  # it went on trying
    finally:
        runner.request_stop()
        thread.join(timeout=BOUND)
    assert not thread.is_alive(), "a failed renewal left the scheduler running after stop"
    assert status == [0]
    assert (runner.terms, lease.released) == (1, 1)


@sqlite_only
def test_a_leader_unable_to_renew_for_a_whole_lease_period_steps_down(
    settings: Settings, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    lease = UnrenewableLease()  # granted again at once: each step-down starts a new term
    runner = Runner(
        settings, engine=engine, notifier=MemoryNotifier(), lease=lease,
        renew_every=0.01, lease_ttl=timedelta(seconds=0.05),
    )  # fmt: skip
    thread, status = run_in_thread(runner)
    try:
        assert eventually(lambda: runner.terms >= 2, within=BOUND)
    finally:
        runner.request_stop()
        thread.join(timeout=BOUND)
    assert not thread.is_alive()
    assert status == [0]
    assert lease.released == runner.terms
    assert "lost the scheduler lease" in caplog.text


@sqlite_only
def test_a_stop_while_a_new_leader_gets_ready_fires_no_job_and_says_so(
    settings: Settings,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import jobs.scheduler

    lease = UnrenewableLease()
    runner = Runner(settings, engine=engine, notifier=MemoryNotifier(), lease=lease)
    # SIGTERM lands while the new leader loads the task modules, before its scheduler starts.
    monkeypatch.setattr(jobs.scheduler, "load_task_modules", runner.request_stop)
    caplog.set_level(logging.INFO, logger="digest.scheduler")
    assert runner.run() == 0
    assert "received a stop request: finishing the running job" in caplog.text
    assert "starting" not in caplog.text  # no job fired
    assert (runner.terms, lease.released) == (0, 1)


class TakenWhileLoading:
    """Granted at first; by the time the new leader has loaded its modules and asks again,
    another scheduler holds it."""

    holder = "test:slow-loader"

    def __init__(self) -> None:
        self.asked = 0

    def try_acquire(self, *, now: datetime) -> bool:
        self.asked += 1
        return self.asked == 1

    def renew(self, *, now: datetime) -> bool:
        return False

    def release(self) -> None:
        pass


@sqlite_only
def test_a_leader_whose_lease_was_taken_while_it_loaded_stands_by_instead(
    settings: Settings, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    lease = TakenWhileLoading()
    runner = Runner(settings, engine=engine, notifier=MemoryNotifier(), lease=lease, poll=0.01)
    caplog.set_level(logging.INFO, logger="digest.scheduler")
    thread, status = run_in_thread(runner)
    try:
        assert eventually(lambda: lease.asked >= 3, within=BOUND)  # polling on standby
    finally:
        runner.request_stop()
        thread.join(timeout=BOUND)
    assert not thread.is_alive()
    assert status == [0]
    assert runner.terms == 0
    assert "standby: another scheduler holds the lease" in caplog.text
    assert "leader (" not in caplog.text
