"""Per-recipient message bytes from a per-issue, pre-encoded template.

``MessageTemplate.build`` does the expensive work once per issue: it quoted-printable encodes the
text and HTML parts, fixes the headers every copy shares, picks the MIME boundary and, for DKIM,
precomputes the relaxed canonical form of every fixed piece of the body. ``render`` then only
splices the recipient's values (unsubscribe and preferences links, name) into the encoded body,
writes the handful of per-recipient headers and, with a signer, signs the result.

Every value is spliced in at the start of an encoded line and closed with a soft line break, so
the pieces never share a line: the relaxed body canonicalization of the whole is the concatenation
of the canonical pieces, and no line ever starts with a dot. The bytes that come out are already
what goes on the wire (CRLF only, no line over 76 octets in the body or 998 in the headers, no
dot-stuffing needed), which lets ``send.smtp`` skip aiosmtplib's normalisation passes.
"""

from __future__ import annotations

import functools
import hashlib
import html
import itertools
import os
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from digest.errors import InputError
from digest.render.context import PLACEHOLDERS
from digest.render.personalise import recipient_values
from digest.send.headers import (
    ascii_address,
    check_header_value,
    encode_phrase,
    encode_unstructured,
    format_address,
)
from digest.settings import Settings

if TYPE_CHECKING:
    from digest.send.dkim import DkimSigner

_PLACEHOLDER_RE = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS))
_WSP_RUN = re.compile(rb"[ \t]+")
_MAX_QP_LINE = 75  # 76 with the soft-break "="
# Characters a spliced value keeps as they are: printable ASCII but "=" (and no whitespace).
_LITERAL_VALUE = re.compile(r"[!-<>-~]*")

# One token per byte: printable ASCII stays literal, everything else is =XX. "=" is always
# encoded; space and tab stay literal inside a line (their trailing form is fixed up below).
_QP_TOKEN = [
    chr(b) if (33 <= b <= 126 and b != 61) or b in (9, 32) else f"={b:02X}" for b in range(256)
]
# Values spliced per recipient encode space and tab too, so that their canonical form is the
# encoded form itself (no runs of whitespace to compress).
_QP_VALUE_TOKEN = [t if t not in (" ", "\t") else f"={ord(t):02X}" for t in _QP_TOKEN]


