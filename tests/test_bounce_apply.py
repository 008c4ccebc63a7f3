"""Applying bounces to the store: suppress hard and complaints, count soft, never suppress for
policy, pause on too many policy rejections; real database (SQLite, and PostgreSQL when set)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from digest.bounces.apply import pause_reason, process, record_smtp_rejection
from digest.bounces.sources import Incoming
from digest.bounces.verp import delivery_id_from_token, verp_token
from digest.db import session_scope
from digest.models import (
    Bounce,
    ConsentEvent,
    Delivery,
    DeliveryStatus,
    Issue,
    Subscriber,
    SubscriberStatus,
)
from digest.settings import Settings
from digest.subscribers import consent

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def seed(engine: Engine, emails: list[str], *, week: str = "2026-W47") -> dict[str, Delivery]:
    """One issue and a sent delivery (with a Message-ID) to each address; addresses that are
    not subscribers yet become confirmed subscribers first."""
    with session_scope(engine) as session:
        issue = Issue(newsletter="friday", week=week, subject="This week")
        session.add(issue)
        session.flush()
        deliveries: dict[str, Delivery] = {}
        for n, email in enumerate(emails):
            sub = session.exec(select(Subscriber).where(Subscriber.email == email)).first()
            if sub is None:
                sub = Subscriber(email=email)
                consent.transition(session, sub, SubscriberStatus.CONFIRMED, source="import",
                                   now=NOW, evidence="test fixture", list_id="friday")  # fmt: skip
            delivery = Delivery(
                issue_id=issue.id or 0,
                subscriber_id=sub.id or 0,
                email=email,
                status=DeliveryStatus.SENT,
                message_id=f"<{week}.{n}@news.example.org>",
            )
            session.add(delivery)
            session.flush()
            deliveries[email] = delivery
        session.expunge_all()
    return deliveries


def dsn(recipient: str, status: str, diagnostic: str, *, message_id: str, key: str = "1",
        action: str = "failed") -> Incoming:  # fmt: skip
    raw = (
        "From: MAILER-DAEMON@mx.example.net\r\n"
        "To: digest@news.example.org\r\n"
        f"Message-ID: <dsn-{key}@mx.example.net>\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nUndeliverable.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: {action}\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; {diagnostic}\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: digest@news.example.org\r\nTo: {recipient}\r\nMessage-ID: {message_id}\r\n\r\n"
        "--B--\r\n"
    )
    return Incoming(source=f"dsn-{key}.eml", raw=raw.encode())


def arf(recipient: str, *, message_id: str) -> Incoming:
    raw = (
        "From: fbl@isp.example.com\r\nTo: abuse@news.example.org\r\n"
        "Message-ID: <fbl-1@isp.example.com>\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="F"\r\n\r\n'
        "--F\r\nContent-Type: text/plain\r\n\r\nSpam report.\r\n"
        "--F\r\nContent-Type: message/feedback-report\r\n\r\n"
        f"Feedback-Type: abuse\r\nVersion: 1\r\nOriginal-Rcpt-To: {recipient}\r\n\r\n"
        "--F\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: digest@news.example.org\r\nTo: {recipient}\r\nMessage-ID: {message_id}\r\n\r\n"
        "--F--\r\n"
    )
    return Incoming(source="fbl.eml", raw=raw.encode())


def status_of(session: Session, email: str) -> str:
    sub = session.exec(select(Subscriber).where(Subscriber.email == email)).one()
    session.refresh(sub)
    return str(sub.status)


def test_a_hard_bounce_suppresses_now_with_the_evidence_in_the_consent_log(
    engine: Engine, settings: Settings, session: Session
) -> None:
    d = seed(engine, ["gone@example.net"])["gone@example.net"]

    report = process([dsn("gone@example.net", "5.1.1", "550 5.1.1 user unknown",
                          message_id=d.message_id or "")],
                     settings=settings, now=NOW, engine=engine)  # fmt: skip

    (outcome,) = report.outcomes
    assert (outcome.kind, outcome.action, outcome.delivery_id) == ("hard", "suppressed", d.id)
    assert status_of(session, "gone@example.net") == "bounced"
    assert consent.is_suppressed(session, email="gone@example.net", newsletter="other-list")
    event = session.exec(select(ConsentEvent).order_by(ConsentEvent.id.desc())).first()  # type: ignore[union-attr]
    assert event is not None and event.to_status == "bounced"
    assert '"status": "5.1.1"' in (event.evidence or "")
    assert "user unknown" in (event.evidence or "")


def test_a_dry_run_changes_nothing(engine: Engine, settings: Settings, session: Session) -> None:
    d = seed(engine, ["gone@example.net"])["gone@example.net"]

    report = process([dsn("gone@example.net", "5.1.1", "550 5.1.1 user unknown",
                          message_id=d.message_id or "")],
                     settings=settings, now=NOW, engine=engine, dry_run=True)  # fmt: skip

    assert report.outcomes[0].action == "suppress"
    assert status_of(session, "gone@example.net") == "confirmed"
    assert session.exec(select(Bounce)).all() == []
    assert not consent.is_suppressed(session, email="gone@example.net", newsletter="friday")


def test_a_policy_rejection_never_suppresses_the_reader(
    engine: Engine, settings: Settings, session: Session
) -> None:
    d = seed(engine, ["reader@gmail.example"])["reader@gmail.example"]

    report = process([dsn("reader@gmail.example", "5.7.26", "550 5.7.26 unauthenticated mail",
                          message_id=d.message_id or "")],
                     settings=settings, now=NOW, engine=engine)  # fmt: skip

    assert report.outcomes[0].kind == "policy"
    assert status_of(session, "reader@gmail.example") == "confirmed"
    assert not consent.is_suppressed(session, email="reader@gmail.example", newsletter="friday")
    event = session.exec(select(ConsentEvent).where(ConsentEvent.action == "bounce_policy")).one()
    assert "5.7.26" in (event.evidence or "")


def test_soft_bounces_suppress_only_at_the_limit_counting_one_per_issue(
    engine: Engine, settings: Settings, session: Session
) -> None:
    email = "full@example.net"
    outcomes = []
    for n, week in enumerate(["2026-W45", "2026-W46", "2026-W47"]):
        d = seed(engine, [email], week=week)[email]
        for repeat in range(2):  # the same issue bouncing twice counts once
            report = process([dsn(email, "4.2.2", "452 4.2.2 mailbox full",
                                  message_id=d.message_id or "", key=f"{week}-{repeat}")],
                             settings=settings, now=NOW + timedelta(days=n),
                             engine=engine)  # fmt: skip
            outcomes.append(report.outcomes[0].action)

    assert outcomes[:4] == ["counted 1/3", "counted 1/3", "counted 2/3", "counted 2/3"]
    assert outcomes[4] == "suppressed after 3 soft"
    assert status_of(session, email) == "bounced"


def test_a_delay_warning_is_noted_but_not_counted(
    engine: Engine, settings: Settings, session: Session
) -> None:
    d = seed(engine, ["slow@example.net"])["slow@example.net"]

    report = process([dsn("slow@example.net", "4.4.7", "delivery delayed", action="delayed",
                          message_id=d.message_id or "")],
                     settings=settings, now=NOW, engine=engine)  # fmt: skip

    assert report.outcomes[0].action == "noted"
    assert status_of(session, "slow@example.net") == "confirmed"


def test_a_complaint_suppresses_from_every_list(
    engine: Engine, settings: Settings, session: Session
) -> None:
    d = seed(engine, ["angry@example.net"])["angry@example.net"]

    report = process([arf("angry@example.net", message_id=d.message_id or "")],
                     settings=settings, now=NOW, engine=engine)  # fmt: skip

    assert report.outcomes[0].kind == "complaint"
    assert status_of(session, "angry@example.net") == "complained"
    assert consent.is_suppressed(session, email="angry@example.net", newsletter="any-other")


def test_processing_the_same_report_twice_changes_nothing_more(
    engine: Engine, settings: Settings, session: Session
) -> None:
    d = seed(engine, ["gone@example.net"])["gone@example.net"]
    message = dsn("gone@example.net", "5.1.1", "550 5.1.1 user unknown",
                  message_id=d.message_id or "")  # fmt: skip

    process([message], settings=settings, now=NOW, engine=engine)
    again = process([message], settings=settings, now=NOW, engine=engine)

    assert again.outcomes[0].action == "already recorded"
    assert len(session.exec(select(Bounce)).all()) == 1


def test_the_verp_token_maps_a_bounce_to_its_delivery_and_cannot_be_forged(
    engine: Engine, settings: Settings, session: Session
) -> None:
    d = seed(engine, ["gone@example.net"])["gone@example.net"]
    token = verp_token(d.id or 0, secret=settings.secret())
    assert delivery_id_from_token(token, secret=settings.secret()) == d.id
    assert delivery_id_from_token(f"{d.id}.aaaaaaaa", secret=settings.secret()) is None
    verp = Settings(**{**settings.model_dump(), "verp_domain": "bounce.news.example.org"})
    raw = dsn(
        "someone-else@example.net", "5.1.1", "550 5.1.1 user unknown", message_id="<not-ours@x>"
    ).raw.replace(  # fmt: skip
        b"To: digest@news.example.org", f"To: bounces+{token}@bounce.news.example.org".encode()
    )

    report = process([Incoming(source="v.eml", raw=raw)], settings=verp, now=NOW, engine=engine)

    (outcome,) = report.outcomes
    assert (outcome.delivery_id, outcome.recipient) == (d.id, "gone@example.net")


def test_policy_rejections_past_the_threshold_alert_and_pause_the_send(
    engine: Engine, settings: Settings, session: Session
) -> None:
    emails = [f"r{n}@big.example" for n in range(settings.policy_pause_threshold)]
    deliveries = seed(engine, emails)
    messages = [
        dsn(e, "5.7.1", "550 5.7.1 blocked using zen.spamhaus.org",
            message_id=deliveries[e].message_id or "", key=str(n))
        for n, e in enumerate(emails)
    ]  # fmt: skip
    issue_id = deliveries[emails[0]].issue_id

    first = process(messages[:-1], settings=settings, now=NOW, engine=engine)
    assert first.alerts == []
    assert pause_reason(session, issue_id=issue_id, settings=settings) is None
    last = process(messages[-1:], settings=settings, now=NOW, engine=engine)

    assert len(last.alerts) == 1 and "refused for policy reasons" in last.alerts[0]
    assert pause_reason(session, issue_id=issue_id, settings=settings) is not None
    assert {status_of(session, e) for e in emails} == {"confirmed"}


def test_an_smtp_rejection_at_rcpt_is_handled_like_a_bounce(
    engine: Engine, settings: Settings, session: Session
) -> None:
    d = seed(engine, ["gone@example.net"])["gone@example.net"]

    with session_scope(engine) as s:
        delivery = s.get(Delivery, d.id)
        assert delivery is not None
        outcome = record_smtp_rejection(s, delivery=delivery, code=550, phase="rcpt",
                                        message="5.1.1 <gone@example.net>: no such user",
                                        settings=settings, now=NOW)  # fmt: skip

    assert (outcome.kind, outcome.status) == ("hard", "5.1.1")
    assert status_of(session, "gone@example.net") == "bounced"


def test_an_unknown_address_is_still_suppressed_on_a_hard_bounce(
    engine: Engine, settings: Settings, session: Session
) -> None:
    report = process([dsn("stranger@example.net", "5.1.1", "550 5.1.1 user unknown",
                          message_id="<unknown@x>")],
                     settings=settings, now=NOW, engine=engine)  # fmt: skip

    assert report.outcomes[0].action == "suppressed (no subscriber)"
    assert consent.is_suppressed(session, email="stranger@example.net", newsletter="friday")
