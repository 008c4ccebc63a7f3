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

from digest.bounces.mime import (
    ADDRESS_RE,
    ENVELOPE_HEADERS,
    ORIGINAL_SEPARATOR,
    TRACE_HEADER,
    address_field,
    clean_id,
    find_part,
    find_verp_token,
    first_address,
    normalise,
    one_line,
    original_headers,
    reply_code,
    strip_type,
    text_of,
)

ReportKind = Literal["dsn", "arf", "heuristic"]

# An enhanced status code (RFC 3463): class.subject.detail.
STATUS_RE = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")

# A line that names a recipient first: "<a@b>:", "  a@b", "a@b ... unknown", "RCPT TO:<a@b>".
_RECIPIENT_LINE = re.compile(
    r"^[ \t]*(?:[-*>]\s*)?(?:[245]\d\d[ \t-]+|(?:>>>\s*)?RCPT\s+TO:\s*)?"
    r"(?:(?:Final-Recipient|Original-Recipient|Recipient(?: address)?)"
    r":[ \t]*(?:rfc822;)?[ \t]*)?[<\"']?(" + ADDRESS_RE.pattern + r")[>\"']?",
    re.MULTILINE | re.IGNORECASE,
)

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
    verp = find_verp_token(message, verp_domain=verp_domain)
    original = original_headers(message)
    message_id = clean_id(original.get("Message-ID")) if original is not None else None
    if verp is None and original is not None:
        verp = find_verp_token(original, verp_domain=verp_domain, headers=ENVELOPE_HEADERS)
    common = {"source": source, "original_message_id": message_id, "verp_token": verp}

    feedback = find_part(message, "message/feedback-report")
    if feedback is not None:
        return [_arf_record(message, feedback, original, common)]
    if original is not None and original.get("X-HmXmrOriginalRecipient"):
        # Microsoft's junk-mail reporting program: a complaint without the ARF wrapper.
        return [
            BounceRecord(
                recipient=first_address(original.get_all("X-HmXmrOriginalRecipient", [])),
                report="arf",
                feedback_type="abuse",
                diagnostic=one_line(str(message.get("Subject", ""))),
                **common,  # type: ignore[arg-type]
            )
        ]
    status_part = find_part(message, "message/delivery-status")
    blocks = _field_blocks(status_part) if status_part is not None else _dsn_blocks_in(raw)
    records = _dsn_records(message, blocks, common)
    return records or _heuristic_records(message, original, common)


# --- RFC 5965 -----------------------------------------------------------------------------


def _arf_record(
    message: Message, part: Message, original: Message | None, common: dict[str, str | None]
) -> BounceRecord:
    fields = _field_blocks(part)
    report = fields[0] if fields else Message()
    recipient = first_address(report.get_all("Original-Rcpt-To", []))
    if not recipient and original is not None:
        recipient = first_address(original.get_all("To", []))
    if not recipient:
        recipient = first_address(report.get_all("Removal-Recipient", []))
    return BounceRecord(
        recipient=recipient or "",
        report="arf",
        feedback_type=(report.get("Feedback-Type") or "abuse").strip().lower(),
        diagnostic=one_line(text_of(message, limit=600)),
        **common,  # type: ignore[arg-type]
    )


# --- RFC 3464 -----------------------------------------------------------------------------


def _dsn_records(
    message: Message, blocks: list[Message], common: dict[str, str | None]
) -> list[BounceRecord]:
    explanation = text_of(message, limit=4000)
    records: list[BounceRecord] = []
    for block in blocks:
        recipient = address_field(block.get("Final-Recipient")) or address_field(
            block.get("Original-Recipient")
        )
        if not recipient:
            continue
        diagnostic = one_line(strip_type(block.get("Diagnostic-Code", "")))
        nearby = one_line(_reason_near(explanation, recipient))
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
                smtp_code=reply_code(diagnostic),
                remote_mta=strip_type(block.get("Remote-MTA", "")) or None,
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
    lines = [(m.start(), m.end(), normalise(m.group(1))) for m in _RECIPIENT_LINE.finditer(text)]
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
            address = normalise(match.group(0))
            if address not in senders and not _is_daemon(address) and address not in mentioned:
                mentioned.append(address)
        addressed = {normalise(a) for _, a in getaddresses(_all(original, ("To", "Cc")))}
        if len(mentioned) > 1 and addressed & set(mentioned):
            mentioned = [a for a in mentioned if a in addressed]
        found = [(address, one_line(text)) for address in mentioned]
    if not found and original is not None:
        # The notice names nobody: fall back to whom the returned message was addressed.
        address = first_address(original.get_all("To", []))
        if address and address not in senders:
            found.append((address, one_line(text)))
    return [
        BounceRecord(
            recipient=address,
            report="heuristic",
            status=_status(None, reason),
            diagnostic=reason[:1000],
            smtp_code=reply_code(reason),
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
        return one_line(" ".join([first, *continuation]).strip(" \t:.>-"))
    reason = one_line(block.strip(" \t:.>-"))
    return reason if len(reason) >= 8 else one_line(text)


def _report_text(message: Message) -> str:
    """The human-readable notice, cut where the returned original message begins."""
    text = text_of(message, limit=20000)
    cut = len(text)
    separator = ORIGINAL_SEPARATOR.search(text)
    if separator:
        cut = separator.start()
    header = TRACE_HEADER.search(text)
    if header and header.start() < cut:
        cut = header.start()
    return text[:cut]


def _sender_addresses(message: Message, original: Message | None) -> set[str]:
    """Addresses on the sending side: the bounce goes to them, so they are never recipients."""
    found: set[str] = set()
    for name in ("To", "Cc", "Delivered-To", "X-Original-To", "From", "Reply-To", "Sender"):
        found.update(normalise(a) for _, a in getaddresses(message.get_all(name, [])) if a)
    if original is not None:
        for name in ("From", "Return-Path", "Sender", "Reply-To", "Errors-To"):
            found.update(normalise(a) for _, a in getaddresses(original.get_all(name, [])) if a)
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
