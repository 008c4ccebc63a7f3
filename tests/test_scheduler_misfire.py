"""Missed runs, deadlines and restarts, with a controlled clock and a real SMTP sink."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import SmtpSink
from scheduler_support import (  # noqa: F401 (the autouse fixture)
    LONDON,
    MONDAY,
    READERS,
    SEND,
    WEEK,
    Clock,
    add_subscribers,
    add_week_of_articles,
    at,
    context,
    dispose_pipeline_engines,
    issues,
    prepared,
    received,
)
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from digest.db import session_scope
from digest.demo import demo_settings
from digest.errors import StateError
from digest.models import Delivery, DeliveryStatus, IssueStatus
from digest.settings import Settings
from digest.store import schedule as store
from jobs import tasks
from jobs.scheduler import start_up_runs

BUILD = datetime(2026, 11, 27, 6, tzinfo=LONDON)  # Friday, GMT


def test_a_machine_back_within_the_grace_sends_on_start_up(
    settings: Settings, engine: Engine, smtp_sink: SmtpSink
) -> None:
    s = prepared(settings, smtp_sink)
    clock = Clock(BUILD)
    ctx, notifier = context(s, clock=clock, engine=engine)
    with at(clock, BUILD):
        assert "scheduled to send" in tasks.build(ctx)
    # Off from 07:00; back at 08:40. Start-up runs the store-driven jobs at once.
    back = SEND + timedelta(minutes=40)
    runs = start_up_runs(s, now=back)
    assert runs["send"] == back and runs["build"] == back
    with at(clock, back):
        assert tasks.build(ctx) == f"issue {WEEK} is already approved"
        assert "3 sent now" in tasks.send(ctx)
    (issue,) = issues(ctx.engine)
    assert issue.status == IssueStatus.SENT
    assert len(received(smtp_sink.messages)) == 3
    assert notifier.told == []


def test_a_machine_off_all_friday_morning_builds_late_and_sends_before_the_deadline(
    settings: Settings, engine: Engine, smtp_sink: SmtpSink
) -> None:
    s = prepared(settings, smtp_sink)
    clock = Clock(BUILD)
    ctx, _ = context(s, clock=clock, engine=engine)
    back = SEND + timedelta(hours=3)  # past the grace, inside the 24 h deadline
    with at(clock, back):
        outcome = tasks.build(ctx)
        assert "scheduled to send now (late); issue 2026-W48: 3 sent now" in outcome
        assert tasks.send(ctx) == "nothing due to send"
    assert [i.status for i in issues(ctx.engine)] == [IssueStatus.SENT]


def test_a_send_not_started_by_its_deadline_is_marked_missed_and_the_operator_told(
    settings: Settings, engine: Engine, smtp_sink: SmtpSink
) -> None:
    s = prepared(settings, smtp_sink)
    clock = Clock(BUILD)
    ctx, notifier = context(s, clock=clock, engine=engine)
    with at(clock, BUILD):
        tasks.build(ctx)
    back = SEND + timedelta(hours=24, minutes=1)  # Saturday 08:01: one minute past the deadline
    with at(clock, back):
        assert tasks.build(ctx) == "nothing to build: the next build time has not come"
        outcome = tasks.send(ctx)
        assert outcome == f"issue {WEEK} missed its send deadline: marked missed, operator told"
        assert tasks.send(ctx) == "nothing due to send"  # told once, sent never
    assert [i.status for i in issues(ctx.engine)] == [IssueStatus.MISSED]
    assert smtp_sink.messages == []
    ((subject, body),) = notifier.told
    assert subject == f"the issue for {WEEK} was NOT sent: its deadline passed"
    assert f"digest issue schedule {WEEK} --at now" in body

    # Sending it anyway is the operator's explicit decision.
    with at(clock, back + timedelta(minutes=10)), session_scope(ctx.engine) as session:
        store.approve(session, newsletter=s.newsletter_id, ref=WEEK, at=clock.now)
    with at(clock, back + timedelta(minutes=10)):
        assert "3 sent now" in tasks.send(ctx)


def test_the_operator_is_mailed_when_the_deadline_passes(
    settings: Settings, engine: Engine, smtp_sink: SmtpSink
) -> None:
    from jobs.notify import MailNotifier

    s = prepared(settings, smtp_sink, operator_email="editor@news.example.org")
    clock = Clock(BUILD)
    ctx, _ = context(s, clock=clock, engine=engine)
    ctx.notifier = MailNotifier(s)
    with at(clock, BUILD):
        tasks.build(ctx)
    with at(clock, SEND + timedelta(days=2)):
        tasks.send(ctx)
    ((_from, rcpts, data),) = smtp_sink.messages
    assert rcpts == ["editor@news.example.org"]
    assert b"was NOT sent: its deadline passed" in data


def test_a_week_with_no_issue_by_its_deadline_is_recorded_once(
    settings: Settings, engine: Engine, smtp_sink: SmtpSink
) -> None:
    s = settings.model_copy(update={"smtp_port": smtp_sink.port})
    clock = Clock(SEND)
    ctx, notifier = context(s, clock=clock, engine=engine)
    just_after = SEND + timedelta(hours=24, minutes=5)
    with at(clock, just_after):
        assert "recorded missed, operator told" in tasks.send(ctx)
        assert tasks.send(ctx) == "nothing due to send"
    with at(clock, just_after + timedelta(days=3)):
        assert tasks.send(ctx) == "nothing due to send"
    assert [(i.week, i.status) for i in issues(ctx.engine)] == [(WEEK, IssueStatus.MISSED)]
    assert [subject for subject, _ in notifier.told] == [f"no issue went out for {WEEK}"]


def test_without_auto_send_the_draft_waits_for_approval(
    settings: Settings, engine: Engine, smtp_sink: SmtpSink
) -> None:
    s = prepared(settings, smtp_sink, auto_send=False)
    clock = Clock(BUILD)
    ctx, notifier = context(s, clock=clock, engine=engine)
    with at(clock, BUILD):
        assert tasks.build(ctx).endswith("draft awaits approval (digest issue approve)")
    with at(clock, BUILD + timedelta(minutes=30)):
        tasks.build(ctx)  # a restart: the draft is neither rebuilt nor announced again
    with at(clock, SEND):
        assert tasks.send(ctx) == "nothing due to send"
    assert [subject for subject, _ in notifier.told] == [
        f"the draft for {WEEK} awaits your approval"
    ]
    with at(clock, SEND + timedelta(minutes=20)), session_scope(ctx.engine) as session:
        store.approve(session, newsletter=s.newsletter_id, ref=WEEK, at=clock.now)
    with at(clock, SEND + timedelta(minutes=25)):
        assert "3 sent now" in tasks.send(ctx)


def test_a_cancelled_issue_is_not_sent(
    settings: Settings, engine: Engine, smtp_sink: SmtpSink
) -> None:
    s = prepared(settings, smtp_sink)
    clock = Clock(BUILD)
    ctx, _ = context(s, clock=clock, engine=engine)
    with at(clock, BUILD):
        tasks.build(ctx)
    with session_scope(ctx.engine) as session:
        assert store.cancel(session, newsletter=s.newsletter_id, ref=WEEK).status == "cancelled"
    with at(clock, SEND):
        assert tasks.send(ctx) == "nothing due to send"
    assert smtp_sink.messages == []


def test_an_issue_already_sending_cannot_be_cancelled(
    settings: Settings, engine: Engine, smtp_sink: SmtpSink
) -> None:
    s = prepared(settings, smtp_sink)
    clock = Clock(BUILD)
    ctx, _ = context(s, clock=clock, engine=engine)
    with at(clock, BUILD):
        tasks.build(ctx)
    (issue,) = issues(ctx.engine)
    assert issue.id is not None
    with session_scope(ctx.engine) as session:
        assert not store.claim_send(session, issue_id=issue.id, now=BUILD)  # not due yet
        assert store.claim_send(session, issue_id=issue.id, now=SEND)
        assert not store.claim_send(session, issue_id=issue.id, now=SEND)  # only once
    refused = pytest.raises(StateError, match="is sending; only a draft or approved issue")
    with refused, session_scope(ctx.engine) as session:
        store.cancel(session, newsletter=s.newsletter_id, ref=WEEK)


# The first scheduler process: sends through a real SMTP connection per message and dies
# (os._exit, no clean-up at all) right after the relay accepted its n-th message, before the
# ledger could record it.
DIES_MID_SEND = """
import os, sys
from datetime import datetime
import aiosmtplib, time_machine
from digest.db import make_engine
from digest.settings import load_settings
from jobs import tasks
from jobs.notify import MemoryNotifier

