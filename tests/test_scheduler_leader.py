"""Only one scheduler acts: a second waits as a standby and takes over; SIGTERM exits cleanly.
Also: two schedulers acting at once with no lease at all still build one issue and send once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import scheduler_support
import sqlalchemy as sa
import time_machine
from conftest import SmtpSink
from scheduler_support import (  # noqa: F401 (the autouse fixture)
    READERS,
    SEND,
    WEEK,
    Clock,
    context,
    dispose_pipeline_engines,
    eventually,
    issues,
    received,
)
from sqlalchemy.engine import Engine

from digest.db import make_engine
from digest.models import IssueStatus
from digest.settings import Settings
from jobs import tasks
from jobs.notify import MemoryNotifier
from jobs.scheduler import Runner


def prepared(settings: Settings, smtp_sink: SmtpSink) -> Settings:
    return scheduler_support.prepared(settings, smtp_sink, on=SEND - timedelta(days=4))


def test_a_second_scheduler_waits_as_standby_and_takes_over(
    settings: Settings, engine: Engine, smtp_sink: SmtpSink
) -> None:
    s = prepared(settings, smtp_sink)
    other_engine = sa.create_engine(s.db_url)  # the second scheduler's own pool, as in its process
    first = Runner(s, engine=engine, notifier=MemoryNotifier(), poll=0.1, renew_every=0.2)
    second = Runner(s, engine=other_engine, notifier=MemoryNotifier(), poll=0.1, renew_every=0.2)
    threads = [threading.Thread(target=r.run, daemon=True) for r in (first, second)]
    try:
        # Both start half a minute after Friday's send time, the week not yet built: the
        # leader's start-up catch-up builds the issue late and sends it at once.
        with time_machine.travel(SEND + timedelta(seconds=30), tick=True):
            threads[0].start()
            assert eventually(first.leading.is_set)
            threads[1].start()
            assert eventually(lambda: [i.status for i in issues(engine)] == [IssueStatus.SENT])
            assert (first.terms, second.terms) == (1, 0)  # the standby never acted
            first.request_stop()
            threads[0].join(timeout=60)
            assert not threads[0].is_alive()
            assert eventually(second.leading.is_set)  # took over once the lease was free
            second.request_stop()
            threads[1].join(timeout=60)
            assert not threads[1].is_alive()
    finally:
        for runner in (first, second):
            runner.request_stop()
        other_engine.dispose()
    assert second.terms == 1
    assert [(i.week, i.status) for i in issues(engine)] == [(WEEK, IssueStatus.SENT)]
    counts = received(smtp_sink.messages)
    assert len(counts) == len(READERS) and set(counts.values()) == {1}


PG_URL = os.environ.get("DIGEST_TEST_DATABASE_URL", "")


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
@pytest.mark.skipif(not PG_URL, reason="DIGEST_TEST_DATABASE_URL is not set")
def test_two_schedulers_acting_at_once_on_postgresql_build_one_issue_and_send_once(
    settings: Settings, engine: Engine, smtp_sink: SmtpSink
) -> None:
    # No lease here: both fire build and then send at the same instant, each with its own
    # connections. The unique week key and the conditional status changes decide.
    s = prepared(settings, smtp_sink)
    make_engine(s)  # the schema
    engines = [sa.create_engine(s.db_url), sa.create_engine(s.db_url)]  # a pool each
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def scheduler(own: Engine) -> None:
        ctx, _ = context(s, clock=Clock(SEND - timedelta(hours=2)), engine=own)
        start.wait()
        outcomes.append(tasks.build(ctx))
        ctx.clock = Clock(SEND)
        start.wait()
        outcomes.append(tasks.send(ctx))

    try:
        with time_machine.travel(SEND, tick=True):
            threads = [threading.Thread(target=scheduler, args=(e,)) for e in engines]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=120)
    finally:
        for e in engines:
            e.dispose()
    assert len(outcomes) == 4, outcomes
    assert [(i.week, i.status) for i in issues(engine)] == [(WEEK, IssueStatus.SENT)]
    counts = received(smtp_sink.messages)
    assert len(counts) == len(READERS) and set(counts.values()) == {1}


class Process:
    """`digest scheduler run` as a child process, its log collected line by line."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from digest.cli import main; main()",
             "scheduler", "run", "--poll", "0.2", *args],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def said(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))

    def terminate(self) -> int:
        """SIGTERM, then the exit status; a process still running after 150 s fails the test
        with its log, so a hang says where it hung. (The bound is generous: once, in a loaded
        full-suite run, a fresh leader took over 60 s to finish its start-up jobs and exit.)"""
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=150)
        except subprocess.TimeoutExpired:
            self.close()
            pytest.fail("no exit 150 s after SIGTERM; its log:\n" + "".join(self.lines))
        self.close()
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.reader.join(timeout=10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def process_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(
        DIGEST_DATA_DIR=str(tmp_path / "data"),
        DIGEST_CONFIG=str(tmp_path / "absent.toml"),
        DIGEST_TIMEZONE="America/New_York",
    )
    return env


def test_scheduler_run_stands_by_takes_over_and_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
    env = process_env(tmp_path)
    first = Process(env)
    second: Process | None = None
    try:
        assert eventually(lambda: first.said("leader ("), within=60), first.lines
        second = Process(env)
        assert eventually(lambda: second.said("standby: another scheduler holds the lease"))
        assert not second.said("leader (")
        assert first.terminate() == 0
        assert first.said("received SIGTERM") and first.said("scheduler stopped cleanly")
        assert eventually(lambda: second.said("leader ("), within=60), second.lines
        assert second.terminate() == 0
        assert second.said("scheduler stopped cleanly")
        assert not any("Traceback" in line for line in first.lines + second.lines)
    finally:
        for p in (first, second):
            if p is not None:
                p.close()


def test_a_standby_takes_over_from_a_killed_leader_once_its_lease_expires(
    tmp_path: Path,
) -> None:
    # SIGKILL: no clean-up, the lease row stays until it expires (2 s here, 30 s by default).
    env = process_env(tmp_path)
    first = Process(env, "--lease", "2")
    second: Process | None = None
    try:
        assert eventually(lambda: first.said("leader ("), within=60), first.lines
        second = Process(env, "--lease", "2")
        assert eventually(lambda: second.said("standby: another scheduler holds the lease"))
        first.proc.kill()
        first.proc.wait(timeout=30)
        assert eventually(lambda: second.said("leader ("), within=60), second.lines
        assert second.terminate() == 0
    finally:
        for p in (first, second):
            if p is not None:
                p.close()
