"""Shared by the send and mailbox tests: a real aiosmtpd server on 127.0.0.1 around any handler,
a handler that counts recipients, bulk rows for a send, and a self-signed certificate for
127.0.0.1 (SMTP STARTTLS, IMAP)."""

from __future__ import annotations

import asyncio
import ipaddress
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from conftest import free_port
from sqlmodel import Session

from digest.models import Issue, IssueStatus, Subscriber, SubscriberStatus

__all__ = ["RecipientLog", "add_send", "free_port", "self_signed", "smtp_server"]


@contextmanager
def smtp_server(handler: Any, **options: Any) -> Iterator[int]:
    """Run ``handler`` in aiosmtpd on 127.0.0.1 at a free port; yields the port.

    ``options`` go to aiosmtpd's Controller (TLS context, authenticator, ...)."""
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


class RecipientLog:
    """Counts every recipient of every message the server accepted, after ``delay`` seconds
    (a pause lets concurrent senders overlap in time)."""

    def __init__(self, *, delay: float = 0.0) -> None:
        self.delay = delay
        self.received: Counter[str] = Counter()
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            self.received.update(envelope.rcpt_tos)
        return "250 OK"


def add_send(
    session: Session,
    *,
    newsletter: str,
    recipients: int,
    html: str,
    text: str,
    confirmed_at: datetime,
    email: str = "r{:04d}@example.org",
    name: str = "R {}",
) -> None:
    """Add ``recipients`` confirmed subscribers (``email``/``name`` formatted with their number)
    and one approved issue for 2017-W11. Bulk rows: the consent flow is tested elsewhere; here
    only the ledger matters."""
    session.add_all(
        Subscriber(
            email=email.format(i),
            name=name.format(i),
            status=SubscriberStatus.CONFIRMED,
            confirmed_at=confirmed_at,
        )
        for i in range(recipients)
    )
    session.add(
        Issue(
            newsletter=newsletter,
            week="2017-W11",
            subject="The week",
            html=html,
            text=text,
            status=IssueStatus.APPROVED,
        )
    )


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, written as PEM files in ``folder``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
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

