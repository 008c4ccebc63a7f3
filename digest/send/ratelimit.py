"""Sending pace: one rate limiter shared by every connection, and the throttling gate.

Limits are stated the way providers state them: per second, per hour, per day. The limiter is
steady, not bursty: messages are spaced ``1 / per_second`` apart (or, with no per-second limit,
by the tightest of the hour and day limits spread evenly), and the hour and day limits are also
enforced as sliding-window quotas, so "14/s, 50,000/day" sends at 14/s until 50,000 went out in
the last 24 hours, then waits.

``Gate`` caps how many connections may send at once. When a provider says "slow down"
(Gmail's 4.7.28) the pool closes it for a pause, then reopens it for one connection and adds one
connection back after every ``ramp_every`` accepted messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterable

from digest.settings import Settings

Clock = Callable[[], float]


class RateLimiter:
    """Reserves send slots. ``acquire`` waits for the caller's slot; ``wait_time`` only looks."""

    def __init__(
        self,
        *,
        per_second: float = 0.0,
        per_hour: int = 0,
        per_day: int = 0,
        clock: Clock = time.time,
    ) -> None:
        self._clock = clock
        self._windows = [
            (w, n, deque[float]()) for w, n in ((3600.0, per_hour), (86400.0, per_day)) if n
        ]
        if per_second:
            self.interval = 1.0 / per_second
        elif self._windows:
            self.interval = min(w / n for w, n, _ in self._windows)
        else:
            self.interval = 0.0
        self._next = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimiter:
        return cls(
            per_second=settings.rate_per_second,
            per_hour=settings.rate_per_hour,
            per_day=settings.rate_per_day,
        )

    @property
    def unlimited(self) -> bool:
        return not self.interval and not self._windows

    def seed(self, sent_at: Iterable[float]) -> None:
        """Count earlier sends (epoch seconds, e.g. from the ledger) against the hour/day quotas."""
        for stamp in sorted(sent_at):
            for _, _, log in self._windows:
                log.append(stamp)
        self._trim(self._clock())

    def _trim(self, now: float) -> None:
        for window, _, log in self._windows:
            while log and log[0] <= now - window:
                log.popleft()

    def wait_time(self) -> float:
        """Seconds until the next message may start (0.0: now)."""
        now = self._clock()
        self._trim(now)
        wait = max(0.0, self._next - now)
        for window, limit, log in self._windows:
            if len(log) >= limit:
                wait = max(wait, log[len(log) - limit] + window - now)
        return wait

    async def acquire(self) -> None:
        """Wait for, and take, the next slot. Concurrent callers are spaced, not bunched."""
        if self.unlimited:
            return
        while True:
            wait = self.wait_time()
            if wait <= 0:
                break
            await asyncio.sleep(wait)
        now = self._clock()
        self._next = max(now, self._next) + self.interval
        for _, _, log in self._windows:
            log.append(now)


class Gate:
    """An adjustable cap on concurrent senders with a pause (for provider throttling)."""

    def __init__(
        self, *, capacity: int, ramp_every: int = 50, clock: Clock = time.monotonic
    ) -> None:
        self.capacity = capacity
        self.limit = capacity
        self.ramp_every = ramp_every
        self.paused_until = 0.0
        self._clock = clock
        self._active = 0
        self._since_ramp = 0
        self._changed = asyncio.Condition()

    @property
    def active(self) -> int:
        return self._active

    async def wait_open(self) -> None:
        """Return once the gate is not paused (without taking a place)."""
        while (delay := self.paused_until - self._clock()) > 0:
            await asyncio.sleep(delay)

    async def __aenter__(self) -> None:
        async with self._changed:
            while True:
                delay = self.paused_until - self._clock()
                if delay <= 0 and self._active < self.limit:
                    break
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), timeout=delay)
                else:
                    await self._changed.wait()
            self._active += 1

    async def __aexit__(self, *exc: object) -> None:
        async with self._changed:
            self._active -= 1
            self._changed.notify_all()

    def succeeded(self) -> None:
        """One accepted message: after ``ramp_every`` of them, let one more connection in."""
        if self.limit >= self.capacity:
            return
        self._since_ramp += 1
        if self._since_ramp >= self.ramp_every:
            self._since_ramp = 0
            self.limit += 1
            asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def pause(self, seconds: float) -> float:
        """Close for ``seconds`` (extending any pause), then reopen for one connection.

        Returns the clock value at which sending resumes.
        """
        self.paused_until = max(self.paused_until, self._clock() + seconds)
        self.limit = 1
        self._since_ramp = 0
        return self.paused_until
