"""Parse bounce and complaint mail into one record per bounced recipient.

Three shapes are understood, all with the standard library ``email`` package:

- delivery status notifications (RFC 3464, ``multipart/report; report-type=delivery-status``):
  one record per recipient block of the ``message/delivery-status`` part;
- complaint reports (ARF, RFC 5965, ``report-type=feedback-report``): one record for the
  complaining recipient;
- everything else that looks like a bounce (plain-text "undeliverable" notices from qmail, Exim,
  Exchange, webmail providers): recipients and their reasons found by layout, not by vendor.

The parser never classifies: ``digest.bounces.classify`` turns a record into a ``BounceKind``.
"""

from __future__ import annotations

import email
import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses
from typing import Literal

ReportKind = Literal["dsn", "arf", "heuristic"]

# An enhanced status code (RFC 3463): class.subject.detail.
STATUS_RE = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
# A basic SMTP reply code at the start of a reply ("550 ", "550-", "550:").
REPLY_RE = re.compile(r"(?<![\d.])([245]\d\d)(?=[\s\-:])")
ADDRESS_RE = re.compile(r"(?<![\w/=.+\-])[\w.!#$%&'*+?^`{}~\-]+@[\w\-]+(?:\.[\w\-]+)+")
VERP_RE = re.compile(r"\bbounces\+([A-Za-z0-9._=\-]+)@([\w.\-]+)", re.IGNORECASE)

# Where the returned copy of the original message starts in a plain-text bounce: a separator
# line naming the original/returned message, or the first unindented trace header.
_ORIGINAL_SEPARATOR = re.compile(
    r"^[\s\-=_*|>]*(?:"
    r"[-=_*|]{2,}.*(?:original|returned|undelivered|unsent|copy of|message text)"
    r"|.*below this line is a copy"
    r"|original message follows"
    r"|-+\s*original message\s*-+"
    r"|this is a copy of the message"
    r")",
    re.IGNORECASE | re.MULTILINE,
)
_TRACE_HEADER = re.compile(
    r"^(?:Return-Path|Received|X-[\w\-]+|Message-I[dD]|DKIM-Signature|ARC-[\w\-]+"
    r"|Authentication-Results|Delivered-To|Content-Type|MIME-Version):[ \t]",
    re.MULTILINE | re.IGNORECASE,
)
# A line that names a recipient first: "<a@b>:", "  a@b", "a@b ... unknown", "RCPT TO:<a@b>".
_RECIPIENT_LINE = re.compile(
    r"^[ \t]*(?:[-*>]\s*)?(?:[245]\d\d[ \t-]+|(?:>>>\s*)?RCPT\s+TO:\s*)?"
    r"(?:(?:Final-Recipient|Original-Recipient|Recipient(?: address)?)"
    r":[ \t]*(?:rfc822;)?[ \t]*)?[<\"']?(" + ADDRESS_RE.pattern + r")[>\"']?",
    re.MULTILINE | re.IGNORECASE,
)
# Address headers the original message may carry that can hold a VERP return path.
# The SMTP stage the receiver refused at: a refusal at connection or MAIL FROM is about the
# sender, and one after the message content (end of DATA) is a judgement of that content.
_PHASES = (
    (
        "connect",
        re.compile(
            r"after (?:the )?initial connection|refused to talk to me"
            r"|in reply to (?:the )?(?:initial )?greeting|during (?:the )?(?:greeting|banner)"
            r"|connection (?:was )?rejected",
            re.IGNORECASE,
        ),
    ),
    ("mail", re.compile(r"(?:in reply to|after) MAIL(?: FROM)?(?: command)?\b", re.IGNORECASE)),
    (
        "rcpt",
        re.compile(r"(?:in reply to|after) RCPT(?: TO)?|RCPT command|\[RCPT_TO\]", re.IGNORECASE),
    ),
    (
        "data",
        re.compile(
            r"(?:in reply to|after) (?:end of )?DATA\b|for TEXT command|SMTP command DATA",
            re.IGNORECASE,
        ),
    ),
)
_ENVELOPE_HEADERS = ("Return-Path", "Errors-To", "Sender", "From")
_BOUNCE_ENVELOPE_HEADERS = ("X-Original-To", "Delivered-To", "Envelope-To", "To", "X-Envelope-To")


@dataclass(frozen=True, slots=True)
class BounceRecord:
    """One bounced (or complaining) recipient of one report."""

    source: str
    recipient: str
    report: ReportKind
    status: str | None = None
    diagnostic: str = ""
    smtp_code: int | None = None
    remote_mta: str | None = None
    dsn_action: str | None = None
    smtp_phase: str | None = None
    feedback_type: str | None = None
    original_message_id: str | None = None
    verp_token: str | None = None


