"""The send wired to its neighbours, through real parts (SQLite and PostgreSQL, aiosmtpd on
127.0.0.1, the CLI in-process and as a subprocess):

- the pre-send check gates `digest issue send` and `pipeline.send_issue`;
- 5xx refusals during the SMTP session go through the bounce rules (hard suppresses, policy
  never does);
- policy refusals past the threshold pause the send, and a later run resumes it;
- a stop request (SIGTERM to the command, the scheduler's stop flag) ends the send cleanly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import SmtpSink
from scheduler_support import add_subscribers, add_week_of_articles
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from support_cli import run_cli
from support_send import smtp_server
from typer.testing import Result

from digest.db import session_scope
from digest.demo import demo_settings
from digest.errors import CheckFailed
from digest.models import Bounce, Delivery, Issue, IssueStatus, Subscriber, SubscriberStatus
from digest.pipeline import build_issue, send_issue
from digest.send.commands import run_send
from digest.send.engine import SendPolicy
from digest.settings import Settings
from digest.subscribers.consent import is_suppressed
from jobs.notify import MemoryNotifier
from jobs.scheduler import Runner
from jobs.tasks import send as send_task

WEEK = "2026-W11"
# In the past: dkimpy (in the check) refuses a signature whose timestamp is in the future.
NOW = datetime(2026, 3, 13, 8, 0, tzinfo=UTC)
HTML = '<p>Hello %%NAME%%</p>\n<p>News.</p>\n<a href="%%UNSUBSCRIBE_URL%%">unsubscribe</a>\n'
TEXT = "Hello %%NAME%%\n\nUnsubscribe: %%UNSUBSCRIBE_URL%%\n"
FAST = SendPolicy(max_attempts=3, retry_base=0.01, retry_cap=0.02, wait_for_retries=2)


# --- a real SMTP server with a script ---------------------------------------------------------


class Scripted:
    """Refuses the addresses in ``refuse`` at RCPT with the given reply, waits ``delay`` seconds
    in DATA, counts every accepted recipient, and calls ``after_each`` with the count."""

    def __init__(
        self,
        *,
        refuse: dict[str, str] | None = None,
        delay: float = 0.0,
        after_each: Callable[[int], None] | None = None,
    ) -> None:
        self.refuse = refuse or {}
        self.delay = delay
        self.after_each = after_each
        self.received: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.started = 0  # DATA commands begun
        self.release = threading.Event()  # cleared: DATA waits until it is set
        self.release.set()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        import asyncio

        with self.lock:
            self.started += 1
        while not self.release.is_set():
            await asyncio.sleep(0.01)
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            self.received.update(envelope.rcpt_tos)
            total = sum(self.received.values())
        if self.after_each:
            self.after_each(total)
        return "250 OK"


@pytest.fixture
def server() -> Iterator[Callable[[Scripted], int]]:
    with ExitStack() as servers:

        def start(handler: Scripted) -> int:
            return servers.enter_context(smtp_server(handler))

        yield start


# --- the store ----------------------------------------------------------------------------------


def readers(engine: Engine, n: int) -> list[str]:
    """``n`` confirmed subscribers as bulk rows (the consent flow is tested elsewhere)."""
    emails = [f"r{i:04d}@example.org" for i in range(n)]
    with session_scope(engine) as session:
        session.add_all(
            Subscriber(
                email=e, name=f"Reader {i}", status=SubscriberStatus.CONFIRMED, confirmed_at=NOW
            )
            for i, e in enumerate(emails)
        )
    return emails


def bare_issue(engine: Engine, settings: Settings) -> None:
    """A minimal issue the pre-send check fails (unsigned, no postal address, no preheader)."""
    with session_scope(engine) as session:
        session.add(
            Issue(newsletter=settings.newsletter_id, week=WEEK, subject="The week", html=HTML,
                  text=TEXT, status=IssueStatus.APPROVED, scheduled_for=NOW)
        )  # fmt: skip


def built_issue(settings: Settings) -> Settings:
    """A week of articles built into a real issue; returns settings that sign with a new key
    (with them the issue passes every offline check)."""
    signed = demo_settings(settings.model_copy(update={"min_stories": 3}))
    add_week_of_articles(signed, week=WEEK, now=NOW - timedelta(days=4))
    built = build_issue(settings=signed, now=NOW, week=WEEK, force=True)
    assert built.issue is not None
    return signed


def states(engine: Engine) -> Counter[str]:
    with Session(engine) as session:
        return Counter(str(d.status) for d in session.exec(select(Delivery)))


def issue_status(engine: Engine) -> str:
    with Session(engine) as session:
        return str(session.exec(select(Issue)).one().status)


def cli(settings: Settings, *args: str, **env: str) -> Result:
    return run_cli(
        settings,
        *args,
        **{
            "DIGEST_SMTP_PORT": str(settings.smtp_port),
            "DIGEST_SMTP_CONNECTIONS": str(settings.smtp_connections),
            "DIGEST_MIN_STORIES": str(settings.min_stories),
            "DIGEST_DKIM_DOMAIN": settings.dkim_domain,
            "DIGEST_DKIM_SELECTOR": settings.dkim_selector,
            "DIGEST_DKIM_PRIVATE_KEY": str(settings.dkim_private_key or ""),
            "DIGEST_POLICY_PAUSE_THRESHOLD": str(settings.policy_pause_threshold),
            **env,
        },
    )


# --- 1. the pre-send check ----------------------------------------------------------------------


def test_the_pipeline_refuses_an_issue_that_fails_the_check_and_writes_nothing(
    settings: Settings, engine: Engine, smtp_sink: SmtpSink
) -> None:
    s = settings.model_copy(update={"smtp_port": smtp_sink.port})
    readers(engine, 3)
    bare_issue(engine, s)

    with pytest.raises(CheckFailed) as refused:
        send_issue(settings=s, now=NOW)

    text = str(refused.value)
    assert "\n" not in text and "DKIM signature valid" in text and "postal address" in text
    assert "--force" in text
    assert smtp_sink.messages == [] and states(engine) == Counter()
    assert issue_status(engine) == "approved"


def test_forcing_sends_past_the_check_and_keeps_what_failed_in_the_report(
    settings: Settings, engine: Engine, smtp_sink: SmtpSink
) -> None:
    s = settings.model_copy(update={"smtp_port": smtp_sink.port})
    emails = readers(engine, 3)
    bare_issue(engine, s)

    report = send_issue(settings=s, now=NOW, force=True)

    assert report.sent == 3 and sorted(smtp_sink.recipients()) == emails
    assert any(w.startswith("DKIM signature valid") for w in report.check_warnings)


def test_a_signed_well_built_issue_passes_the_pipelines_offline_check(
    settings: Settings, engine: Engine, smtp_sink: SmtpSink
) -> None:
    s = built_issue(settings.model_copy(update={"smtp_port": smtp_sink.port}))
    add_subscribers(s, ["ada@example.net", "bo@example.net"], now=NOW)

    report = send_issue(settings=s, now=NOW)

    assert report.sent == 2 and report.check_warnings == []
    assert sorted(smtp_sink.recipients()) == ["ada@example.net", "bo@example.net"]


def test_the_command_refuses_with_one_line_and_sends_with_force(
    settings: Settings, engine: Engine, smtp_sink: SmtpSink
) -> None:
    s = settings.model_copy(update={"smtp_port": smtp_sink.port})
    emails = readers(engine, 2)
    bare_issue(engine, s)

    refused = cli(s, "issue", "send", "--quiet", "--offline")
    assert refused.exit_code == 1
    assert isinstance(refused.exception, CheckFailed)
    assert "DKIM signature valid" in str(refused.exception)
    assert smtp_sink.messages == [] and states(engine) == Counter()

    forced = cli(s, "issue", "send", "--quiet", "--offline", "--force")
    assert forced.exit_code == 0, forced.output
    assert "pre-send check failed, sent anyway (--force): DKIM signature valid" in forced.stdout
    assert sorted(smtp_sink.recipients()) == emails


def test_links_are_fetched_only_without_offline(
    settings: Settings, engine: Engine, smtp_sink: SmtpSink
) -> None:
    # `.invalid` never resolves (RFC 2606): online, the one-click POST cannot be answered.
    s = built_issue(
        settings.model_copy(update={"smtp_port": smtp_sink.port, "base_url": "https://n.invalid"})
    )
    add_subscribers(s, ["ada@example.net"], now=NOW)

    online = cli(s, "issue", "send", "--quiet")
    assert online.exit_code == 1 and isinstance(online.exception, CheckFailed)
    assert "one-click unsubscribe answers POST" in str(online.exception)
    assert smtp_sink.messages == []

    offline = cli(s, "issue", "send", "--quiet", "--offline")
    assert offline.exit_code == 0, offline.output
    assert smtp_sink.recipients() == ["ada@example.net"]

    # Nothing is due any more: a finished issue is not checked (or fetched) again.
    again = cli(s, "issue", "send", "--quiet")
    assert again.exit_code == 0, again.output
    assert len(smtp_sink.messages) == 1


# --- 2. SMTP refusals are bounces ---------------------------------------------------------------


def test_refusals_in_the_smtp_session_suppress_hard_and_never_policy(
    settings: Settings, engine: Engine, server: Callable[[Scripted], int]
) -> None:
    emails = readers(engine, 6)
    hard, policy = emails[1], emails[4]
    handler = Scripted(
        refuse={
            hard: f"550 5.1.1 <{hard}>: no such user",
            policy: "550 5.7.26 unauthenticated email from example.org is not accepted",
        }
    )
    s = settings.model_copy(update={"smtp_port": server(handler), "smtp_connections": 2})
    bare_issue(engine, s)

    report = run_send(settings=s, now=NOW, policy=FAST)

    assert sorted(handler.received) == sorted(set(emails) - {hard, policy})
    assert report.counts["failed_permanent"] == 2 and not report.paused
    with Session(engine) as session:
        bounces = {b.email: b for b in session.exec(select(Bounce))}
        assert {e: (b.kind, b.status) for e, b in bounces.items()} == {
            hard: ("hard", "5.1.1"),
            policy: ("policy", "5.7.26"),
        }
        delivery = session.exec(select(Delivery).where(Delivery.email == hard)).one()
        assert bounces[hard].delivery_id == delivery.id and delivery.last_code == 550
        people = {p.email: p for p in session.exec(select(Subscriber))}
        assert people[hard].status == "bounced" and people[policy].status == "confirmed"
        assert is_suppressed(session, email=hard, newsletter=s.newsletter_id)
        assert not is_suppressed(session, email=policy, newsletter=s.newsletter_id)


# --- 3. policy refusals pause the send --------------------------------------------------------


def test_policy_refusals_past_the_threshold_pause_and_a_later_run_resumes(
    settings: Settings, engine: Engine, server: Callable[[Scripted], int]
) -> None:
    emails = readers(engine, 30)
    refused = emails[:5]
    block = "550 5.7.1 Service unavailable; client host blocked using zen.spamhaus.org"
    handler = Scripted(refuse={e: block for e in refused})
    s = settings.model_copy(
        update={"smtp_port": server(handler), "smtp_connections": 1, "policy_pause_threshold": 3}
    )
    bare_issue(engine, s)

    paused = cli(s, "issue", "send", "--quiet", "--offline", "--force")

    assert paused.exit_code == 1
    message = str(paused.exception)
    assert "refused for policy reasons" in message
    assert "resume with digest issue send once fixed" in message
    counts = states(engine)
    assert counts["failed_permanent"] == 3 and counts["sending"] == 0
    assert counts["queued"] == 27 and not handler.received
    assert issue_status(engine) == "sending"

    handler.refuse = {}  # the operator fixed the cause (the blocklist entry went away)
    resumed = cli(s, "issue", "send", "--quiet", "--offline", "--force")

    assert resumed.exit_code == 0, resumed.output
    assert sorted(handler.received) == emails[3:]
    assert set(handler.received.values()) == {1}
    assert states(engine) == Counter({"sent": 27, "failed_permanent": 3})
    with Session(engine) as session:
        people = session.exec(select(Subscriber)).all()
        assert {p.status for p in people} == {"confirmed"}


# --- 4. a clean stop ----------------------------------------------------------------------------


def sender_process(settings: Settings, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(
        DIGEST_DATA_DIR=str(settings.data_dir),
        DIGEST_DATABASE_URL=settings.database_url,
        DIGEST_BASE_URL=settings.base_url,
        DIGEST_FROM_EMAIL=settings.from_email,
        DIGEST_SECRET_KEY=settings.secret_key.get_secret_value(),
        DIGEST_SMTP_HOST="127.0.0.1",
        DIGEST_SMTP_PORT=str(port),
        DIGEST_SMTP_CONNECTIONS="2",
        DIGEST_CONFIG=str(settings.data_dir / "absent.toml"),
    )
    code = "from digest.cli import main; main()"
    args = ["issue", "send", "--quiet", "--json", "--offline", "--force"]
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_sigterm_stops_the_command_cleanly_and_a_rerun_finishes_with_nobody_twice(
    settings: Settings, engine: Engine, server: Callable[[Scripted], int]
) -> None:
    emails = readers(engine, 200)
    bare_issue(engine, settings)
    handler = Scripted(delay=0.05)
    port = server(handler)

    first = sender_process(settings, port)
    deadline = time.monotonic() + 120  # a bound for a broken run, not a speed assertion
    while sum(handler.received.values()) < 10 and first.poll() is None:
        assert time.monotonic() < deadline, "the sender never got going"
        time.sleep(0.02)
    first.send_signal(signal.SIGTERM)
    out, err = first.communicate(timeout=120)

    assert first.returncode == 0, err
    report = json.loads(out)
    assert report["stopped"] is True and report["paused"] is None
    counts = states(engine)
    assert counts["sending"] == 0 and counts["queued"] > 0
    assert counts["sent"] == sum(handler.received.values()) == report["sent"]
    assert issue_status(engine) == "sending"

    handler.delay = 0.0
    second = sender_process(settings, port)
    out, err = second.communicate(timeout=300)

    assert second.returncode == 0, err
    assert json.loads(out)["stopped"] is False
    assert sorted(handler.received) == emails and set(handler.received.values()) == {1}
    assert states(engine) == Counter({"sent": 200})
    assert issue_status(engine) == "sent"


@pytest.mark.slow
def test_a_second_sigterm_aborts_and_the_next_run_reports_the_rows_in_flight_uncertain(
    settings: Settings, engine: Engine, server: Callable[[Scripted], int]
) -> None:
    readers(engine, 50)
    bare_issue(engine, settings)
    handler = Scripted()
    handler.release.clear()  # every message waits in DATA: the first signal cannot finish
    port = server(handler)

    first = sender_process(settings, port)
    deadline = time.monotonic() + 120  # a bound for a broken run, not a speed assertion
    while handler.started < 2 and first.poll() is None:
        assert time.monotonic() < deadline, "the sender never got going"
        time.sleep(0.02)
    first.send_signal(signal.SIGTERM)
    assert first.stderr is not None
    for line in first.stderr:  # the command says when it took the first signal
        if line.startswith("stopping"):
            break
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=120)
    handler.release.set()

    assert first.returncode == -signal.SIGTERM  # killed by the second signal
    assert states(engine)["sending"] == 2  # the two connections' messages in flight

    second = sender_process(settings, port)
    out, err = second.communicate(timeout=300)

    assert second.returncode == 0, err
    counts = states(engine)
    assert counts["uncertain"] == 2 and counts["sent"] == 48 and counts["sending"] == 0
    assert set(handler.received.values()) == {1}


def test_the_schedulers_stop_flag_ends_its_send_within_the_batch(
    settings: Settings, engine: Engine, server: Callable[[Scripted], int]
) -> None:
    s = built_issue(settings)
    with session_scope(engine) as session:
        issue = session.exec(select(Issue)).one()
        issue.status, issue.scheduled_for = IssueStatus.APPROVED, NOW - timedelta(minutes=1)
        session.add(issue)
    emails = readers(engine, 120)

    holder: list[Runner] = []

    def stop_after(total: int) -> None:
        if total == 15:
            holder[0].request_stop()  # what the runner's SIGTERM handler does

    handler = Scripted(delay=0.01, after_each=stop_after)
    s = s.model_copy(update={"smtp_port": server(handler), "smtp_connections": 2})
    runner = Runner(s, engine=engine, notifier=MemoryNotifier())
    runner.ctx.clock = lambda: NOW
    holder.append(runner)

    line = send_task(runner.ctx)

    assert "stopped for shutdown" in line
    counts = states(engine)
    assert counts["sending"] == 0 and counts["queued"] > 0
    assert counts["sent"] == sum(handler.received.values()) >= 15
    assert set(handler.received.values()) == {1}
    assert issue_status(engine) == "sending"

    runner.stop.clear()  # the next start of the scheduler
    send_task(runner.ctx)
    assert sorted(handler.received) == emails and set(handler.received.values()) == {1}
    assert issue_status(engine) == "sent"
