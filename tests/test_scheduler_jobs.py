"""The smaller jobs (bounces, pending expiry, pruning, ingest) and the issue schedule commands."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import SmtpSink
from scheduler_support import (  # noqa: F401 (the autouse fixture)
    Clock,
    add_subscribers,
    add_week_of_articles,
    at,
    context,
    dispose_pipeline_engines,
    issues,
)
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from digest.bounces.sources import Incoming, MemoryMailbox
from digest.db import session_scope
from digest.models import (
    Article,
    ConsentEvent,
    Issue,
    IssueStatus,
    Source,
    SourceKind,
    Subscriber,
    SubscriberStatus,
)
from digest.settings import Settings
from digest.subscribers import consent
from jobs import tasks

NOW = datetime(2026, 11, 25, 3, tzinfo=UTC)


def bounce_for(recipient: str) -> bytes:
    """A delivery status notification (RFC 3464) written for this test."""
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"
        "To: digest@news.example.org\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn-1@mx.example.net>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n'
        "\r\n--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n"
        "\r\n--B--\r\n"
    ).encode()


def test_the_bounce_job_says_so_when_no_mailbox_is_configured(
    settings: Settings, engine: Engine
) -> None:
    ctx, _ = context(settings, clock=Clock(NOW), engine=engine)
    assert tasks.bounces(ctx) == "no bounce mailbox configured (IMAP_HOST is empty)"


def test_the_bounce_job_suppresses_a_hard_bounce_and_moves_the_report(
    settings: Settings, engine: Engine
) -> None:
    add_subscribers(settings, ["gone@example.net"], now=NOW)
    box = MemoryMailbox(inbox=[Incoming("dsn-1", bounce_for("gone@example.net"), uid="1")])
    ctx, _ = context(settings, clock=Clock(NOW), engine=engine)
    ctx.mailbox = box  # the in-memory twin of the IMAP mailbox
    assert tasks.bounces(ctx) == "1 message(s) read, 1 bounced recipient(s)"
    assert box.inbox == [] and [m.uid for m in box.done] == ["1"]
    with Session(engine) as session:
        (subscriber,) = session.exec(select(Subscriber)).all()
    assert subscriber.status == SubscriberStatus.BOUNCED
    assert tasks.bounces(ctx) == "0 message(s) read, 0 bounced recipient(s)"


def pending(settings: Settings, engine: Engine, address: str, *, created: datetime) -> None:
    with session_scope(engine) as session:
        consent.transition(
            session, Subscriber(email=address), SubscriberStatus.PENDING, source="web",
            now=created, list_id=settings.newsletter_id,
        )  # fmt: skip


def test_pending_subscriptions_expire_after_thirty_days_with_a_consent_event(
    settings: Settings, engine: Engine
) -> None:
    pending(settings, engine, "old@example.net", created=NOW - timedelta(days=31))
    pending(settings, engine, "new@example.net", created=NOW - timedelta(days=29))
    ctx, _ = context(settings, clock=Clock(NOW), engine=engine)
    assert tasks.expire_pending(ctx) == "1 pending subscription(s) expired"
    assert tasks.expire_pending(ctx) == "0 pending subscription(s) expired"
    with Session(engine) as session:
        status = {s.email: s.status for s in session.exec(select(Subscriber))}
        events = session.exec(select(ConsentEvent).where(ConsentEvent.source == "expiry")).all()
    assert status == {
        "old@example.net": SubscriberStatus.UNSUBSCRIBED,
        "new@example.net": SubscriberStatus.PENDING,
    }
    assert [(e.from_status, e.to_status) for e in events] == [("pending", "unsubscribed")]


def test_pruning_removes_only_raw_files_past_the_retention(
    settings: Settings, engine: Engine
) -> None:
    ctx, _ = context(settings, clock=Clock(NOW), engine=engine)
    assert tasks.prune(ctx) == "no raw data kept (DATA_DIR/raw does not exist)"
    raw = settings.data_dir / "raw" / "feeds"
    raw.mkdir(parents=True)
    old, fresh = raw / "old.html", raw / "fresh.html"
    for path, age in ((old, 91), (fresh, 89)):
        path.write_text("<html></html>")
        stamp = (NOW - timedelta(days=age)).timestamp()
        os.utime(path, (stamp, stamp))
    assert tasks.prune(ctx) == "1 raw file(s) older than 90 days removed"
    assert (old.exists(), fresh.exists()) == (False, True)


PAGE = """<html><head><title>Harbour council backs ferry plan</title></head><body><article>
<h1>Harbour council backs ferry plan</h1>
<p>The harbour council voted on Tuesday to back a new ferry plan for the east dock, after a long
debate about tide tables and crane repairs.</p>
<p>Residents asked how the timetable would change during winter storms, and the council promised
a public meeting in the library next month.</p>
<p>The plan now goes to the regional transport board, which meets again in the spring to decide
on funding for the first two boats.</p></article></body></html>"""


def test_the_ingest_job_reads_each_source_when_its_own_interval_has_passed(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    page = tmp_path / "harbour.html"
    page.write_text(PAGE)
    with session_scope(engine) as session:
        session.add(Source(name="Harbour Gazette", kind=SourceKind.PAGE, location=str(page),
                           interval_minutes=30))  # fmt: skip
    clock = Clock(NOW)
    ctx, _ = context(settings, clock=clock, engine=engine)
    with at(clock, NOW):
        assert tasks.ingest(ctx).startswith("1 source(s) polled (0 unchanged), 1 new")
    with Session(engine) as session:
        harbour = session.exec(select(Source).where(Source.name == "Harbour Gazette")).one()
        assert harbour.last_success_at == NOW and harbour.consecutive_failures == 0
        assert session.exec(select(Article)).one().source_name == "Harbour Gazette"
    with at(clock, NOW + timedelta(minutes=29)):
        assert tasks.ingest(ctx).startswith("0 source(s) polled")  # not due yet
    page.unlink()
    with at(clock, NOW + timedelta(minutes=31)):
        assert "1 failed: Harbour Gazette" in tasks.ingest(ctx)
    with Session(engine) as session:
        harbour = session.exec(select(Source).where(Source.name == "Harbour Gazette")).one()
        assert harbour.consecutive_failures == 1 and harbour.last_error


def cli(args: list[str], settings: Settings, monkeypatch: pytest.MonkeyPatch) -> str:
    from digest.cli import app

    monkeypatch.setenv("DIGEST_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("DIGEST_DATABASE_URL", settings.db_url)
    monkeypatch.setenv("DIGEST_TIMEZONE", settings.timezone)
    monkeypatch.setenv("DIGEST_CONFIG", str(settings.data_dir / "absent.toml"))
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def test_issue_approve_schedule_and_cancel_from_the_command_line(
    settings: Settings, engine: Engine, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = settings.model_copy(update={"min_stories": 3, "auto_send": False})
    monday = datetime(2026, 11, 23, 9, tzinfo=s.zone)
    add_week_of_articles(s, week="2026-W48", now=monday)
    clock = Clock(datetime(2026, 11, 27, 6, tzinfo=s.zone))
    ctx, _ = context(s, clock=clock, engine=engine)
    with at(clock, clock.now):
        tasks.build(ctx)
        out = cli(["issue", "approve", "2026-W48"], s, monkeypatch)
    assert out.strip() == "issue 2026-W48: approved (approved, sends Fri 2026-11-27 08:00 GMT)"
    with at(clock, clock.now):
        out = cli(["issue", "schedule", "2026-W48", "--at", "2026-11-27T09:30"], s, monkeypatch)
    assert "sends Fri 2026-11-27 09:30 GMT" in out
    (issue,) = issues(engine)
    assert issue.scheduled_for == datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
    out = cli(["issue", "cancel", "2026-W48"], s, monkeypatch)
    assert out.strip() == "issue 2026-W48: cancelled (cancelled)"
    assert [i.status for i in issues(engine)] == [IssueStatus.CANCELLED]


def test_cancelling_a_sent_issue_is_one_clear_line(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    import subprocess
    import sys

    with session_scope(engine) as session:
        session.add(
            Issue(newsletter=settings.newsletter_id, week="2026-W47", status=IssueStatus.SENT)
        )
    env = {
        **os.environ,
        "DIGEST_DATA_DIR": str(settings.data_dir),
        "DIGEST_DATABASE_URL": settings.db_url,
        "DIGEST_CONFIG": str(tmp_path / "absent.toml"),
    }
    done = subprocess.run(
        [sys.executable, "-c", "from digest.cli import main; main()"]
        + ["issue", "cancel", "2026-W47"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: the issue for 2026-W47 is sent; only a draft or approved issue can be cancelled"
    )


def test_jobs_run_runs_one_job_once(
    settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = cli(["jobs", "run", "prune"], settings, monkeypatch)
    assert out.strip() == "prune: no raw data kept (DATA_DIR/raw does not exist)"
    assert json.loads(cli(["jobs", "list", "--json"], settings, monkeypatch))[0]["id"] == "ingest"
