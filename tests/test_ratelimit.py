"""The shared rate limiter (steady spacing, hour/day quotas) and the throttling gate."""

from __future__ import annotations

import asyncio

from digest.send.ratelimit import Gate, RateLimiter
from digest.settings import Settings


class FakeClock:
    """A clock the test moves by hand (no sleeping, no timed assertions)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def take(limiter: RateLimiter, clock: FakeClock, n: int) -> list[float]:
    """Acquire ``n`` slots, jumping the clock forward by each wait; return the start times."""
    starts = []
    for _ in range(n):
        wait = limiter.wait_time()
        clock.now += wait
        asyncio.run(limiter.acquire())
        starts.append(clock.now)
    return starts


def test_per_second_limits_are_spaced_evenly_not_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_second=10, clock=clock)
    starts = take(limiter, clock, 21)
    gaps = {round(b - a, 6) for a, b in zip(starts, starts[1:], strict=False)}
    assert gaps == {0.1}


def test_an_hourly_limit_alone_is_spread_over_the_hour() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_hour=60, clock=clock)
    starts = take(limiter, clock, 3)
    assert round(starts[2] - starts[0]) == 120


def test_a_daily_quota_stops_sending_until_the_window_frees_a_slot() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_second=14, per_day=5, clock=clock)
    starts = take(limiter, clock, 6)
    assert starts[4] - starts[0] < 1
    assert round(starts[5] - starts[0]) == 86400


def test_earlier_sends_from_the_ledger_count_against_the_quota() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_hour=3, clock=clock)
    limiter.seed([clock.now - 10, clock.now - 20, clock.now - 30])
    assert round(limiter.wait_time()) == 3600 - 30


def test_no_limits_means_no_waiting() -> None:
    limiter = RateLimiter.from_settings(Settings())
    assert limiter.unlimited and limiter.wait_time() == 0


def test_the_gate_pauses_then_lets_one_in_and_ramps_up() -> None:
    clock = FakeClock()

    async def scenario() -> list[int]:
        gate = Gate(capacity=3, ramp_every=2, clock=clock)
        seen = []
        gate.pause(600)
        assert gate.paused_until == clock.now + 600
        clock.now += 600
        for _ in range(5):
            async with gate:
                seen.append(gate.limit)
            gate.succeeded()
        await asyncio.sleep(0)
        return seen

    assert asyncio.run(scenario()) == [1, 1, 2, 2, 3]


def test_the_gate_never_admits_more_than_its_limit() -> None:
    async def scenario() -> int:
        gate = Gate(capacity=2)
        inside, peak = 0, 0

        async def worker() -> None:
            nonlocal inside, peak
            async with gate:
                inside += 1
                peak = max(peak, inside)
                await asyncio.sleep(0.001)
                inside -= 1

        await asyncio.gather(*(worker() for _ in range(10)))
        return peak

    assert asyncio.run(scenario()) == 2
