"""Reading the parts of a bounce: decoded text, the returned original message, addresses.

Shared by the DSN, ARF and plain-text readers in ``digest.bounces.parse``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses

ADDRESS_RE = re.compile(r"(?<![\w/=.+\-])[\w.!#$%&'*+?^`{}~\-]+@[\w\-]+(?:\.[\w\-]+)+")
VERP_RE = re.compile(r"\bbounces\+([A-Za-z0-9._=\-]+)@([\w.\-]+)", re.IGNORECASE)
# A basic SMTP reply code at the start of a reply ("550 ", "550-", "550:").
REPLY_RE = re.compile(r"(?<![\d.])([245]\d\d)(?=[\s\-:])")

# Where the returned copy of the original message starts in a plain-text bounce: a separator
# line naming the original/returned message, or the first unindented trace header.
ORIGINAL_SEPARATOR = re.compile(
    r"^[\s\-=_*|>]*(?:"
    r"[-=_*|]{2,}.*(?:original|returned|undelivered|unsent|copy of|message text)"
    r"|.*below this line is a copy"
    r"|original message follows"
    r"|-+\s*original message\s*-+"
    r"|this is a copy of the message"
    r")",
    re.IGNORECASE | re.MULTILINE,
)
TRACE_HEADER = re.compile(
    r"^(?:Return-Path|Received|X-[\w\-]+|Message-I[dD]|DKIM-Signature|ARC-[\w\-]+"
    r"|Authentication-Results|Delivered-To|Content-Type|MIME-Version):[ \t]",
    re.MULTILINE | re.IGNORECASE,
)
# Headers that can hold the VERP address: in the returned original message (its return path),
# and in the bounce itself (where it was delivered).
ENVELOPE_HEADERS = ("Return-Path", "Errors-To", "Sender", "From")
BOUNCE_ENVELOPE_HEADERS = ("X-Original-To", "Delivered-To", "Envelope-To", "To", "X-Envelope-To")


def find_part(message: Message, content_type: str) -> Message | None:
    """The first part of ``content_type`` anywhere in ``message``, or None."""
    for part in message.walk():
        if part.get_content_type() == content_type:
            return part
    return None


def original_headers(message: Message) -> Message | None:
    """The headers of the returned original message, wherever the bounce put them."""
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
        if kind == "text/rfc822-headers":
            return HeaderParser().parsestr(decoded(part))
    text = text_of(message, limit=40000)
    separator = ORIGINAL_SEPARATOR.search(text)
    header = TRACE_HEADER.search(text, separator.end() if separator else 0)
    if header is None:
        return None
    block = text[header.start() :]
    return HeaderParser().parsestr(block.split("\n\n", 1)[0] + "\n")


def text_of(message: Message, *, limit: int) -> str:
    """Decoded text/plain parts outside any returned message (text/html when there is none)."""
    texts: list[str] = []
    html: list[str] = []
    stack: list[Message] = [message]
    while stack:
        part = stack.pop(0)
        kind = part.get_content_type()
        if kind in {"message/rfc822", "text/rfc822-headers"} and part is not message:
            continue
        if part.is_multipart():
            stack[0:0] = [p for p in part.get_payload() if isinstance(p, Message)]
        elif kind == "text/plain" or part.get_content_maintype() == "multipart":
            texts.append(decoded(part))
        elif kind == "text/html":
            html.append(re.sub(r"<[^>]+>", " ", decoded(part)))
    return "\n".join(texts or html).replace("\r\n", "\n")[:limit]


def decoded(part: Message) -> str:
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        payload = part.get_payload()
        return payload if isinstance(payload, str) else ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return raw.decode(charset, "replace")
    except LookupError:
        return raw.decode("utf-8", "replace")


def find_verp_token(
    message: Message, *, verp_domain: str, headers: Iterable[str] = BOUNCE_ENVELOPE_HEADERS
) -> str | None:
    """The VERP token (``bounces+TOKEN@domain``) in ``headers`` of ``message``, or None;
    ``verp_domain`` empty accepts any domain."""
    for name in headers:
        for value in message.get_all(name, []):
            for match in VERP_RE.finditer(str(value)):
                if not verp_domain or match.group(2).lower() == verp_domain.lower():
                    return match.group(1)
    return None


def address_field(value: str | None) -> str:
    """``rfc822; someone@example.org`` → ``someone@example.org``."""
    if not value:
        return ""
    address = strip_type(value).strip().strip("<>")
    found = ADDRESS_RE.search(address)
    return normalise(found.group(0)) if found else normalise(address)


def first_address(values: Iterable[str]) -> str:
    for _, address in getaddresses([str(v) for v in values]):
        if "@" in address:
            return normalise(address)
    return ""


def strip_type(value: str) -> str:
    """Drop the ``type;`` prefix of a DSN field (``smtp;``, ``dns;``, ``rfc822;``)."""
    head, sep, tail = str(value).partition(";")
    return tail.strip() if sep and re.fullmatch(r"\s*[\w\-]+\s*", head) else str(value).strip()


def reply_code(text: str) -> int | None:
    """The first basic SMTP reply code (550) in ``text``, or None."""
    match = REPLY_RE.search(text)
    return int(match.group(1)) if match else None


def clean_id(value: str | None) -> str | None:
    """A Message-ID in its ``<...>`` form, or None."""
    if not value:
        return None
    found = re.search(r"<[^<>\s]+>", str(value))
    return found.group(0) if found else str(value).strip() or None


def normalise(address: str) -> str:
    """An address as compared and stored: no brackets, no trailing dot, lower case."""
    return address.strip().strip("<>").rstrip(".").lower()


def one_line(text: str) -> str:
    """``text`` with every run of whitespace made one space."""
    return re.sub(r"\s+", " ", text).strip()
