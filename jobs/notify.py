"""Telling the operator: a draft awaits approval, a send was missed, a build failed.

A small ``Notifier`` protocol with a real twin that mails ``OPERATOR_EMAIL`` through the
configured relay, and one that only keeps what it was told (for ``digest jobs run`` without a
relay, and for tests). Every notice is also logged, so nothing is lost when mail is off.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Protocol

import aiosmtplib

from digest.settings import Settings

log = logging.getLogger("digest.jobs")


class Notifier(Protocol):
    def tell(self, subject: str, body: str) -> None:
        """Tell the operator; never raises for a delivery problem (it is logged instead)."""


@dataclass
class MemoryNotifier:
    """Keeps every notice in ``told`` as ``(subject, body)``."""

    told: list[tuple[str, str]] = field(default_factory=list)

    def tell(self, subject: str, body: str) -> None:
        log.warning("operator notice: %s", subject)
        self.told.append((subject, body))


class MailNotifier:
    """Mails the operator through the SMTP relay from settings (transactional From)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def tell(self, subject: str, body: str) -> None:
        s = self.settings
        log.warning("operator notice: %s", subject)
        if not s.operator_email:
            log.info("OPERATOR_EMAIL is empty: notice logged only")
            return
        message = EmailMessage()
        message["From"] = s.transactional_from_email
        message["To"] = s.operator_email
        message["Subject"] = f"[{s.newsletter_name}] {subject}"
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = make_msgid(domain=s.sender_domain)
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(body)
        try:
            asyncio.run(
                aiosmtplib.send(
                    message,
                    hostname=s.smtp_host,
                    port=s.smtp_port,
                    use_tls=s.smtp_tls == "tls",
                    start_tls=s.smtp_tls == "starttls",
                    username=s.smtp_user or None,
                    password=s.smtp_password.get_secret_value() or None,
                    timeout=s.smtp_timeout,
                )
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            # The notice is already in the log; a relay problem must not fail the job itself.
            log.error("could not mail the operator (%s): %s", s.operator_email, exc)
