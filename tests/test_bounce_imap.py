"""Polling a real IMAP server (pymap on 127.0.0.1, STARTTLS with a certificate made here):
bounces are handled and moved to the processed folder, never deleted."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from digest.bounces.apply import poll_mailbox
from digest.bounces.sources import ImapMailbox
from digest.models import Bounce
from digest.settings import Settings

pytest.importorskip("pymap")


@dataclass
class Imap:
    port: int
    cert: Path


def _certificate(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def imap(tmp_path: Path) -> Iterator[Imap]:
    cert, key = _certificate(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
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
