"""Unsubscribing by mail: the mailto half of a real digest's List-Unsubscribe header, answered the
way a mail client does, read from a real Maildir and applied to a real database (SQLite, and
PostgreSQL when set). Forged tokens, unknown subscribers and repeated requests change nothing."""

from __future__ import annotations

import email
import json
import mailbox
import re
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from support_cli import run_cli

from digest.bounces.apply import process
from digest.bounces.sources import read_path
from digest.db import session_scope
from digest.models import ConsentEvent, Subscriber, SubscriberStatus, Suppression
from digest.send.message import MessageTemplate, Recipient
from digest.settings import Settings
from digest.subscribers import service, tokens

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def confirmed(engine: Engine, settings: Settings, address: str) -> int:
    with session_scope(engine) as session:
        subscriber = service.add_confirmed(
            session, settings=settings, email=address, evidence="test fixture", source="import",
            now=NOW,
        )  # fmt: skip
        assert subscriber.id is not None
        return subscriber.id


def mailto_of_a_real_digest(engine: Engine, settings: Settings, subscriber_id: int) -> str:
    """The mailto URI from the List-Unsubscribe header of the digest this subscriber gets."""
    with session_scope(engine) as session:
        subscriber = session.get(Subscriber, subscriber_id)
        assert subscriber is not None
        recipient = Recipient(
            email=subscriber.email,
            name="",
            unsubscribe_url=service.unsubscribe_url(settings=settings, subscriber=subscriber),
            preferences_url=service.preferences_url(settings=settings, subscriber=subscriber),
        )
    template = MessageTemplate.build(
        subject="This week", html="<p>%%UNSUBSCRIBE_URL%%</p>", text="%%UNSUBSCRIBE_URL%%",
        settings=settings, campaign="2026-W47",
    )  # fmt: skip
    raw = template.render(recipient, date=NOW, message_id="<w47@news.example.org>")
    header = str(email.message_from_bytes(raw)["List-Unsubscribe"])
    found = re.search(r"<(mailto:[^>]+)>", header)
    assert found is not None, header
    return found.group(1)


def request_for(mailto: str, *, sender: str, n: int = 1) -> bytes:
    """The message a mail client sends for a mailto URI: To its address, Subject its subject."""
    parts = urlsplit(mailto)
    subject = parse_qs(parts.query)["subject"][0]
    return (
        f"From: {sender}\r\nTo: {parts.path}\r\nSubject: {subject}\r\n"
        f"Message-ID: <unsub-{n}@mail.example.net>\r\n\r\nThis message will unsubscribe you.\r\n"
    ).encode()


def maildir_with(folder: Path, *messages: bytes) -> Path:
    box = mailbox.Maildir(folder)
    for raw in messages:
        box.add(raw)
    box.close()
    return folder


def events(session: Session, subscriber_id: int) -> list[ConsentEvent]:
    query = select(ConsentEvent).where(ConsentEvent.subscriber_id == subscriber_id)
    return list(session.exec(query.order_by(ConsentEvent.id)).all())  # type: ignore[arg-type]


def status(session: Session, subscriber_id: int) -> SubscriberStatus:
    session.expire_all()
    found = session.get(Subscriber, subscriber_id)
    assert found is not None
    return SubscriberStatus(found.status)


def test_the_header_names_the_address_the_mailbox_listens_for(
    settings: Settings, engine: Engine
) -> None:
    sid = confirmed(engine, settings, "ann@example.net")

    mailto = mailto_of_a_real_digest(engine, settings, sid)

    token = tokens.unsubscribe_token(settings=settings, subscriber_id=sid, newsletter="friday")
    assert mailto == f"mailto:unsubscribe@news.example.org?subject=unsubscribe-{token}"