def parse_report(raw: bytes, *, source: str, verp_domain: str = "") -> list[BounceRecord]:
    """Parse one message; return one record per bounced recipient (empty when none is found).

    ``verp_domain`` restricts VERP tokens to ``bounces+TOKEN@verp_domain``; empty accepts any
    domain. Never raises on malformed mail: what cannot be read is simply not reported.
    """
    message = email.message_from_bytes(raw)
    verp = _verp_token(message, verp_domain=verp_domain)
    original = _original_headers(message)
    message_id = _clean_id(original.get("Message-ID")) if original is not None else None
    if verp is None and original is not None:
        verp = _verp_token(original, verp_domain=verp_domain, headers=_ENVELOPE_HEADERS)
    common = {"source": source, "original_message_id": message_id, "verp_token": verp}

    feedback = _find_part(message, "message/feedback-report")
    if feedback is not None:
        return [_arf_record(message, feedback, original, common)]
    if original is not None and original.get("X-HmXmrOriginalRecipient"):
        # Microsoft's junk-mail reporting program: a complaint without the ARF wrapper.
        return [
            BounceRecord(
                recipient=_first_address(original.get_all("X-HmXmrOriginalRecipient", [])),
                report="arf",
                feedback_type="abuse",
                diagnostic=_one_line(str(message.get("Subject", ""))),
                **common,  # type: ignore[arg-type]
            )
        ]
    status_part = _find_part(message, "message/delivery-status")
    blocks = _field_blocks(status_part) if status_part is not None else _dsn_blocks_in(raw)
    records = _dsn_records(message, blocks, common)
    return records or _heuristic_records(message, original, common)


# --- RFC 5965 -----------------------------------------------------------------------------


def _arf_record(
    message: Message, part: Message, original: Message | None, common: dict[str, str | None]
) -> BounceRecord:
    fields = _field_blocks(part)
    report = fields[0] if fields else Message()
    recipient = _first_address(report.get_all("Original-Rcpt-To", []))
    if not recipient and original is not None:
        recipient = _first_address(original.get_all("To", []))
    if not recipient:
        recipient = _first_address(report.get_all("Removal-Recipient", []))
    return BounceRecord(
        recipient=recipient or "",
        report="arf",
        feedback_type=(report.get("Feedback-Type") or "abuse").strip().lower(),
        diagnostic=_one_line(_text_of(message, limit=600)),
        **common,  # type: ignore[arg-type]
    )


# --- RFC 3464 -----------------------------------------------------------------------------


def _dsn_records(
    message: Message, blocks: list[Message], common: dict[str, str | None]
) -> list[BounceRecord]:
    explanation = _text_of(message, limit=4000)
    records: list[BounceRecord] = []
    for block in blocks:
        recipient = _address_field(block.get("Final-Recipient")) or _address_field(
            block.get("Original-Recipient")
        )
        if not recipient:
            continue
        diagnostic = _one_line(_strip_type(block.get("Diagnostic-Code", "")))
        nearby = _one_line(_reason_near(explanation, recipient))
        if not diagnostic:
            # Some servers leave the reason to the human-readable part only.
            diagnostic = nearby
        status = _status(block.get("Status"), diagnostic)
        records.append(
            BounceRecord(
                recipient=recipient,
                report="dsn",
                status=status,
                diagnostic=diagnostic,
                smtp_code=_reply_code(diagnostic),
                remote_mta=_strip_type(block.get("Remote-MTA", "")) or None,
                dsn_action=(block.get("Action") or "").strip().lower() or None,
                smtp_phase=_phase(f"{diagnostic} {nearby}"),
                **common,  # type: ignore[arg-type]
            )
        )
    return records


def _field_blocks(part: Message) -> list[Message]:
    """The header blocks of a report part, however the parser stored them."""
    payload = part.get_payload()
    if isinstance(payload, list):
        pieces: list[str] = []
        for block in payload:
            if isinstance(block, Message):
                pieces.append("".join(f"{k}: {v}\n" for k, v in block.items()))
                body = block.get_payload()
                if isinstance(body, str) and body.strip():
                    pieces.append(body)
        return _split_blocks("\n".join(pieces))
    text = payload if isinstance(payload, str) else ""
    if part.get("Content-Transfer-Encoding", "").lower() in {"base64", "quoted-printable"}:
        raw = part.get_payload(decode=True)
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else text
    return _split_blocks(text)


