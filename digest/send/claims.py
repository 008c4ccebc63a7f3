"""Who holds which ledger row: the group-commit rounds that hand rows to the send loop's
workers, and whether the owner of an old claim is still alive.

Workers never touch the database themselves. They ask ``Rounds.next`` for their next row and
``Rounds.record`` their last outcome; one round, in a thread, applies every outcome and claims
every row asked for in ONE transaction (group commit), so that while it commits the event loop
keeps talking SMTP. A worker's row is committed as ``sending`` before its message is built, and
its outcome is committed in the same transaction that claims its next row: at any instant each
connection holds at most one ``sending`` row.

A 5xx refusal of a recipient or message is also handed to the bounce rules in that transaction
(a hard one suppresses the address, a policy one never does). A round claims nothing once the
stop event is set, or once the policy refusals of this run reach the pause threshold
(``Rounds.paused`` says why); the rows not claimed stay queued for the next run.
"""

from __future__ import annotations

import asyncio
import functools
import os
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from digest.db import session_scope
from digest.models import Delivery, DeliveryStatus, Subscriber
from digest.send.message import Recipient
from digest.settings import Settings
from digest.store import deliveries as ledger
from digest.subscribers.links import preferences_link, unsubscribe_link

if TYPE_CHECKING:
    from digest.send.engine import Progress, SendPolicy, SendReport

S = DeliveryStatus
Clock = Callable[[], datetime]


# --- who is alive -----------------------------------------------------------------------------


def worker_name() -> str:
    """``host:pid:random``: unique per process, and tells a later run whether we still live."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child that nobody reaped yet is a zombie: dead for our purposes
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "\nState:\tZ" not in status


def is_dead_worker(
    worker: str | None, claimed_at: datetime | None, *, now: datetime, stale_after: timedelta
) -> bool:
    """A claim's owner is gone: same host and its process is dead, or another host's claim is
    older than ``stale_after`` (a message never takes that long)."""
    host, _, rest = (worker or "").partition(":")
    pid_text = rest.partition(":")[0]
    if host == socket.gethostname() and pid_text.isdigit():
        return int(pid_text) != os.getpid() and not _pid_alive(int(pid_text))
    return claimed_at is None or claimed_at < now - stale_after


# --- the rounds -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed row. Its message may be built and transferred at once, but handed over
    (the end-of-data marker) only once ``committed``, its round's commit, has resolved."""

    claim: ledger.Claimed
    recipient: Recipient
    committed: asyncio.Future[None]


Next = Job | float | None  # a row to send, seconds to wait for a retry, or nothing left


