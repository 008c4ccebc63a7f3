"""The send loop over the delivery ledger, on SQLite and PostgreSQL, with the in-memory sender."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import dkim
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import select
from support_cli import run_cli

from digest import models
from digest.db import session_scope
from digest.errors import RelayUnavailable
from digest.models import Delivery, DeliveryStatus, Issue, IssueStatus, SubscriberStatus
from digest.send.commands import plan, run_send, send_test
from digest.send.dkim import generate_key, key_file, make_default
from digest.send.engine import SendPolicy, SendReport, deliver, enqueue_recipients
from digest.send.memory import MemorySender
from digest.settings import Settings
from digest.store import deliveries as ledger
from digest.store.suppressions import add_suppression
from digest.subscribers import consent
from digest.subscribers.lifecycle import add_confirmed

NOW = datetime(2017, 3, 17, 8, 0, tzinfo=UTC)
S = DeliveryStatus
FAST = SendPolicy(retry_base=0.01, retry_cap=0.05, wait_for_retries=5.0)
HTML = '<p>Hello %%NAME%%</p>\n<p>News</p>\n<a href="%%UNSUBSCRIBE_URL%%">unsubscribe</a>\n'
TEXT = "Hello %%NAME%%\n\nNews\n\nUnsubscribe: %%UNSUBSCRIBE_URL%%\n"


def add_people(engine: Engine, settings: Settings, n: int, *, start: int = 0) -> list[str]:
    emails = [f"reader{i:04d}@example.org" for i in range(start, start + n)]
    with session_scope(engine) as session:
        for i, email in enumerate(emails):
            add_confirmed(
                session,
                settings=settings,
                email=email,
                name=f"Reader {start + i}",
                evidence="test",
                source="test",
                now=NOW,
            )
    return emails


def add_issue(engine: Engine, settings: Settings, week: str = "2017-W11") -> Issue:
    with session_scope(engine) as session:
        issue = Issue(
            newsletter=settings.newsletter_id,
            week=week,
            subject="Five stories",
            html=HTML,
            text=TEXT,
            status=IssueStatus.APPROVED,
        )
        session.add(issue)
        session.flush()
        session.refresh(issue)
    return issue


def states(engine: Engine, issue_id: int) -> dict[str, str]:
    with session_scope(engine) as session:
        rows = session.exec(select(Delivery).where(Delivery.issue_id == issue_id)).all()
        return {r.email: str(r.status) for r in rows}


def send(
    engine: Engine,
    settings: Settings,
    issue: Issue,
    sender: MemorySender,
    policy: SendPolicy = FAST,
) -> SendReport:
    enqueue_recipients(engine, settings=settings, issue_id=issue.id or 0, now=NOW)
    return asyncio.run(
        deliver(engine, settings=settings, issue=issue, sender=sender, policy=policy)
    )


def test_it_sends_every_confirmed_subscriber_exactly_once(
    engine: Engine, settings: Settings
) -> None:
    emails = add_people(engine, settings, 25)
    issue = add_issue(engine, settings)
    sender = MemorySender()
    report = send(engine, settings, issue, sender)
    assert sorted(r[0] for _, r, _ in sender.sent) == emails
    assert report.sent == 25 and report.counts["sent"] == 25
    again = send(engine, settings, issue, sender)
    assert again.sent == 0 and len(sender.sent) == 25
    with session_scope(engine) as session:
        assert session.get(Issue, issue.id).status == IssueStatus.SENT  # type: ignore[union-attr]


def test_a_550_is_recorded_as_failed_permanent_with_code_and_text(
    engine: Engine, settings: Settings
) -> None:
    emails = add_people(engine, settings, 3)
    issue = add_issue(engine, settings)
    sender = MemorySender()
    sender.fail(emails[1], 550, "5.1.1 no such user")
    report = send(engine, settings, issue, sender)
    assert states(engine, issue.id or 0)[emails[1]] == "failed_permanent"
    with session_scope(engine) as session:
        row = session.exec(select(Delivery).where(Delivery.email == emails[1])).one()
        assert row.last_code == 550 and "5.1.1 no such user" in (row.last_error or "")
    assert report.sent == 2 and len(report.failed) == 1


def test_a_temporary_failure_is_retried_with_backoff_and_sent_once(
    engine: Engine, settings: Settings
) -> None:
    emails = add_people(engine, settings, 3)
    issue = add_issue(engine, settings)
    sender = MemorySender()
    sender.fail(emails[0], 451, "4.3.0 try later", times=2)
    send(engine, settings, issue, sender)
    assert len(sender.to(emails[0])) == 1
    with session_scope(engine) as session:
        row = session.exec(select(Delivery).where(Delivery.email == emails[0])).one()
        assert row.status == S.SENT and row.attempts == 3


def test_retries_stop_after_max_attempts_and_retry_failed_requeues(
    engine: Engine, settings: Settings
) -> None:
    emails = add_people(engine, settings, 2)
    issue = add_issue(engine, settings)
    sender = MemorySender()
    sender.fail(emails[0], 451, "busy", times=3)
    report = send(
        engine, settings, issue, sender, SendPolicy(max_attempts=3, retry_base=0.01, retry_cap=0.02)
    )
    assert states(engine, issue.id or 0)[emails[0]] == "failed_temporary"
    assert report.counts["failed_temporary"] == 1
    with session_scope(engine) as session:
        assert (
            ledger.requeue(
                session, issue_id=issue.id or 0, statuses=[S.FAILED_TEMPORARY], reset_attempts=True
            )
            == 1
        )
    send(engine, settings, issue, sender)
    assert states(engine, issue.id or 0)[emails[0]] == "sent"
    assert len(sender.to(emails[0])) == 1


def test_a_failed_ledger_commit_hands_nothing_over_and_a_rerun_sends_each_once(
    engine: Engine, settings: Settings
) -> None:
    # Rows go out to the workers before their round commits; only the handover waits. A
    # commit that fails must leave nothing handed over that the ledger does not hold.
    emails = add_people(engine, settings, 30)
    issue = add_issue(engine, settings)
    enqueue_recipients(engine, settings=settings, issue_id=issue.id or 0, now=NOW)
    sender = MemorySender()
    commits = 0

    def fail_the_third(connection: Any) -> None:
        nonlocal commits
        commits += 1
        if commits == 3:
            raise RuntimeError("disk full (injected at the third ledger commit)")

    sa.event.listen(engine, "commit", fail_the_third)
    try:
        with pytest.raises(RuntimeError, match="disk full"):
            asyncio.run(deliver(engine, settings=settings, issue=issue, sender=sender, policy=FAST))
    finally:
        sa.event.remove(engine, "commit", fail_the_third)
    after_failure = states(engine, issue.id or 0)
    handed = [rcpts[0] for _, rcpts, _ in sender.sent]
    assert handed, "the first rounds committed and their messages went out"
    assert all(after_failure[e] in ("sent", "sending") for e in handed), after_failure
    assert "queued" in after_failure.values()  # the failed round's rows were not handed over

    asyncio.run(deliver(engine, settings=settings, issue=issue, sender=sender, policy=FAST))
    final = states(engine, issue.id or 0)
    copies = {e: len(sender.to(e)) for e in emails}
    assert all(n <= 1 for n in copies.values()), copies
    open_rows = [e for e in emails if final[e] != "sent"]
    # Only rows whose outcome the failed round lost stay open (uncertain after a restart).
    assert all(final[e] == "sending" for e in open_rows)
    assert len(open_rows) <= settings.smtp_connections
    assert all(copies[e] == 1 for e in emails if final[e] == "sent")


@pytest.mark.parametrize("retries", [False, True])
def test_a_claim_walks_the_claim_index_instead_of_scanning_the_issue(
    engine: Engine, retries: bool
) -> None:
    # A claim runs every round: if it scanned and sorted the issue's rows, a long send would
    # slow down as it went (this is how the single OR-ed claim behaved on SQLite).
    if engine.dialect.name != "sqlite":
        pytest.skip("reads SQLite's EXPLAIN QUERY PLAN")
    compiled = ledger._claim_statement(postgres=False, retries=retries).compile(
        dialect=engine.dialect
    )
    values = {"p_issue_id": 1, "p_limit": 8, "p_now": "2017-03-17 08:00:00", "p_worker": "w",
              "p_max_attempts": 5}  # fmt: skip
    bound = compiled.construct_params(values)
    params = tuple(bound[name] for name in compiled.positiontup or ())
    with engine.connect() as connection:
        plan = " | ".join(
            str(row[-1])
            for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", params)
        )
    assert "ix_delivery_claim" in plan, plan
    assert "TEMP B-TREE" not in plan, plan


def test_consent_is_rechecked_right_before_sending(engine: Engine, settings: Settings) -> None:
    emails = add_people(engine, settings, 3)
    issue = add_issue(engine, settings)
    enqueue_recipients(engine, settings=settings, issue_id=issue.id or 0, now=NOW)
    with session_scope(engine) as session:
        from digest.store.subscribers import subscriber_by_email

        gone = subscriber_by_email(session, emails[0])
        assert gone is not None
        consent.transition(
            session,
            gone,
            SubscriberStatus.UNSUBSCRIBED,
            source="test",
            now=NOW,
            list_id=settings.newsletter_id,
        )
        add_suppression(
            session,
            email_hash=consent.email_hash(emails[1]),
            scope="global",
            reason="complaint",
            now=NOW,
        )
    sender = MemorySender()
    report = send(engine, settings, issue, sender)
    assert [r[0] for _, r, _ in sender.sent] == [emails[2]]
    assert states(engine, issue.id or 0)[emails[0]] == "skipped"
    assert states(engine, issue.id or 0)[emails[1]] == "skipped"
    assert {e for e, _ in report.skipped} == {emails[0], emails[1]}


def test_rows_left_sending_by_a_dead_worker_become_uncertain_and_are_not_resent(
    engine: Engine, settings: Settings
) -> None:
    emails = add_people(engine, settings, 4)
    issue = add_issue(engine, settings)
    enqueue_recipients(engine, settings=settings, issue_id=issue.id or 0, now=NOW)
    import socket

    dead = f"{socket.gethostname()}:999999999:dead"
    alive = f"{socket.gethostname()}:{os.getppid()}:alive"
    with session_scope(engine) as session:
        for email, worker in ((emails[0], dead), (emails[1], alive)):
            session.execute(
                sa.update(Delivery)
                .where(Delivery.email == email)  # type: ignore[arg-type]
                .values(status="sending", worker=worker, claimed_at=NOW)
            )
    sender = MemorySender()
    report = asyncio.run(
        deliver(engine, settings=settings, issue=issue, sender=sender, policy=FAST)
    )
    got = states(engine, issue.id or 0)
    assert got[emails[0]] == "uncertain" and got[emails[1]] == "sending"
    assert sorted(r[0] for _, r, _ in sender.sent) == emails[2:]
    assert report.uncertain == 1
    again = asyncio.run(
        deliver(
            engine,
            settings=settings,
            issue=issue,
            sender=sender,
            policy=SendPolicy(resend_uncertain=True),
        )
    )
    assert again.resent_uncertain == 1 and len(sender.to(emails[0])) == 1


def test_a_dead_relay_pauses_the_send_and_keeps_rows_queued(
    engine: Engine, settings: Settings
) -> None:
    add_people(engine, settings, 5)
    issue = add_issue(engine, settings)
    report = send(engine, settings, issue, MemorySender(down=True))
    assert report.paused and "down" in report.paused
    assert set(states(engine, issue.id or 0).values()) == {"queued"}
    assert report.sent == 0 and not report.failed


def test_messages_are_dkim_signed_with_the_keygen_default(
    engine: Engine, settings: Settings
) -> None:
    add_people(engine, settings, 2)
    issue = add_issue(engine, settings)
    path = key_file(settings.data_dir, selector="s1", domain="news.example.org")
    txt = generate_key(path=path)
    make_default(data_dir=settings.data_dir, selector="s1", domain="news.example.org", key=path)
    sender = MemorySender()
    send(engine, settings, issue, sender)
    table = {b"s1._domainkey.news.example.org.": txt.encode()}
    for _, _, message in sender.sent:
        assert dkim.verify(message, dnsfunc=lambda n, timeout=5: table.get(n))


def test_the_dry_run_plan_names_who_is_skipped_and_why(engine: Engine, settings: Settings) -> None:
    emails = add_people(engine, settings, 2)
    issue = add_issue(engine, settings)
    with session_scope(engine) as session:
        add_suppression(
            session,
            email_hash=consent.email_hash(emails[0]),
            scope="global",
            reason="hard_bounce",
            now=NOW,
        )
    rows = {r.email: r for r in plan(engine, settings=settings, issue_id=issue.id or 0)}
    assert rows[emails[0]].send is False and "suppressed" in rows[emails[0]].reason
    assert rows[emails[1]].send is True
    assert states(engine, issue.id or 0) == {}


def test_a_test_copy_touches_no_ledger_row(engine: Engine, settings: Settings) -> None:
    add_people(engine, settings, 2)
    issue = add_issue(engine, settings)
    sender = MemorySender()
    asyncio.run(
        send_test(
            engine,
            settings=settings,
            issue=issue,
            address="Editor@Example.com",
            sender=sender,
            now=NOW,
        )
    )
    assert [r for _, r, _ in sender.sent] == [("editor@example.com",)]
    assert states(engine, issue.id or 0) == {}
    with session_scope(engine) as session:
        assert session.exec(select(models.TestSend)).one().email == "editor@example.com"


def test_run_send_enqueues_sends_and_reports_counts(settings: Settings, engine: Engine) -> None:
    add_people(engine, settings, 4)
    add_issue(engine, settings)
    report = run_send(settings=settings, now=NOW, sender=MemorySender(), policy=FAST)
    assert report.enqueued == 4 and report.sent == 4
    with session_scope(engine) as session:
        rate = ledger.rate(session, issue_id=1, now=datetime.now(UTC) + timedelta(seconds=1))
    assert rate.last_minute == 4


def test_the_batched_eligibility_agrees_with_may_receive(
    engine: Engine, settings: Settings
) -> None:
    from digest.models import Subscriber
    from digest.subscribers.consent import may_receive

    emails = add_people(engine, settings, 6)
    with session_scope(engine) as session:
        from digest.store.subscribers import subscriber_by_email

        people = [subscriber_by_email(session, e) for e in emails]
        assert all(p is not None for p in people)
        people[1].paused = True  # type: ignore[union-attr]
        people[2].erased_at = NOW  # type: ignore[union-attr]
        consent.transition(session, people[3], SubscriberStatus.UNSUBSCRIBED, source="test",  # type: ignore[arg-type]
                           now=NOW, list_id=settings.newsletter_id)  # fmt: skip
        add_suppression(session, email_hash=consent.email_hash(emails[4]), scope="global",
                        reason="complaint", now=NOW)  # fmt: skip
        add_suppression(session, email_hash=consent.email_hash(emails[5]),
                        scope=settings.newsletter_id, reason="hard_bounce", now=NOW)  # fmt: skip
        for p in people:
            session.add(p)
    with session_scope(engine) as session:
        subs = session.exec(select(Subscriber)).all()
        ok = ledger.eligible_names(
            session, subscriber_ids=[s.id or 0 for s in subs], newsletter=settings.newsletter_id
        )
        verdicts = {
            s.email: (
                s.id in ok,
                may_receive(session, s, newsletter=settings.newsletter_id) is None,
            )
            for s in subs
        }
    assert all(batch == single for batch, single in verdicts.values()), verdicts
    assert [e for e, (batch, _) in verdicts.items() if batch] == [emails[0]]


# --- the commands -------------------------------------------------------------------------------


def test_the_commands_send_report_and_retry(
    engine: Engine, settings: Settings, smtp_sink: Any
) -> None:
    import json

    emails = add_people(engine, settings, 3)
    add_issue(engine, settings)
    plan_out = run_cli(settings, "issue", "send", "--dry-run", "--json")
    assert plan_out.exit_code == 0, plan_out.output
    assert json.loads(plan_out.stdout)["would_send"] == emails
    assert smtp_sink.messages == []

    port = str(smtp_sink.port)
    sent = run_cli(
        settings,
        "issue",
        "send",
        "--quiet",
        "--json",
        "--force",
        "--offline",
        DIGEST_SMTP_PORT=port,
    )
    assert sent.exit_code == 0, sent.output
    assert json.loads(sent.stdout)["counts"]["sent"] == 3
    assert sorted(smtp_sink.recipients()) == emails

    status = run_cli(settings, "issue", "status", "--json")
    assert json.loads(status.stdout)["counts"]["sent"] == 3
    retry = run_cli(settings, "issue", "retry-failed")
    assert retry.exit_code == 0 and "0 deliveries queued again" in retry.stdout


def test_keygen_prints_one_txt_line_and_becomes_the_default(settings: Settings) -> None:
    result = run_cli(settings, "dkim", "keygen", "--selector", "s9", "--domain", "News.Example.org")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("v=DKIM1; k=rsa; p=")
    from digest.send.dkim import DkimSigner

    signer = DkimSigner.from_settings(settings)
    assert signer is not None and (signer.domain, signer.selector) == ("news.example.org", "s9")


def test_a_dead_relay_makes_the_command_fail_with_one_clear_line(
    engine: Engine, settings: Settings
) -> None:
    import socket as sock

    add_people(engine, settings, 2)
    add_issue(engine, settings)
    with sock.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    result = run_cli(
        settings, "issue", "send", "--quiet", "--force", "--offline", DIGEST_SMTP_PORT=port
    )
    assert result.exit_code != 0
    assert isinstance(result.exception, RelayUnavailable)
    assert f"127.0.0.1:{port}" in str(result.exception)
    # The summary says what happened; the reason comes once, in the error line.
    assert "0 sent now" in result.stdout and "cannot be reached" not in result.stdout
    assert str(result.exception).endswith("run `digest issue send` again to resume")

    # A test copy has nothing to resume: the advice is the relay settings alone.
    copy = run_cli(
        settings, "issue", "send", "--test-to", "me@example.org", "--force", "--offline",
        DIGEST_SMTP_PORT=port,
    )  # fmt: skip
    assert isinstance(copy.exception, RelayUnavailable)
    assert str(copy.exception).endswith("check DIGEST_SMTP_HOST/DIGEST_SMTP_PORT/DIGEST_SMTP_TLS")


def test_a_send_refused_before_it_starts_prints_only_its_error(
    engine: Engine, settings: Settings
) -> None:
    add_issue(engine, settings)
    result = run_cli(settings, "issue", "send", "2099-W01")
    assert result.exit_code != 0
    assert "no issue '2099-W01'" in str(result.exception)
    assert result.stdout == ""  # no empty progress bar drawn before the refusal


def test_verp_envelope_senders_map_back_to_their_delivery(
    engine: Engine, settings: Settings
) -> None:
    from digest.bounces.verp import delivery_id_from_token

    add_people(engine, settings, 3)
    issue = add_issue(engine, settings)
    cfg = settings.model_copy(update={"verp_domain": "bounces.news.example.org"})
    sender = MemorySender()
    send(engine, cfg, issue, sender)
    with session_scope(engine) as session:
        ids = {d.email: d.id for d in session.exec(select(Delivery)).all()}
    for envelope_from, (to,), _ in sender.sent:
        local, _, domain = envelope_from.partition("@")
        assert domain == "bounces.news.example.org" and local.startswith("bounces+")
        token = local.removeprefix("bounces+")
        assert delivery_id_from_token(token, secret=cfg.secret()) == ids[to]


def test_a_throttled_message_waits_for_the_pause_without_using_an_attempt(
    engine: Engine, settings: Settings
) -> None:
    emails = add_people(engine, settings, 3)
    issue = add_issue(engine, settings)
    sender = MemorySender()
    sender.throttle(emails[1], pause=0.2)
    report = send(engine, settings, issue, sender)
    assert report.sent == 3 and len(sender.to(emails[1])) == 1
    with session_scope(engine) as session:
        row = session.exec(select(Delivery).where(Delivery.email == emails[1])).one()
    assert row.attempts == 1 and row.status == S.SENT  # the throttled try did not count
