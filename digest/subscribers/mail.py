"""The confirmation email: rendered by ``digest.render``, sent through any ``Sender``.

It is transactional, not promotional (CASL): its own From address
(``settings.transactional_from_email``), no List-Unsubscribe (it is not list mail; ignoring it
is the way out), and ``Auto-Submitted`` so that vacation responders stay quiet.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, make_msgid

from digest.render import render_transactional
from digest.send.dkim import DkimSigner
from digest.send.smtp import Sender, SmtpPool
from digest.settings import Settings


def confirmation_message(
    *, settings: Settings, email: str, name: str = "", confirm_url: str, now: datetime
) -> bytes:
    """The CRLF bytes of one confirmation email, DKIM-signed when DKIM is configured.

    Raises InputError (from the renderer) for an unusable URL, ConfigError for a bad DKIM key.
    """
    rendered = render_transactional(
        "confirm", settings=settings, values={"confirm_url": confirm_url}
    )
    sender = settings.transactional_from_email
    message = EmailMessage(policy=SMTP)
    message["From"] = formataddr((settings.newsletter_name, sender))
    message["To"] = formataddr((name, email)) if name else email
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "localhost")
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(rendered.text, cte="quoted-printable")
    message.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
    data = message.as_bytes()
    signer = DkimSigner.from_settings(settings)
    return signer.sign(data) if signer is not None else data


async def send_confirmation(
    *,
    settings: Settings,
    sender: Sender,
    email: str,
    name: str = "",
    confirm_url: str,
    now: datetime,
) -> None:
    """Build and hand over one confirmation. Raises SendError / RelayUnavailable."""
    data = confirmation_message(
        settings=settings, email=email, name=name, confirm_url=confirm_url, now=now
    )
    # ``ready`` is optional on a Sender (see digest.send.smtp): wait out a rate limit first.
    ready = getattr(sender, "ready", None)
    if ready is not None:
        await ready()
    await sender.send(
        envelope_from=settings.transactional_from_email, recipients=[email], message=data
    )


def send_confirmations_now(
    *,
    settings: Settings,
    messages: list[tuple[str, str, str]],
    now: datetime,
    sender: Sender | None = None,
) -> None:
    """Send ``(email, name, confirm_url)`` confirmations from synchronous code (the CLI), over
    one SMTP pool unless a sender is given. Raises SendError on the first failure."""

    async def run() -> None:
        own = sender is None
        active: Sender = sender if sender is not None else SmtpPool(settings)
        try:
            for email, name, url in messages:
                await send_confirmation(
                    settings=settings,
                    sender=active,
                    email=email,
                    name=name,
                    confirm_url=url,
                    now=now,
                )
        finally:
            if own:
                await active.aclose()

    asyncio.run(run())
