"""The scheduler process: `digest scheduler run`.

    start ─► standby (poll the leader lease) ─► leader: APScheduler fires JOBS in the
    newsletter's zone from its own thread, while this thread renews the lease ─► SIGTERM:
    the running job ends its unit of work (it sees the stop event), the lease is released,
    exit 0

Only the lease holder fires jobs; a second process against the same database waits as a standby
and takes over when the first dies (PostgreSQL drops its advisory lock with its connection; on
SQLite the lease row expires). Even without the lease, the tasks are safe to run twice.
"""

from __future__ import annotations

import importlib
import logging
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from digest.settings import Settings
from digest.store.leases import LeaderLease, leader_lease
from jobs.calendar import missed_within
from jobs.notify import MailNotifier, Notifier
from jobs.schedule import JOBS, CatchUp, next_runs
from jobs.signals import stop_on_signals
from jobs.tasks import TaskContext, utcnow

if TYPE_CHECKING:
    # Only for annotations: the send stack loads when a send runs.
    from digest.send.smtp import Sender

log = logging.getLogger("digest.scheduler")

LEASE_TTL = timedelta(seconds=30)

# What the tasks import when they first run (the send stack, selection, ingest).
TASK_MODULES = ("digest.pipeline", "digest.bounces.apply", "digest.subscribers.consent")


def load_task_modules() -> None:
    """Import ``TASK_MODULES`` in this thread (at once when already loaded).

    A scheduler does this on standby and before it fires any job, so that its start-up catch-up
    jobs do not spend seconds importing the same modules in four threads at once: a SIGTERM
    arriving then would have to wait for every one of those imports to finish."""
    for name in TASK_MODULES:
        importlib.import_module(name)


