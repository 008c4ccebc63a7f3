"""Unsubscribe requests that arrive by mail: the ``mailto:`` half of List-Unsubscribe.

Every digest carries ``List-Unsubscribe: <https://…/u/TOKEN>, <mailto:unsubscribe@DOMAIN?
subject=unsubscribe-TOKEN>`` (``digest.send.message``; DOMAIN is the From address's domain and
TOKEN the signed unsubscribe token of the https link). Mailbox providers and mail clients that
use the mailto form send a message to that address with that subject. Routed into the bounce
mailbox, such a message is recognised here before any bounce parsing and handled by the same
service function as the one-click POST, with the consent source ``mailto``.

Recognising a request (``request_of``) is pure; ``apply_request`` changes the store. A token that
is forged or names no subscriber changes nothing and comes back as one line saying so.
"""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import getaddresses

from sqlmodel import Session

from digest.bounces.mime import clean_id
from digest.errors import InputError, NotFound
from digest.models import SubscriberStatus
from digest.settings import Settings
from digest.store import subscribers as subscriber_store
from digest.subscribers import service, tokens

log = logging.getLogger("digest.bounces")

SOURCE = "mailto"  # the consent event's source for an unsubscribe that came by mail
LOCAL_PART = "unsubscribe"  # the address's local part, as digest.send.message writes it
# The headers that can name the unsubscribe address: what the sender wrote, and what the
# receiving server recorded when an alias routed it into the bounce mailbox.
_ADDRESS_HEADERS = ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To")
_SUBJECT = re.compile(r"^\s*unsubscribe-(\S*)\s*$", re.IGNORECASE)
_TOKEN = re.compile(r"^[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+$")


@dataclass(frozen=True, slots=True)
class Request:
    """A message sent to the unsubscribe address; ``token`` is None when its subject holds none.
    ``sender`` and ``message_id`` are what its header says (empty when missing)."""

    source: str
    token: str | None
    sender: str = ""
    message_id: str = ""

    @property
    def evidence(self) -> str:
        """The consent log's record of this request: who mailed it, and which message it was."""
        sender = self.sender or "an unnamed sender"
        message_id = self.message_id or "none"
        return f"unsubscribe request by mail from {sender} (Message-ID {message_id})"


@dataclass(frozen=True, slots=True)
class UnsubscribeOutcome:
    """What became of one emailed unsubscribe request.

    ``action`` is "unsubscribed", "already <status>", "would unsubscribe" (dry run) or
    "refused"; ``detail`` is the one line that explains a refusal (empty otherwise).
    """

    source: str
    action: str
    recipient: str = ""
    subscriber_id: int | None = None
    detail: str = ""

    @property
    def refused(self) -> bool:
        return self.action == "refused"

    def as_dict(self) -> dict[str, object]:
        """The shape of a bounce outcome's JSON line, with kind "unsubscribe"."""
        return {
            "source": self.source,
            "recipient": self.recipient,
            "kind": "unsubscribe",
            "status": None,
            "diagnostic": self.detail,
            "action": self.action,
        }


def unsubscribe_address(settings: Settings) -> str:
    """``unsubscribe@<sender domain>``: the mailto address every digest's header names."""
    return f"{LOCAL_PART}@{settings.sender_domain}".lower()


def request_of(raw: bytes, *, source: str, settings: Settings) -> Request | None:
    """The unsubscribe request in ``raw`` when it is addressed to the unsubscribe address,
    else None (the message is left to the bounce parser). Reads the header block only."""
    head = BytesHeaderParser().parsebytes(raw)
    wanted = _address_forms(settings)
    named = getaddresses([str(v) for name in _ADDRESS_HEADERS for v in head.get_all(name, [])])
    if not any(address.strip().lower() in wanted for _, address in named):
        return None
    found = _SUBJECT.match(_subject(head))
    token = found.group(1) if found else ""
    senders = getaddresses([str(v) for v in head.get_all("From", [])])
    return Request(
        source=source,
        token=token if _TOKEN.match(token) else None,
        sender=_printable(senders[0][1] if senders else ""),
        message_id=_printable(clean_id(head.get("Message-ID")) or ""),
    )