def test_a_mailed_request_unsubscribes_like_one_click_and_is_recorded_as_mailto(
    tmp_path: Path, settings: Settings, engine: Engine, session: Session
) -> None:
    sid = confirmed(engine, settings, "ann@example.net")
    raw = request_for(mailto_of_a_real_digest(engine, settings, sid), sender="ann@example.net")
    box = maildir_with(tmp_path / "Maildir", raw)

    report = process(read_path(str(box)), settings=settings, now=LATER, engine=engine)

    assert [(u.action, u.recipient) for u in report.unsubscribes] == [
        ("unsubscribed", "ann@example.net")
    ]
    assert report.outcomes == [] and report.not_bounces == []
    assert report.summary() == (
        "1 message(s) read, 0 bounced recipient(s), 1 unsubscribe request(s)"
    )
    assert status(session, sid) is SubscriberStatus.UNSUBSCRIBED
    last = events(session, sid)[-1]
    assert (last.source, last.to_status, last.list_id) == ("mailto", "unsubscribed", "friday")
    assert last.evidence == (
        "unsubscribe request by mail from ann@example.net (Message-ID <unsub-1@mail.example.net>)"
    )
    reasons = [(s.scope, s.reason) for s in session.exec(select(Suppression)).all()]
    assert reasons == [("friday", "unsubscribed")]


def test_a_repeated_request_changes_nothing_the_second_time(
    tmp_path: Path, settings: Settings, engine: Engine, session: Session
) -> None:
    sid = confirmed(engine, settings, "ann@example.net")
    raw = request_for(mailto_of_a_real_digest(engine, settings, sid), sender="ann@example.net")
    box = maildir_with(tmp_path / "Maildir", raw, raw.replace(b"unsub-1", b"unsub-2"))

    first = process(read_path(str(box)), settings=settings, now=LATER, engine=engine)
    count = len(events(session, sid))
    again = process(read_path(str(box)), settings=settings, now=LATER, engine=engine)

    assert [u.action for u in first.unsubscribes] == ["unsubscribed", "already unsubscribed"]
    assert [u.action for u in again.unsubscribes] == ["already unsubscribed"] * 2
    assert len(events(session, sid)) == count
    assert [e.source for e in events(session, sid)].count("mailto") == 1


def test_a_forged_token_is_one_line_and_changes_nothing(
    tmp_path: Path, settings: Settings, engine: Engine, session: Session
) -> None:
    sid = confirmed(engine, settings, "ann@example.net")
    mailto = mailto_of_a_real_digest(engine, settings, sid)
    other = Settings(**{**settings.model_dump(), "secret_key": "another-key-entirely"})
    forged = tokens.unsubscribe_token(settings=other, subscriber_id=sid, newsletter="friday")
    raw = request_for(re.sub(r"unsubscribe-\S+$", f"unsubscribe-{forged}", mailto),
                      sender="mallory@example.com")  # fmt: skip
    before = len(events(session, sid))

    report = process(read_path(str(maildir_with(tmp_path / "M", raw))), settings=settings,
                     now=LATER, engine=engine)  # fmt: skip

    (refused,) = report.unsubscribes
    assert refused.action == "refused" and "\n" not in refused.detail
    assert "token is not valid" in refused.detail and "nothing changed" in refused.detail
    assert report.summary().endswith("1 unsubscribe request(s) (1 refused)")
    assert status(session, sid) is SubscriberStatus.CONFIRMED
    assert len(events(session, sid)) == before
    assert session.exec(select(Suppression)).all() == []


def test_a_token_for_a_subscriber_who_does_not_exist_changes_nothing(
    tmp_path: Path, settings: Settings, engine: Engine, session: Session
) -> None:
    token = tokens.unsubscribe_token(settings=settings, subscriber_id=4242, newsletter="friday")
    raw = request_for(f"mailto:unsubscribe@news.example.org?subject=unsubscribe-{token}",
                      sender="someone@example.com")  # fmt: skip

    report = process(read_path(str(maildir_with(tmp_path / "M", raw))), settings=settings,
                     now=LATER, engine=engine)  # fmt: skip

    (refused,) = report.unsubscribes
    assert refused.action == "refused"
    assert "subscriber 4242, who does not exist" in refused.detail
    assert session.exec(select(ConsentEvent)).all() == []
    assert session.exec(select(Suppression)).all() == []


def test_mail_to_the_address_without_a_token_is_refused_not_read_as_a_bounce(
    tmp_path: Path, settings: Settings, engine: Engine
) -> None:
    raw = request_for("mailto:unsubscribe@news.example.org?subject=please%20remove%20me",
                      sender="someone@example.com")  # fmt: skip

    report = process(read_path(str(maildir_with(tmp_path / "M", raw))), settings=settings,
                     now=LATER, engine=engine)  # fmt: skip

    (refused,) = report.unsubscribes
    assert "no unsubscribe token" in refused.detail
    assert report.outcomes == [] and report.not_bounces == []