def holder_name() -> str:
    """``host:pid:random``: unique per runner, even two in one process."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def make_scheduler(ctx: TaskContext, *, now: datetime) -> BackgroundScheduler:
    """A BackgroundScheduler (its own thread) in the newsletter's zone with every job of
    ``JOBS`` added.

    ``coalesce`` (several missed runs run once), ``max_instances=1`` (a slow run is never
    overlapped by the next) and the misfire grace are set explicitly for every job. On start-up
    a job marked ``CatchUp.STORE`` runs at once (its task asks the store what is due); a
    ``CatchUp.GRACE`` job runs at once only if it missed a run less than the grace ago.
    """
    s = ctx.settings
    grace = timedelta(minutes=s.misfire_grace_minutes)
    scheduler = BackgroundScheduler(
        timezone=s.zone,
        executors={"default": ThreadPoolExecutor(max_workers=4)},
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": int(grace.total_seconds()),
        },
    )
    first_runs = start_up_runs(s, now=now)
    for job in JOBS:
        first = first_runs[job.id]
        scheduler.add_job(
            _runner(job.id, job.task, ctx),
            trigger=job.trigger(s),
            id=job.id,
            name=job.help,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=int(grace.total_seconds()),
            **({"next_run_time": first} if first is not None else {}),
        )
    scheduler.add_listener(
        _log_event,
        EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES,
    )
    return scheduler


def start_up_runs(settings: Settings, *, now: datetime) -> dict[str, datetime | None]:
    """For each job, the run to make at start-up (None: wait for the trigger's next time).

    ``CatchUp.STORE`` jobs run at once: their task asks the store what is due and applies the
    send deadline. ``CatchUp.GRACE`` jobs make up only a run missed less than the grace ago.
    """
    grace = timedelta(minutes=settings.misfire_grace_minutes)
    runs: dict[str, datetime | None] = {}
    for job in JOBS:
        if job.catch_up is CatchUp.STORE:
            runs[job.id] = now.astimezone(settings.zone)
        else:
            missed = missed_within(job.trigger(settings), now=now, grace=grace)
            runs[job.id] = None if missed is None else missed.astimezone(settings.zone)
    return runs


def _runner(job_id: str, task: Callable[[TaskContext], str], ctx: TaskContext) -> Callable[[], str]:
    def run() -> str:
        if ctx.stop.is_set():
            return "skipped: shutting down"
        log.info("job %s: starting", job_id)
        return task(ctx)

    run.__name__ = run.__qualname__ = f"job_{job_id.replace('-', '_')}"
    return run


def _log_event(event: Any) -> None:
    if isinstance(event, JobExecutionEvent):
        if event.exception is not None:
            # A bug in a task: log it with its traceback and move on; the next run tries again.
            log.error("job %s failed: %r", event.job_id, event.exception, exc_info=event.exception)
        elif event.code == EVENT_JOB_MISSED:
            log.warning("job %s missed its run at %s (beyond the grace)", event.job_id,
                        event.scheduled_run_time)  # fmt: skip
        else:
            log.info("job %s: %s", event.job_id, event.retval)
    else:
        log.warning("job %s still running: this run skipped", getattr(event, "job_id", "?"))


class Runner:
    """One scheduler process: standby until it holds the lease, then leader until stopped."""

    def __init__(
        self,
        settings: Settings,
        *,
        engine: Engine,
        notifier: Notifier | None = None,
        lease: LeaderLease | None = None,
        poll: float = 5.0,
        lease_ttl: timedelta = LEASE_TTL,
        renew_every: float | None = None,
        sender: Sender | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.stop = threading.Event()
        self.lease = lease or leader_lease(
            engine, name=f"scheduler:{settings.newsletter_id}", holder=holder_name(), ttl=lease_ttl
        )
        self.poll = poll
        self.lease_ttl = lease_ttl
        # Renew three times per lease period, so one slow renewal does not lose the lease.
        self.renew_every = renew_every or lease_ttl.total_seconds() / 3
        self.ctx = TaskContext(
            settings=settings, engine=engine, notifier=notifier or MailNotifier(settings),
            sender=sender, stop=self.stop,
        )  # fmt: skip
        self.leading = threading.Event()
        self.terms = 0  # how many times this runner became the leader
        self.stopped_by = "a stop request"
        self._said_stopping = False

    def request_stop(self) -> None:
        """Ask the runner to finish the running unit of work and exit."""
        self.stop.set()

    def stop_for(self, received: signal.Signals) -> None:
        """A stop request for a signal (SIGTERM, SIGINT); see ``jobs.signals``."""
        self.stopped_by = received.name
        self.request_stop()

    def run(self) -> int:
        """Wait for the lease, lead until stopped (or the lease is lost: back to standby).
        Returns the process exit status: 0 for a clean stop."""
        told_standby = False
        while not self.stop.is_set():
            if not self._try_acquire():
                if not told_standby:
                    log.info("standby: another scheduler holds the lease; polling every %gs",
                             self.poll)  # fmt: skip
                    told_standby = True
                    load_task_modules()  # meanwhile, so that a take-over fires jobs at once
                self.stop.wait(self.poll)
                continue
            told_standby = False
            try:
                self._lead()
            finally:
                self.leading.clear()
                self._release()
        self._say_stopping()  # also when stopped on standby or before firing anything
        log.info("scheduler stopped cleanly")
        return 0

    def _lead(self) -> None:
        # Usually loaded on standby already; a scheduler that got the lease at once loads them
        # now, then makes sure the lease is still its own (loading may outlast a short lease).
        load_task_modules()
        if self.stop.is_set() or not self._try_acquire():
            return
        log.info("leader (%s): scheduling in %s", self.lease.holder, self.settings.timezone)
        now = utcnow()
        scheduler = make_scheduler(self.ctx, now=now)
        self.terms += 1
        first = start_up_runs(self.settings, now=now)
        for run in next_runs(self.settings, now=now):
            when = "now (start-up catch-up)" if first[run.id] else run.next_run.isoformat()
            log.info("job %-15s %-13s next: %s", run.id, run.trigger, when)
        scheduler.start()  # fires jobs from its own thread
        self.leading.set()
        try:
            self._keep_lease()
        finally:
            # No job is fired after this; a running one ends its unit of work (a stop request
            # set the stop event it looks at) and the scheduler's thread ends.
            scheduler.shutdown(wait=True)

    def _keep_lease(self) -> None:
        """Renew the lease until stopped, or until it is lost (the caller returns to standby).

        A renewal that fails (a busy or unreachable database) is tried again at the next tick
        while the lease may still be ours; after a whole lease period without a renewal another
        scheduler may hold it, so this one steps down."""
        renewed = time.monotonic()
        while not self.stop.wait(self.renew_every):
            try:
                if self.lease.renew(now=utcnow()):
                    renewed = time.monotonic()
                    continue
            except SQLAlchemyError as exc:
                if time.monotonic() - renewed < self.lease_ttl.total_seconds():
                    log.warning("could not renew the scheduler lease (%s); trying again",
                                _first_line(exc))  # fmt: skip
                    continue
            log.error("lost the scheduler lease: stopping jobs and returning to standby")
            return
        self._say_stopping()

    def _say_stopping(self) -> None:
        if not self._said_stopping:  # once: by the leader when it notices, else on the way out
            self._said_stopping = True
            log.info("received %s: finishing the running job, then exiting", self.stopped_by)

    def _try_acquire(self) -> bool:
        try:
            return self.lease.try_acquire(now=utcnow())
        except SQLAlchemyError as exc:  # a busy or unreachable database: ask again later
            log.warning("could not check the scheduler lease (%s)", _first_line(exc))
            return False

    def _release(self) -> None:
        try:
            self.lease.release()
        except SQLAlchemyError as exc:
            log.warning("could not release the scheduler lease (%s); it expires by itself",
                        _first_line(exc))  # fmt: skip


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def run_scheduler(settings: Settings, *, poll: float = 5.0, lease: float = 30.0) -> int:
    """`digest scheduler run`: the foreground process. Returns the exit status."""
    from digest.db import make_engine

    engine = make_engine(settings)
    runner = Runner(settings, engine=engine, poll=poll, lease_ttl=timedelta(seconds=lease))
    try:
        with stop_on_signals(runner.stop_for):
            return runner.run()
    finally:
        engine.dispose()