class Rounds:
    def __init__(
        self,
        engine: Engine,
        *,
        settings: Settings,
        issue_id: int,
        worker: str,
        policy: SendPolicy,
        clock: Clock,
        report: SendReport,
        progress: Progress | None,
        stop: threading.Event | None = None,
        since: datetime | None = None,
    ) -> None:
        self._engine, self._settings, self._issue_id = engine, settings, issue_id
        self._worker, self._policy, self._clock = worker, policy, clock
        self._report, self._progress = report, progress
        self._stop = stop or threading.Event()
        self._since = since  # the run's start: policy refusals from here on count to the pause
        self.paused: str | None = None  # set (once) when policy refusals pause the send
        self._waiters: list[asyncio.Future[Next]] = []
        self._outcomes: list[dict[str, Any]] = []
        self._runner: asyncio.Future[None] | None = None
        self._failure: BaseException | None = None  # a round's database error ends the run
        self._secret = settings.secret() if settings.verp_domain else b""

    def record(self, outcome: dict[str, Any]) -> None:
        self._outcomes.append(outcome)

    async def next(self) -> Next:
        if self._failure is not None:
            raise self._failure
        waiter: asyncio.Future[Next] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        if self._runner is None or self._runner.done():
            self._runner = asyncio.ensure_future(self._drain())
        return await waiter

    async def settle(self) -> None:
        """Wait for the round in progress, if any, to finish committing; raise the database's
        error if a round failed (even one whose workers had nothing left to send)."""
        if self._runner is not None:
            await self._runner
        if self._failure is not None:
            raise self._failure

    def flush(self) -> None:
        """Write outstanding outcomes (at the end, or when stopping)."""
        if self._outcomes:
            outcomes, self._outcomes = self._outcomes, []
            with session_scope(self._engine) as session:
                ledger.record(session, outcomes)
                self._bounce_refusals(session, outcomes)

    async def _drain(self) -> None:
        # One round at a time, in a thread. A round hands its rows out as soon as they are
        # claimed, before its commit: the workers build and transfer their messages while the
        # commit (an fsync on SQLite) runs, and only the handover waits for ``Job.committed``.
        loop = asyncio.get_running_loop()
        while self._waiters:
            if len(self._waiters) < self._settings.smtp_connections:
                # A round costs about the same for one row as for eight: the workers whose
                # replies are arriving get a moment to join it (fewer, larger rounds). With
                # messages built ahead, workers drift apart, so any worker still missing counts.
                await asyncio.sleep(self._policy.gather_wait)
            waiters, self._waiters = self._waiters, []
            outcomes, self._outcomes = self._outcomes, []
            committed: asyncio.Future[None] = loop.create_future()
            publish = functools.partial(_publish, loop, waiters)
            try:
                await asyncio.to_thread(self._apply, outcomes, len(waiters), committed, publish)
            except BaseException as exc:  # the database failed: every waiting worker learns it
                self._failure = exc
                waiting, self._waiters = waiters + self._waiters, []
                for waiter in waiting:
                    if not waiter.done():
                        waiter.set_exception(exc)
                committed.set_exception(exc)  # rows handed out are never handed over
                committed.exception()  # retrieved here, whether or not a worker awaits it
                return
            committed.set_result(None)

    def _apply(
        self,
        outcomes: list[dict[str, Any]],
        wanted: int,
        committed: asyncio.Future[None],
        publish: Callable[[list[Next]], None],
    ) -> None:
        """Record ``outcomes``, claim ``wanted`` rows, ``publish`` them, then commit."""
        now = self._clock()
        jobs: list[Next] = []
        settings = self._settings
        with session_scope(self._engine) as session:
            ledger.record(session, outcomes)
            self._bounce_refusals(session, outcomes)
            if self._stop.is_set() or self.paused:
                publish([None] * wanted)
                return
            while len(jobs) < wanted:
                claimed = ledger.claim(
                    session,
                    issue_id=self._issue_id,
                    limit=wanted - len(jobs),
                    worker=self._worker,
                    now=now,
                    max_attempts=self._policy.max_attempts,
                )
                if not claimed:
                    break
                names = ledger.eligible_names(
                    session,
                    subscriber_ids=[row.subscriber_id for row in claimed],
                    newsletter=settings.newsletter_id,
                )
                for row in claimed:
                    name = names.get(row.subscriber_id)
                    if name is None:
                        reason = self._why_not(session, row)
                        ledger.record(
                            session,
                            [{"id": row.delivery_id, "status": S.SKIPPED.value,
                              "last_error": reason}],
                        )  # fmt: skip
                        self._report.skipped.append((row.email, reason))
                        if self._progress:
                            self._progress.advance("skipped")
                        continue
                    jobs.append(Job(row, self._recipient(row, name), committed))
            if len(jobs) < wanted:
                due = ledger.next_retry_at(
                    session, issue_id=self._issue_id, max_attempts=self._policy.max_attempts
                )
                wait: float | None = None
                if due is not None:
                    seconds = max(0.05, (due - now).total_seconds())
                    if seconds <= self._policy.wait_for_retries:
                        wait = seconds
                jobs += [wait] * (wanted - len(jobs))
            publish(jobs)  # the commit follows as the block ends; handovers wait for it

    def _bounce_refusals(self, session: Session, outcomes: list[dict[str, Any]]) -> None:
        """Hand each 5xx refusal among ``outcomes`` to the bounce rules (same transaction), and
        pause the send once this run's policy refusals reach the threshold."""
        from digest.bounces.apply import pause_reason, record_smtp_rejection

        policy = False
        for outcome in outcomes:
            code = outcome.get("last_code")
            if outcome["status"] != S.FAILED_PERMANENT.value or not code or code < 500:
                continue  # not an SMTP refusal (an unusable address has no code)
            delivery = session.get(Delivery, outcome["id"])
            if delivery is None:
                continue
            result = record_smtp_rejection(
                session,
                delivery=delivery,
                code=int(code),
                message=_reply_text(outcome.get("last_error") or "", delivery.email, int(code)),
                settings=self._settings,
                now=self._clock(),
            )
            policy = policy or result.kind == "policy"
        if policy and self.paused is None:
            self.paused = pause_reason(
                session, issue_id=self._issue_id, settings=self._settings, since=self._since
            )

    def _why_not(self, session: Session, row: ledger.Claimed) -> str:
        """The consent module's own words for why this row's subscriber is left out."""
        from digest.subscribers.consent import may_receive

        subscriber = session.get(Subscriber, row.subscriber_id)
        if subscriber is None:
            return "subscriber deleted"
        reason = may_receive(session, subscriber, newsletter=self._settings.newsletter_id)
        return reason or "no longer eligible (consent or suppression changed)"

    def _recipient(self, row: ledger.Claimed, name: str) -> Recipient:
        return recipient_for(row, name, settings=self._settings, secret=self._secret)


def recipient_for(
    row: ledger.Claimed, name: str, *, settings: Settings, secret: bytes
) -> Recipient:
    """What a message to ``row``'s subscriber needs: address, name, links, VERP token
    (``secret``: the token key, read once per send; empty without VERP)."""
    verp = None
    if settings.verp_domain:
        from digest.bounces.verp import verp_token

        verp = verp_token(row.delivery_id, secret=secret)
    return Recipient(
        email=row.email,
        name=name,
        unsubscribe_url=unsubscribe_link(settings=settings, subscriber_id=row.subscriber_id),
        preferences_url=preferences_link(settings=settings, subscriber_id=row.subscriber_id),
        delivery_id=row.delivery_id,
        verp_token=verp,
    )


def _publish(
    loop: asyncio.AbstractEventLoop, waiters: list[asyncio.Future[Next]], results: list[Next]
) -> None:
    """Called in a round's thread, before its commit: give each waiting worker its result."""
    loop.call_soon_threadsafe(_hand_out, waiters, results)


def _hand_out(waiters: list[asyncio.Future[Next]], results: list[Next]) -> None:
    for waiter, result in zip(waiters, results, strict=True):
        if not waiter.done():
            waiter.set_result(result)


def _reply_text(error: str, email: str, code: int) -> str:
    """The server's words without the ``address: code`` prefix the SMTP pool puts in front."""
    for prefix in (f"{email}: {code} ", f"{email}: "):
        if error.startswith(prefix):
            return error[len(prefix) :]
    return error
