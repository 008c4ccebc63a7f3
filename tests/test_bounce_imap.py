"""Polling a real IMAP server (pymap on 127.0.0.1, STARTTLS with a certificate made here):
bounces are handled and moved to the processed folder, never deleted."""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from support_send import free_port, self_signed

from digest.bounces.apply import poll_mailbox
from digest.bounces.sources import ImapMailbox
from digest.models import Bounce
from digest.settings import Settings

pytest.importorskip("pymap")


@dataclass
class Imap:
    port: int
    cert: Path


@pytest.fixture
def imap(tmp_path: Path) -> Iterator[Imap]:
    cert, key = self_signed(tmp_path)
    port = free_port()
    pymap = Path(sys.executable).with_name("pymap")
    proc = subprocess.Popen(
        [str(pymap), "--host", "127.0.0.1", "--port", str(port), "--cert", str(cert),
         "--key", str(key), "dict"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield Imap(port=port, cert=cert)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def bounce(n: int) -> bytes:
    return (
        f"From: MAILER-DAEMON@mx.example.net\r\nTo: digest@news.example.org\r\n"
        f"Message-ID: <imap-{n}@mx.example.net>\r\nSubject: Undelivered\r\n\r\n"
        f"<gone{n}@example.net>:\r\n550 5.1.1 user unknown\r\n"
    ).encode()


def test_it_handles_the_bounces_and_moves_them_to_the_processed_folder(
    imap: Imap, settings: Settings, engine: Engine, session: Session
) -> None:
    import ssl

    from imap_tools import MailBoxStartTls

    cfg = Settings(**{**settings.model_dump(), "imap_host": "127.0.0.1", "imap_port": imap.port,
                      "imap_tls": "starttls", "imap_user": "demouser",
                      "imap_password": "demopass"})  # fmt: skip
    context = ssl.create_default_context(cafile=str(imap.cert))
    with MailBoxStartTls("127.0.0.1", port=imap.port, ssl_context=context) as box:
        box.login("demouser", "demopass")
        for n in (1, 2):
            box.append(bounce(n), "INBOX")

    with ImapMailbox(cfg, ssl_context=context) as mailbox:
        report = poll_mailbox(settings=cfg, engine=engine, mailbox=mailbox,
                              clock=lambda: dt.datetime.now(dt.UTC))  # fmt: skip

    assert report.messages == 2
    assert [o.action for o in report.outcomes] == ["suppressed (no subscriber)"] * 2
    assert sorted(b.email for b in session.exec(select(Bounce)).all()) == [
        "gone1@example.net",
        "gone2@example.net",
    ]
    with MailBoxStartTls("127.0.0.1", port=imap.port, ssl_context=context) as box:
        box.login("demouser", "demopass", initial_folder="INBOX")
        assert list(box.fetch()) == []
        box.folder.set("Processed")
        assert sorted(m.subject for m in box.fetch()) == ["Undelivered", "Undelivered"]


def test_a_certificate_it_does_not_trust_is_refused(imap: Imap, settings: Settings) -> None:
    from digest.errors import SourceError

    cfg = Settings(**{**settings.model_dump(), "imap_host": "127.0.0.1", "imap_port": imap.port,
                      "imap_tls": "starttls", "imap_user": "demouser",
                      "imap_password": "demopass"})  # fmt: skip

    with pytest.raises(SourceError, match="127.0.0.1"), ImapMailbox(cfg):
        pass


def test_an_emailed_unsubscribe_request_is_applied_and_moved_once(
    imap: Imap, settings: Settings, engine: Engine, session: Session
) -> None:
    import ssl

    from imap_tools import MailBoxStartTls

    from digest.db import session_scope
    from digest.models import Subscriber, SubscriberStatus
    from digest.subscribers import service, tokens

    cfg = Settings(**{**settings.model_dump(), "imap_host": "127.0.0.1", "imap_port": imap.port,
                      "imap_tls": "starttls", "imap_user": "demouser",
                      "imap_password": "demopass"})  # fmt: skip
    now = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
    with session_scope(engine) as s:
        sid = service.add_confirmed(s, settings=cfg, email="ann@example.net", evidence="fixture",
                                    source="import", now=now).id  # fmt: skip
    assert sid is not None
    token = tokens.unsubscribe_token(settings=cfg, subscriber_id=sid, newsletter="friday")
    request = (
        f"From: ann@example.net\r\nTo: unsubscribe@news.example.org\r\n"
        f"Message-ID: <u1@example.net>\r\nSubject: unsubscribe-{token}\r\n\r\nunsubscribe\r\n"
    ).encode()
    context = ssl.create_default_context(cafile=str(imap.cert))
    actions = []
    for _ in range(2):  # the same request again (a client retrying) changes nothing more
        with MailBoxStartTls("127.0.0.1", port=imap.port, ssl_context=context) as box:
            box.login("demouser", "demopass")
            box.append(request, "INBOX")
            box.append(bounce(3), "INBOX")
        with ImapMailbox(cfg, ssl_context=context) as mailbox:
            report = poll_mailbox(settings=cfg, engine=engine, mailbox=mailbox,
                                  clock=lambda: now)  # fmt: skip
        actions += [u.action for u in report.unsubscribes]
        assert report.messages == 2 and len(report.outcomes) == 1

    assert actions == ["unsubscribed", "already unsubscribed"]
    found = session.get(Subscriber, sid)
    assert found is not None and found.status == SubscriberStatus.UNSUBSCRIBED
    with MailBoxStartTls("127.0.0.1", port=imap.port, ssl_context=context) as box:
        box.login("demouser", "demopass", initial_folder="INBOX")
        assert list(box.fetch()) == []
        box.folder.set("Processed")
        assert sorted(m.subject for m in box.fetch()).count(f"unsubscribe-{token}") == 2