def _dsn_blocks_in(raw: bytes) -> list[Message]:
    """DSN field blocks found in the raw text when the MIME structure is broken (a stray space
    before a boundary, a missing boundary parameter): the fields are still there, line by line."""
    text = raw.decode("utf-8", "replace")
    if not re.search(r"^Final-Recipient:", text, re.MULTILINE | re.IGNORECASE):
        return []
    return [b for b in _split_blocks(text) if b.get("Final-Recipient") and b.get("Action")]


def _split_blocks(text: str) -> list[Message]:
    """Header blocks separated by blank lines. Some servers omit the blank line between
    recipients, so a field that repeats within a block starts a new one."""
    chunks: list[list[str]] = [[]]
    for line in text.splitlines():
        name = re.match(r"([\w-]+):", line)
        if not line.strip():
            chunks.append([])
        elif (
            name
            and name.group(1).lower() in {"final-recipient", "original-recipient"}
            and any(seen.lower().startswith(name.group(1).lower() + ":") for seen in chunks[-1])
        ):
            # Original-Recipient may precede Final-Recipient: keep the pair together.
            previous = chunks[-1]
            carry = (
                [previous.pop()]
                if previous
                and previous[-1].lower().startswith("original-recipient:")
                and name.group(1).lower() == "final-recipient"
                else []
            )
            chunks.append([*carry, line])
        else:
            chunks[-1].append(line)
    parser = HeaderParser()
    return [parser.parsestr("\n".join(chunk) + "\n") for chunk in chunks if chunk]


def _status(field: str | None, diagnostic: str) -> str | None:
    """The most specific enhanced status: the Status field, unless it is generic (x.0.0) and the
    diagnostic names a more specific one."""
    declared = STATUS_RE.search(field or "")
    found = STATUS_RE.search(diagnostic)
    if declared and found and declared.group(2) == "0" and declared.group(3) == "0":
        return found.group(0)
    if declared:
        return declared.group(0)
    return found.group(0) if found else None


# --- everything else ----------------------------------------------------------------------


def _heuristic_records(
    message: Message, original: Message | None, common: dict[str, str | None]
) -> list[BounceRecord]:
    text = _report_text(message)
    senders = _sender_addresses(message, original)
    lines = [(m.start(), m.end(), _normalise(m.group(1))) for m in _RECIPIENT_LINE.finditer(text)]
    # Every recipient line ends the previous recipient's reason, even a repeated one (some
    # notices list everyone twice, in two languages); only the first mention is reported.
    lines = [line for line in lines if line[2] not in senders and not _is_daemon(line[2])]
    found: list[tuple[str, str]] = []
    seen: set[str] = set()
    for index, (_start, end, address) in enumerate(lines):
        if address in seen:
            continue
        seen.add(address)
        stop = lines[index + 1][0] if index + 1 < len(lines) else len(text)
        found.append((address, _reason_after(text, end, stop)))
    if not found:
        # No line starts with an address: take the addresses the notice mentions anywhere,
        # preferring those the returned message was addressed to.
        mentioned = []
        for match in ADDRESS_RE.finditer(text):
            address = _normalise(match.group(0))
            if address not in senders and not _is_daemon(address) and address not in mentioned:
                mentioned.append(address)
        addressed = {_normalise(a) for _, a in getaddresses(_all(original, ("To", "Cc")))}
        if len(mentioned) > 1 and addressed & set(mentioned):
            mentioned = [a for a in mentioned if a in addressed]
        found = [(address, _one_line(text)) for address in mentioned]
    if not found and original is not None:
        # The notice names nobody: fall back to whom the returned message was addressed.
        address = _first_address(original.get_all("To", []))
        if address and address not in senders:
            found.append((address, _one_line(text)))
    return [
        BounceRecord(
            recipient=address,
            report="heuristic",
            status=_status(None, reason),
            diagnostic=reason[:1000],
            smtp_code=_reply_code(reason),
            smtp_phase=_phase(reason),
            **common,  # type: ignore[arg-type]
        )
        for address, reason in found
    ]


def _reason_after(text: str, end: int, stop: int) -> str:
    """The reason given for one recipient: the rest of its line when that says something
    (``550 <a@b>... User unknown``), plus indented continuation lines; else everything up to the
    next recipient (``<a@b>:`` followed by the reason); else the whole notice."""
    block = text[end:stop]
    first, _, rest = block.partition("\n")
    same_line = first.strip(" \t:.>-\"'")
    if len(same_line) >= 12:
        continuation = []
        for line in rest.splitlines():
            if not line.strip() or not line[:1].isspace():
                break
            continuation.append(line)
        return _one_line(" ".join([first, *continuation]).strip(" \t:.>-"))
    reason = _one_line(block.strip(" \t:.>-"))
    return reason if len(reason) >= 8 else _one_line(text)


