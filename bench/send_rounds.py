"""Where a send's time goes: the ledger rounds and what the workers wait for, per receiver.

    .venv/bin/python -m bench.send_rounds [--messages 4000] [--connections 8,16]

A diagnostic beside ``bench.sending``, not a benchmark of its own: it runs that bench's engine
scenario (``digest issue send`` on SQLite, messages built ahead) in a fresh child process with
timing hooks wrapped around ``claims.Rounds`` and ``SmtpPool.send``. The hooks live here and
only here; digest has none. Printed per receiver and connection count:

  * rows per round, and a round's time until it hands its rows out and until it has committed;
  * how long a worker waits in ``Rounds.next`` for its next row, and how long ``SmtpPool.send``
    takes (the transfer, the wait for the round's commit, the end of data);
  * how idle the machine's CPUs were during the send (``/proc/stat``), and the sending
    process's voluntary context switches per message.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.sending import RECEIVERS, engine_settings, prepare, receiver


def _cpu_idle() -> tuple[int, int]:
    """(idle + iowait, total) jiffies of all CPUs so far."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[3] + fields[4], sum(fields)


def run(work: Path, *, port: int, connections: int) -> dict[str, Any]:
    from digest.send import claims, smtp
    from digest.send.commands import run_send

    rounds: list[tuple[int, float, float]] = []  # rows, until hand-out, whole round (s)
    waits: list[float] = []
    sends: list[float] = []

    apply = claims.Rounds._apply

    def timed_apply(
        self: claims.Rounds,
        outcomes: list[dict[str, Any]],
        wanted: int,
        committed: Any,
        publish: Callable[[list[Any]], None],
    ) -> None:
        start, handed = time.perf_counter(), [0.0]

        def timed_publish(jobs: list[Any]) -> None:
            handed[0] = time.perf_counter() - start
            publish(jobs)

        apply(self, outcomes, wanted, committed, timed_publish)
        rounds.append((wanted, handed[0], time.perf_counter() - start))

    next_row = claims.Rounds.next

    async def timed_next(self: claims.Rounds) -> Any:
        start = time.perf_counter()
        try:
            return await next_row(self)
        finally:
            waits.append(time.perf_counter() - start)

    send = smtp.SmtpPool.send

    async def timed_send(self: smtp.SmtpPool, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return await send(self, **kwargs)
        finally:
            sends.append(time.perf_counter() - start)

    claims.Rounds._apply = timed_apply  # type: ignore[method-assign]
    claims.Rounds.next = timed_next  # type: ignore[method-assign]
    smtp.SmtpPool.send = timed_send  # type: ignore[method-assign]

    settings = engine_settings(work, port, connections)
    idle0, total0 = _cpu_idle()
    self0 = resource.getrusage(resource.RUSAGE_SELF)
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    report = run_send(settings=settings, now=datetime.now(UTC))
    wall = time.perf_counter() - start
    idle1, total1 = _cpu_idle()
    self1 = resource.getrusage(resource.RUSAGE_SELF)
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    n = report.sent

    def ms(values: list[float]) -> float:
        return statistics.mean(values) * 1000

    def cpu(a: Any, b: Any) -> float:
        return float(b.ru_utime - a.ru_utime + b.ru_stime - a.ru_stime) / n * 1000

    return {
        "sent": n,
        "per_s": n / wall,
        "rows_per_round": statistics.mean(r[0] for r in rounds),
        "until_handout_ms": ms([r[1] for r in rounds]),
        "round_ms": ms([r[2] for r in rounds]),
        "wait_ms": ms(waits),
        "send_ms": ms(sends),
        "idle": (idle1 - idle0) / max(1, total1 - total0),
        "switches": (self1.ru_nvcsw - self0.ru_nvcsw) / n,
        "parent_ms": cpu(self0, self1),
        "child_ms": cpu(kids0, kids1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--connections", default="8,16", help="comma-separated pool sizes")
    parser.add_argument("--run", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(json.dumps(run(args.work, port=args.port, connections=args.run)))
        return

    sizes = [int(x) for x in args.connections.split(",") if x.strip()]
    print(
        "| receiver | conn | messages/s | rows per round | round: until hand-out / committed "
        "| worker: wait for a row / send | CPUs idle | switches per message "
        "| CPU per message: sender / prebuild child |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        prepare(work, args.messages)
        for kind, label in RECEIVERS.items():
            with receiver(kind) as port:
                if port is None:
                    print(f"| {label} | not installed (apt-get install postfix) | | | | | | | |")
                    continue
                for size in sizes:
                    out = subprocess.run(
                        [sys.executable, "-m", "bench.send_rounds", "--run", str(size),
                         "--port", str(port), "--work", str(work)],
                        check=True, capture_output=True, text=True,
                    )  # fmt: skip
                    r = json.loads(out.stdout.strip().splitlines()[-1])
                    print(
                        f"| {label} | {size} | {r['per_s']:,.0f} | {r['rows_per_round']:.1f} "
                        f"| {r['until_handout_ms']:.2f} / {r['round_ms']:.2f} ms "
                        f"| {r['wait_ms']:.2f} / {r['send_ms']:.2f} ms | {r['idle']:.0%} "
                        f"| {r['switches']:.1f} | {r['parent_ms']:.3f} / {r['child_ms']:.3f} ms |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