port, n, when = int(sys.argv[1]), int(sys.argv[2]), datetime.fromisoformat(sys.argv[3])

class DiesAfter:
    count = 0
    async def ready(self): return None
    async def aclose(self): return None
    async def send(self, *, envelope_from, recipients, message, handover_after=None):
        if handover_after is not None:
            await handover_after
        await aiosmtplib.send(message, sender=envelope_from, recipients=list(recipients),
                              hostname="127.0.0.1", port=port, start_tls=False)
        self.count += 1
        if self.count == n:
            os._exit(17)

settings = load_settings()
with time_machine.travel(when, tick=False):
    ctx = tasks.TaskContext(settings=settings, engine=make_engine(settings),
                            notifier=MemoryNotifier(), clock=lambda: when, sender=DiesAfter())
    print(tasks.send(ctx))
"""


def env_for(settings: Settings, tmp_path: Path) -> dict[str, str]:
    values = {
        "data_dir": str(settings.data_dir), "database_url": settings.db_url,
        "timezone": settings.timezone, "base_url": settings.base_url,
        "from_email": settings.from_email, "smtp_port": str(settings.smtp_port),
        "smtp_connections": str(settings.smtp_connections),
        "min_stories": str(settings.min_stories),
        "secret_key": settings.secret_key.get_secret_value(),
        "dkim_domain": settings.dkim_domain, "dkim_selector": settings.dkim_selector,
        "dkim_private_key": str(settings.dkim_private_key or ""),
    }  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update({f"DIGEST_{k.upper()}": v for k, v in values.items()})
    env["DIGEST_CONFIG"] = str(tmp_path / "absent.toml")
    return env


@pytest.mark.slow
def test_a_restart_in_the_middle_of_a_send_finishes_it_without_duplicates(
    settings: Settings, engine: Engine, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    # 130 readers, one connection: the process dies right after the relay accepted the 100th.
    readers = [f"reader{n:03d}@example.net" for n in range(130)]
    s = settings.model_copy(
        update={"smtp_port": smtp_sink.port, "min_stories": 3, "smtp_connections": 1}
    )
    s = demo_settings(s)  # signed: the pre-send check refuses unsigned mail
    with at(Clock(MONDAY), MONDAY):
        add_subscribers(s, readers, now=MONDAY)
        add_week_of_articles(s, week=WEEK, now=MONDAY)
    clock = Clock(BUILD)
    ctx, _ = context(s, clock=clock, engine=engine)
    with at(clock, BUILD):
        tasks.build(ctx)
    first = subprocess.run(
        [sys.executable, "-c", DIES_MID_SEND, str(smtp_sink.port), "100", SEND.isoformat()],
        env=env_for(s, tmp_path), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert first.returncode == 17, first.stderr
    assert len(smtp_sink.messages) == 100
    assert [i.status for i in issues(engine)] == [IssueStatus.SENDING]

    # The next start, a quarter of an hour later, in this process with the real SMTP pool.
    later = SEND + timedelta(minutes=15)
    ctx2, _ = context(s, clock=Clock(later), engine=engine)
    with at(ctx2.clock, later):  # type: ignore[arg-type]
        outcome = tasks.send(ctx2)
    assert "30 sent now" in outcome and "1 uncertain" in outcome, outcome
    counts = received(smtp_sink.messages)
    assert len(counts) == 130 and set(counts.values()) == {1}  # everyone once, nobody twice
    with Session(engine) as session:
        rows = session.exec(select(Delivery)).all()
    by_status = {st: sum(r.status == st for r in rows) for st in DeliveryStatus}
    # The one message the relay took just before the crash is reported, not resent.
    assert by_status[DeliveryStatus.SENT] == 129 and by_status[DeliveryStatus.UNCERTAIN] == 1
    assert [i.status for i in issues(engine)] == [IssueStatus.SENT]