def test_requests_and_bounces_share_the_mailbox_and_are_counted_apart(
    tmp_path: Path, settings: Settings, engine: Engine, session: Session
) -> None:
    ann = confirmed(engine, settings, "ann@example.net")
    bob = confirmed(engine, settings, "bob@example.net")
    bounce = (
        b"From: MAILER-DAEMON@mx.example.net\r\nTo: digest@news.example.org\r\n"
        b"Message-ID: <b1@mx.example.net>\r\nSubject: Undelivered\r\n\r\n"
        b"<bob@example.net>:\r\n550 5.1.1 user unknown\r\n"
    )
    unsubscribe = request_for(mailto_of_a_real_digest(engine, settings, ann), sender="ann@x.org")
    box = maildir_with(tmp_path / "Maildir", bounce, unsubscribe)

    report = process(read_path(str(box)), settings=settings, now=LATER, engine=engine)

    assert report.summary() == "2 message(s) read, 1 bounced recipient(s), 1 unsubscribe request(s)"
    assert status(session, ann) is SubscriberStatus.UNSUBSCRIBED
    assert status(session, bob) is SubscriberStatus.BOUNCED


def test_a_dry_run_judges_the_token_and_changes_nothing(
    tmp_path: Path, settings: Settings, engine: Engine, session: Session
) -> None:
    sid = confirmed(engine, settings, "ann@example.net")
    good = request_for(mailto_of_a_real_digest(engine, settings, sid), sender="ann@example.net")
    bad = request_for("mailto:unsubscribe@news.example.org?subject=unsubscribe-abc.def",
                      sender="x@y.z", n=2)  # fmt: skip
    box = maildir_with(tmp_path / "Maildir", good, bad)

    report = process(read_path(str(box)), settings=settings, now=LATER, dry_run=True)

    assert sorted(u.action for u in report.unsubscribes) == ["refused", "would unsubscribe"]
    assert status(session, sid) is SubscriberStatus.CONFIRMED


def test_the_cli_counts_requests_beside_bounces_and_prints_a_refusal_as_one_line(
    tmp_path: Path, settings: Settings, engine: Engine, session: Session
) -> None:
    sid = confirmed(engine, settings, "ann@example.net")
    good = request_for(mailto_of_a_real_digest(engine, settings, sid), sender="ann@example.net")
    bad = request_for("mailto:unsubscribe@news.example.org?subject=unsubscribe-abc.def",
                      sender="x@y.z", n=2)  # fmt: skip
    box = maildir_with(tmp_path / "Maildir", good, bad)

    shown = run_cli(settings, "bounces", "process", str(box))
    listed = run_cli(settings, "bounces", "process", str(box), "--json")

    assert shown.exit_code == 0, shown.output
    assert "2 message(s) read, 0 bounced recipient(s), 2 unsubscribe request(s) (1 refused)" in (
        shown.stdout
    )
    refusals = [line for line in shown.stderr.splitlines() if "unsubscribe request" in line]
    assert len(refusals) == 1 and "token is not valid" in refusals[0]
    rows = json.loads(listed.stdout)
    assert sorted((r["kind"], r["action"]) for r in rows) == [
        ("unsubscribe", "already unsubscribed"),
        ("unsubscribe", "refused"),
    ]
    assert status(session, sid) is SubscriberStatus.UNSUBSCRIBED


def test_the_evidence_names_the_sender_and_message_and_keeps_out_control_characters(
    settings: Settings,
) -> None:
    from digest.bounces.mailto import request_of

    named = (
        b"From: Ann Reader <ann@example.net>\r\nTo: unsubscribe@news.example.org\r\n"
        b"Subject: unsubscribe-abc.def\r\nMessage-ID: <m1\x07@mail.example.net>\r\n\r\nbye\r\n"
    )
    bare = b"To: unsubscribe@news.example.org\r\nSubject: unsubscribe-abc.def\r\n\r\nbye\r\n"

    first = request_of(named, source="INBOX/1", settings=settings)
    second = request_of(bare, source="INBOX/2", settings=settings)

    assert first is not None and second is not None
    assert first.evidence == (
        "unsubscribe request by mail from ann@example.net (Message-ID <m1@mail.example.net>)"
    )
    assert second.evidence == "unsubscribe request by mail from an unnamed sender (Message-ID none)"