def _report_text(message: Message) -> str:
    """The human-readable notice, cut where the returned original message begins."""
    text = _text_of(message, limit=20000)
    cut = len(text)
    separator = _ORIGINAL_SEPARATOR.search(text)
    if separator:
        cut = separator.start()
    header = _TRACE_HEADER.search(text)
    if header and header.start() < cut:
        cut = header.start()
    return text[:cut]


def _sender_addresses(message: Message, original: Message | None) -> set[str]:
    """Addresses on the sending side: the bounce goes to them, so they are never recipients."""
    found: set[str] = set()
    for name in ("To", "Cc", "Delivered-To", "X-Original-To", "From", "Reply-To", "Sender"):
        found.update(_normalise(a) for _, a in getaddresses(message.get_all(name, [])) if a)
    if original is not None:
        for name in ("From", "Return-Path", "Sender", "Reply-To", "Errors-To"):
            found.update(_normalise(a) for _, a in getaddresses(original.get_all(name, [])) if a)
    found.discard("")
    return found


def _all(message: Message | None, names: Iterable[str]) -> list[str]:
    if message is None:
        return []
    return [str(v) for name in names for v in message.get_all(name, [])]


def _is_daemon(address: str) -> bool:
    local = address.partition("@")[0]
    return local in {"mailer-daemon", "postmaster", "root"} and "." not in local


def _phase(text: str) -> str | None:
    for name, pattern in _PHASES:
        if pattern.search(text):
            return name
    return None


def _reason_near(text: str, recipient: str) -> str:
    """The lines of the human-readable part that mention ``recipient``, plus the next few."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if recipient.lower() in line.lower():
            return " ".join(lines[index : index + 4])
    return ""


# --- shared helpers -----------------------------------------------------------------------


def _find_part(message: Message, content_type: str) -> Message | None:
    for part in message.walk():
        if part.get_content_type() == content_type:
            return part
    return None


def _original_headers(message: Message) -> Message | None:
    """The headers of the returned original message, wherever the bounce put them."""
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
        if kind == "text/rfc822-headers":
            return HeaderParser().parsestr(_decoded(part))
    text = _text_of(message, limit=40000)
    separator = _ORIGINAL_SEPARATOR.search(text)
    header = _TRACE_HEADER.search(text, separator.end() if separator else 0)
    if header is None:
        return None
    block = text[header.start() :]
    return HeaderParser().parsestr(block.split("\n\n", 1)[0] + "\n")


def _text_of(message: Message, *, limit: int) -> str:
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
            texts.append(_decoded(part))
        elif kind == "text/html":
            html.append(re.sub(r"<[^>]+>", " ", _decoded(part)))
    return "\n".join(texts or html).replace("\r\n", "\n")[:limit]


def _decoded(part: Message) -> str:
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        payload = part.get_payload()
        return payload if isinstance(payload, str) else ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return raw.decode(charset, "replace")
    except LookupError:
        return raw.decode("utf-8", "replace")


def _verp_token(
    message: Message, *, verp_domain: str, headers: Iterable[str] = _BOUNCE_ENVELOPE_HEADERS
) -> str | None:
    for name in headers:
        for value in message.get_all(name, []):
            for match in VERP_RE.finditer(str(value)):
                if not verp_domain or match.group(2).lower() == verp_domain.lower():
                    return match.group(1)
    return None


def _address_field(value: str | None) -> str:
    """``rfc822; someone@example.org`` → ``someone@example.org``."""
    if not value:
        return ""
    address = _strip_type(value).strip().strip("<>")
    found = ADDRESS_RE.search(address)
    return _normalise(found.group(0)) if found else _normalise(address)


def _first_address(values: Iterable[str]) -> str:
    for _, address in getaddresses([str(v) for v in values]):
        if "@" in address:
            return _normalise(address)
    return ""


def _strip_type(value: str) -> str:
    """Drop the ``type;`` prefix of a DSN field (``smtp;``, ``dns;``, ``rfc822;``)."""
    head, sep, tail = str(value).partition(";")
    return tail.strip() if sep and re.fullmatch(r"\s*[\w\-]+\s*", head) else str(value).strip()


def _reply_code(text: str) -> int | None:
    match = REPLY_RE.search(text)
    return int(match.group(1)) if match else None


def _clean_id(value: str | None) -> str | None:
    if not value:
        return None
    found = re.search(r"<[^<>\s]+>", str(value))
    return found.group(0) if found else str(value).strip() or None


def _normalise(address: str) -> str:
    return address.strip().strip("<>").rstrip(".").lower()


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()