def _printable(value: str, *, limit: int = 200) -> str:
    """A header value from the outside as it may go into the log: no control characters,
    bounded in length."""
    return "".join(c for c in value if c.isprintable())[:limit]


def plan(request: Request, *, settings: Settings) -> UnsubscribeOutcome:
    """What ``apply_request`` would do, judged from the token alone (``--dry-run``)."""
    try:
        subscriber_id = _subscriber_id(request, settings=settings)
    except InputError as exc:
        return _refused(request, str(exc))
    return UnsubscribeOutcome(
        source=request.source, action="would unsubscribe", subscriber_id=subscriber_id
    )


def apply_request(
    session: Session, request: Request, *, settings: Settings, now: datetime
) -> UnsubscribeOutcome:
    """Unsubscribe the person the request's token names, exactly as the one-click link does
    (``service.unsubscribe``, source "mailto"). Idempotent: a repeated request changes nothing
    and says "already unsubscribed". A forged token or an unknown subscriber changes nothing
    and comes back "refused" with the reason."""
    try:
        subscriber_id = _subscriber_id(request, settings=settings)
    except InputError as exc:
        return _logged(_refused(request, str(exc)))
    before = subscriber_store.get_subscriber(session, subscriber_id)
    if before is None:
        reason = f"its token names subscriber {subscriber_id}, who does not exist"
        return _logged(_refused(request, reason))
    was = "erased" if before.erased_at is not None else SubscriberStatus(before.status).value
    assert request.token is not None  # _subscriber_id checked it
    try:
        subscriber = service.unsubscribe(
            session, settings=settings, token=request.token, source=SOURCE, now=now,
            evidence=request.evidence,
        )  # fmt: skip
    except NotFound as exc:  # deleted between the two reads
        return _logged(_refused(request, str(exc)))
    changed = was in (SubscriberStatus.PENDING.value, SubscriberStatus.CONFIRMED.value)
    outcome = UnsubscribeOutcome(
        source=request.source,
        action="unsubscribed" if changed else f"already {was}",
        recipient=subscriber.email,
        subscriber_id=subscriber_id,
    )
    log.info("mailto unsubscribe %s: subscriber %s %s", request.source, subscriber_id,
             outcome.action)  # fmt: skip
    return outcome


def _subscriber_id(request: Request, *, settings: Settings) -> int:
    """The subscriber id the request's token names. Raises InputError (no token, forged)."""
    if request.token is None:
        raise InputError("its subject holds no unsubscribe token (expected unsubscribe-TOKEN)")
    try:
        subscriber_id, _newsletter = tokens.read_unsubscribe_token(request.token, settings=settings)
    except InputError:  # the web's wording speaks of a link; this was a subject line
        raise InputError("its unsubscribe token is not valid (forged or mangled)") from None
    return subscriber_id


def _refused(request: Request, reason: str) -> UnsubscribeOutcome:
    detail = f"unsubscribe request {request.source}: {reason}; nothing changed"
    return UnsubscribeOutcome(source=request.source, action="refused", detail=detail)


def _logged(outcome: UnsubscribeOutcome) -> UnsubscribeOutcome:
    log.warning(outcome.detail)
    return outcome


def _address_forms(settings: Settings) -> set[str]:
    """The unsubscribe address as written, and with an IDN domain in its punycode form."""
    address = unsubscribe_address(settings)
    forms = {address}
    with contextlib.suppress(UnicodeError):  # not an IDN-encodable name: match as written
        forms.add(f"{LOCAL_PART}@{settings.sender_domain.encode('idna').decode('ascii')}".lower())
    return forms


def _subject(head: Message) -> str:
    """The decoded Subject (RFC 2047 words), or "" when it is missing or cannot be decoded."""
    value = head.get("Subject")
    if value is None:
        return ""
    try:
        return str(make_header(decode_header(str(value))))
    except (HeaderParseError, LookupError, UnicodeDecodeError):
        return ""