class WireBytes(bytes):
    """Bytes already in SMTP DATA form: CRLF line endings only, ending in CRLF, and no line
    starting with "." (so nothing to dot-stuff). ``MessageTemplate.render`` returns these (the
    property tests check it), and ``send.smtp`` skips its cleanliness scan for them."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Recipient:
    email: str
    name: str
    unsubscribe_url: str
    preferences_url: str
    delivery_id: int | None = None
    verp_token: str | None = None


class _IdSource:
    """Unique parts for Message-IDs: a random per-process prefix (drawn again in a forked
    child) and a counter, so that minting one costs no system call."""

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.prefix = secrets.token_hex(6)
        self.counter = itertools.count()


_IDS = _IdSource()


def new_message_id(*, settings: Settings) -> str:
    """A fresh ``<...@sender_domain>`` Message-ID: time-ordered, then 48 random bits per process
    and a counter."""
    return f"<{time.time_ns():x}.{_IDS.prefix}{next(_IDS.counter):x}@{settings.sender_domain}>"


def qp_lines(text: str, *, value: bool = False) -> list[str]:
    """Quoted-printable encode ``text`` into physical lines (no line endings attached).

    Hard line breaks become separate entries; long lines are wrapped with a trailing ``=`` (soft
    break) at 76 characters. Trailing whitespace and a leading dot are encoded, so no line ever
    starts with "." (nothing for SMTP to dot-stuff) and none ends in whitespace.
    """
    table = _QP_VALUE_TOKEN if value else _QP_TOKEN
    out: list[str] = []
    hard_lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for index, hard in enumerate(hard_lines):
        tokens = [table[b] for b in hard.encode("utf-8")]
        if tokens and tokens[-1] in (" ", "\t"):
            tokens[-1] = f"={ord(tokens[-1]):02X}"
        line = ""
        for token in tokens:
            if len(line) + len(token) > _MAX_QP_LINE:
                out.append(line + "=")
                line = ""
            line += "=2E" if not line and token == "." else token
        out.append(line)
        del index
    return out


# A slot is the index of one recipient value: the placeholder's position in PLACEHOLDERS, plus
# len(PLACEHOLDERS) in the HTML part (where values are HTML-escaped).
_Slot = int


def _encode_part(text: str, *, part: str) -> list[bytes | _Slot]:
    """Split a part at its placeholders and encode each fixed piece on lines of its own."""
    offset = 0 if part == "text" else len(PLACEHOLDERS)
    pieces: list[bytes | _Slot] = []
    position = 0
    for match in _PLACEHOLDER_RE.finditer(text):
        fixed = text[position : match.start()]
        if fixed:
            # The piece stops mid-line: close it with a soft break so the value starts a line.
            pieces.append(("\r\n".join(qp_lines(fixed)) + "=\r\n").encode("ascii"))
        pieces.append(offset + PLACEHOLDERS.index(match.group()))
        position = match.end()
    rest = text[position:]
    pieces.append(("\r\n".join(qp_lines(rest)) + "\r\n").encode("ascii"))
    return pieces


def _encode_value(value: str) -> bytes:
    """One spliced value: encoded lines of its own, closed with a soft break.

    A line break inside a value (never meaningful in a name or a URL) becomes a space.
    """
    if not value:
        return b""
    if _LITERAL_VALUE.fullmatch(value):
        # Nothing to escape (a link, a plain name): qp_lines would only cut it into lines.
        lines = [value[i : i + _MAX_QP_LINE] for i in range(0, len(value), _MAX_QP_LINE)]
        if not any(line.startswith(".") for line in lines):
            return ("=\r\n".join(lines) + "=\r\n").encode("ascii")
    flat = value.replace("\r\n", " ").replace("\r", " ").replace("\n", " ")
    return ("\r\n".join(qp_lines(flat, value=True)) + "=\r\n").encode("ascii")


def relaxed_body_piece(piece: bytes) -> bytes:
    """Relaxed canonical form (RFC 6376 3.4.4) of whole encoded lines with no trailing WSP."""
    return _WSP_RUN.sub(b" ", piece)


class MessageTemplate:
    """Everything about one issue's message that does not depend on the recipient."""

    _pieces: list[bytes]
    _slots: tuple[tuple[int, int], ...]
    _canonical_rest: list[bytes]
    _prefix_hash: hashlib._Hash
    _first_slot: int
    _fixed_headers: bytes
    _tail_headers: tuple[str, str]
    _subject: str
    _from: str
    _list_post: str
    _mailto: str
    _envelope_from: str
    _verp_domain: str
    signer: DkimSigner | None

    def __init__(self) -> None:
        raise TypeError("use MessageTemplate.build(...)")

    @classmethod
    def build(
        cls,
        *,
        subject: str,
        html: str,
        text: str,
        settings: Settings,
        list_kind: str = "digest",
        campaign: str,
        from_email: str | None = None,
        from_name: str | None = None,
        signer: DkimSigner | None = None,
    ) -> MessageTemplate:
        """Pre-encode one issue. Raises InputError for a header value that cannot be sent."""
        self = object.__new__(cls)
        sender = from_email or settings.from_email
        self._from = format_address(
            settings.from_name if from_name is None else from_name, sender, field="From"
        )
        self._subject = encode_unstructured(subject.strip(), field="Subject")
        domain = settings.sender_domain
        list_label = encode_phrase(settings.newsletter_name, field="newsletter name")
        list_id = f"{_atom(settings.newsletter_id)}.{domain}"
        feedback = ":".join(_atom(x) for x in (campaign, settings.newsletter_id, list_kind, domain))
        boundary = f"=_digest_{secrets.token_hex(12)}"
        self._fixed_headers = f"From: {self._from}\r\nSubject: {self._subject}\r\n".encode()
        tail = [
            f"List-Id: {list_label} <{list_id}>",
        ]
        self._list_post = "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
        self._mailto = f"unsubscribe@{domain}"
        tail_after = [f"Feedback-ID: {feedback}"]
        if settings.reply_to:
            tail_after.append(f"Reply-To: {ascii_address(settings.reply_to, field='Reply-To')}")
        tail_after += [
            "MIME-Version: 1.0",
            f'Content-Type: multipart/alternative; boundary="{boundary}"',
        ]
        self._tail_headers = ("\r\n".join(tail) + "\r\n", "\r\n".join(tail_after) + "\r\n")
        self._envelope_from = ascii_address(sender, field="From")
        self._verp_domain = settings.verp_domain
        self.signer = signer

        part_head = (
            'Content-Type: text/{kind}; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        )
        pieces: list[bytes | _Slot] = [f"--{boundary}\r\n{part_head.format(kind='plain')}".encode()]
        pieces += _encode_part(text, part="text")
        pieces.append(f"--{boundary}\r\n{part_head.format(kind='html')}".encode())
        pieces += _encode_part(html, part="html")
        pieces.append(f"--{boundary}--\r\n".encode())
        # Merge neighbouring fixed pieces so rendering joins as few objects as possible.
        merged: list[bytes | _Slot] = []
        for piece in pieces:
            if isinstance(piece, bytes) and merged and isinstance(merged[-1], bytes):
                merged[-1] += piece
            else:
                merged.append(piece)
        # Rendering copies these lists and writes the recipient's values into the slots.
        self._pieces = [p if isinstance(p, bytes) else b"" for p in merged]
        self._slots = tuple((i, p) for i, p in enumerate(merged) if not isinstance(p, bytes))
        # The relaxed body hash covers the canonical pieces; everything before the first slot
        # is hashed once here and the hash state copied per recipient.
        first = self._slots[0][0] if self._slots else len(merged)
        canonical = [relaxed_body_piece(p) for p in self._pieces]
        self._prefix_hash = hashlib.sha256(b"".join(canonical[:first]))
        self._canonical_rest = canonical[first:]
        self._first_slot = first
        return self

    def envelope_from(self, recipient: Recipient) -> str:
        """MAIL FROM: ``bounces+TOKEN@verp_domain`` with VERP on, else the From address."""
        if self._verp_domain and recipient.verp_token:
            token = _atom(recipient.verp_token)
            return f"bounces+{token}@{self._verp_domain}"
        return self._envelope_from

    def _values(self, recipient: Recipient) -> list[bytes]:
        """The encoded values, indexed like the slots: text part first, then HTML-escaped."""
        # The same values, and the same stand-in for a missing name, as render.Personaliser.
        filled = recipient_values(
            unsubscribe_url=recipient.unsubscribe_url,
            preferences_url=recipient.preferences_url,
            name=recipient.name,
        )
        raw = tuple(filled[p] for p in PLACEHOLDERS)
        return [_encode_value(v) for v in raw] + [
            _encode_value(html.escape(v, quote=True)) for v in raw
        ]

    def _headers(self, recipient: Recipient, *, date: datetime, message_id: str) -> list[str]:
        url = recipient.unsubscribe_url
        check_header_value(url, field="unsubscribe URL")
        check_header_value(message_id, field="Message-ID")
        if any(c in url for c in " <>,") or not url.startswith(("https://", "http://")):
            raise InputError(f"unsubscribe URL {url!r} is not a plain http(s) URL")
        token = urlsplit(url).path.rstrip("/").rpartition("/")[2] or "list"
        mailto = f"mailto:{self._mailto}?subject=unsubscribe-{token}"
        unsubscribe = f"List-Unsubscribe: <{url}>,\r\n <{mailto}>\r\n"
        # RFC 8058 one-click is defined for https only; an http link keeps the plain header.
        post = self._list_post if url.startswith("https://") else ""
        return [
            f"To: {format_address(recipient.name, recipient.email, field='To')}\r\n",
            f"Date: {_date_header(date.replace(microsecond=0))}\r\n",
            f"Message-ID: {message_id}\r\n",
            self._tail_headers[0],
            unsubscribe,
            post,
            self._tail_headers[1],
        ]

    def render(self, recipient: Recipient, *, date: datetime, message_id: str) -> bytes:
        """The final CRLF bytes for one recipient, DKIM-signed when the template has a signer.

        Raises InputError when a recipient value would break a header (CR/LF, bad address).
        """
        header_lines = self._headers(recipient, date=date, message_id=message_id)
        values = self._values(recipient)
        pieces = self._pieces.copy()
        for index, slot in self._slots:
            pieces[index] = values[slot]
        body = b"".join(pieces)
        head = self._fixed_headers + "".join(header_lines).encode("ascii")
        if self.signer is None:
            return WireBytes(head + b"\r\n" + body)
        # Values are encoded so that their canonical form is themselves (see qp_lines).
        first = self._first_slot
        rest = self._canonical_rest.copy()
        for index, slot in self._slots:
            rest[index - first] = values[slot]
        body_hash = self._prefix_hash.copy()
        body_hash.update(b"".join(rest))
        signature = self.signer.signature_for(
            head, body_hash=body_hash.digest(), timestamp=int(date.timestamp())
        )
        return WireBytes(b"".join((signature, head, b"\r\n", body)))


@functools.lru_cache(maxsize=4)
def _date_header(date: datetime) -> str:
    # A send formats the same second for every message it hands over in that second.
    return format_datetime(date)


def _atom(value: str) -> str:
    """``value`` reduced to characters safe in List-Id, Feedback-ID and VERP local parts."""
    cleaned = re.sub(r"[^A-Za-z0-9._=-]", "-", value).strip("-.")
    return cleaned or "x"
