"""Header values as they may go on the wire: no CR/LF or other control bytes (header
injection is refused, never passed through), addresses in ASCII (IDN domains as punycode),
display names and subjects plain, quoted or as RFC 2047 encoded words, folded to stay under the
line limit. ``split_headers`` reads a header block back into raw fields (for DKIM).
"""

from __future__ import annotations

import re
from base64 import b64encode

from digest.errors import InputError

_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# RFC 5322 "specials" plus the characters that start an encoded word: a display name holding any
# of them is sent as a quoted string.
_NEEDS_QUOTING = re.compile(r'[()<>\[\]:;@\\,."]|=\?')


def check_header_value(value: str, *, field: str) -> str:
    """Return ``value`` unchanged; raise InputError if it holds CR, LF or another control byte."""
    if _CONTROL_RE.search(value):
        raise InputError(
            f"{field} {value[:60]!r} contains a line break or control character; "
            "remove it (header injection is refused)"
        )
    return value


def ascii_address(address: str, *, field: str) -> str:
    """The address as it goes into headers and the envelope: IDN domains become punycode.

    Raises InputError for a malformed address or a non-ASCII local part (that needs SMTPUTF8).
    """
    check_header_value(address, field=field)
    local, at, domain = address.strip().rpartition("@")
    if not at or not local or not domain or any(c in address for c in ' <>(),;:"'):
        raise InputError(f"{field} {address!r} is not a plain address like name@example.org")
    if not local.isascii():
        raise InputError(f"{field} {address!r} has a non-ASCII local part; it cannot be sent")
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            raise InputError(f"{field} {address!r} has an invalid domain") from None
    return f"{local}@{domain}"


def encode_phrase(text: str, *, field: str) -> str:
    """A display name or List-Id label as header text: plain, quoted, or RFC 2047 base64 words."""
    check_header_value(text, field=field)
    if text.isascii():
        if not _NEEDS_QUOTING.search(text):
            return text
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return encoded_words(text)


def encoded_words(text: str) -> str:
    """RFC 2047 ``=?utf-8?b?...?=`` words of at most 75 characters, folded with CRLF SP."""
    words: list[str] = []
    chunk = b""
    for char in text:
        piece = char.encode("utf-8")
        # 45 raw bytes -> 60 base64 characters -> 72-character word with the =?utf-8?b? frame.
        if len(chunk) + len(piece) > 45:
            words.append(chunk.decode("utf-8"))
            chunk = b""
        chunk += piece
    words.append(chunk.decode("utf-8"))
    return "\r\n ".join(f"=?utf-8?b?{b64encode(w.encode()).decode()}?=" for w in words if w)


def encode_unstructured(text: str, *, field: str) -> str:
    """Subject text: plain ASCII folded at spaces, or encoded words when it needs encoding."""
    check_header_value(text, field=field)
    if not text.isascii() or "=?" in text:
        return encoded_words(text)
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > 70:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return "\r\n ".join(lines)


def format_address(name: str, address: str, *, field: str) -> str:
    """``Name <addr>`` (or the bare address when there is no name), safely encoded."""
    addr = ascii_address(address, field=field)
    if not name.strip():
        return addr
    return f"{encode_phrase(name.strip(), field=field)} <{addr}>"


def split_headers(message: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Parse raw header fields ``(name, raw value incl. folding)`` and the body from bytes."""
    head, sep, body = message.partition(b"\r\n\r\n")
    if not sep:
        head, body = message, b""
    fields: list[tuple[bytes, bytes]] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + b"\r\n" + line)
        elif line:
            name, _, value = line.partition(b":")
            fields.append((name, value))
    return fields, body
