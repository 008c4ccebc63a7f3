"""The scheduler process: `digest scheduler run`.

    start ─► standby (poll the leader lease) ─► leader: APScheduler fires JOBS in the
    newsletter's zone, the lease is renewed in the background ─► SIGTERM: finish the running
    unit of work, release the lease, exit 0

Only the lease holder fires jobs; a second process against the same database waits as a standby
and takes over when the first dies (PostgreSQL drops its advisory lock with its connection; on
SQLite the lease row expires). Even without the lease, the tasks are safe to run twice.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING, Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy.engine import Engine

from digest.settings import Settings
from digest.store.leases import LeaderLease, leader_lease
from jobs.calendar import missed_within
from jobs.notify import MailNotifier, Notifier
from jobs.schedule import JOBS, CatchUp, next_runs
from jobs.tasks import TaskContext, utcnow

if TYPE_CHECKING:
    # Only for annotations: the send stack loads when a send runs.
    from digest.send.smtp import Sender

log = logging.getLogger("digest.scheduler")

LEASE_TTL = timedelta(seconds=30)


def holder_name() -> str:
    """``host:pid:random``: unique per runner, even two in one process."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def make_scheduler(ctx: TaskContext, *, now: datetime) -> BlockingScheduler:
    """A BlockingScheduler in the newsletter's zone with every job of ``JOBS`` added.

    ``coalesce`` (several missed runs run once), ``max_instances=1`` (a slow run is never
    overlapped by the next) and the misfire grace are set explicitly for every job. On start-up
    a job marked ``CatchUp.STORE`` runs at once (its task asks the store what is due); a
    ``CatchUp.GRACE`` job runs at once only if it missed a run less than the grace ago.
    """
    s = ctx.settings
    grace = timedelta(minutes=s.misfire_grace_minutes)
    scheduler = BlockingScheduler(
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
        # Renew three times per lease period, so one slow renewal does not lose the lease.
        self.renew_every = renew_every or lease_ttl.total_seconds() / 3
        self.ctx = TaskContext(
            settings=settings, engine=engine, notifier=notifier or MailNotifier(settings),
            sender=sender, stop=self.stop,
        )  # fmt: skip
        self.leading = threading.Event()
        self.terms = 0  # how many times this runner became the leader
        self.stopped_by = "a stop request"

    def request_stop(self, *_: object) -> None:
        """Ask the runner to finish the running unit of work and exit (SIGTERM, SIGINT)."""
        self.stop.set()

    def install_signal_handlers(self) -> None:
        def handler(signum: int, _frame: FrameType | None) -> None:
            # Only set flags here: logging from a signal handler can deadlock on its lock.
            self.stopped_by = signal.Signals(signum).name
            self.request_stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run(self) -> int:
        """Wait for the lease, lead until stopped (or the lease is lost: back to standby).
        Returns the process exit status: 0 for a clean stop."""
        told_standby = False
        while not self.stop.is_set():
            if not self.lease.try_acquire(now=utcnow()):
                if not told_standby:
                    log.info("standby: another scheduler holds the lease; polling every %gs",
                             self.poll)  # fmt: skip
                    told_standby = True
                self.stop.wait(self.poll)
                continue
            told_standby = False
            try:
                self._lead()
            finally:
                self.leading.clear()
                self.lease.release()
        log.info("scheduler stopped cleanly")
        return 0

    def _lead(self) -> None:
        log.info("leader (%s): scheduling in %s", self.lease.holder, self.settings.timezone)
        scheduler = make_scheduler(self.ctx, now=utcnow())
        self.terms += 1
        keeper = threading.Thread(
            target=self._keep_lease, args=(scheduler,), name="lease", daemon=True
        )
        self.leading.set()
        keeper.start()
        now = utcnow()
        first = start_up_runs(self.settings, now=now)
        for run in next_runs(self.settings, now=now):
            when = "now (start-up catch-up)" if first[run.id] else run.next_run.isoformat()
            log.info("job %-15s %-13s next: %s", run.id, run.trigger, when)
        scheduler.start()  # blocks until shutdown
        keeper.join()

    def _keep_lease(self, scheduler: BlockingScheduler) -> None:
        # Renew until stopped or the lease is lost; either way shut the scheduler down, waiting
        # for the running job to finish its unit of work.
        while not self.stop.wait(self.renew_every):
            if not self.lease.renew(now=utcnow()):
                log.error("lost the scheduler lease: stopping jobs and returning to standby")
                break
        else:
            log.info("received %s: finishing the running job, then exiting", self.stopped_by)
        _wait_until_running(scheduler)
        scheduler.shutdown(wait=True)


def _wait_until_running(scheduler: BlockingScheduler) -> None:
    # shutdown() refuses a scheduler that has not started yet; start() runs right after the
    # keeper thread starts, so this wait is short.
    while not scheduler.running:
        threading.Event().wait(0.01)


def run_scheduler(settings: Settings, *, poll: float = 5.0, lease: float = 30.0) -> int:
    """`digest scheduler run`: the foreground process. Returns the exit status."""
    from digest.db import make_engine

    engine = make_engine(settings)
    runner = Runner(settings, engine=engine, poll=poll, lease_ttl=timedelta(seconds=lease))
    runner.install_signal_handlers()
    try:
        return runner.run()
    finally:
        engine.dispose()
