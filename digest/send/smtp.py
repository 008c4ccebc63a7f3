"""SMTP: a pool of persistent aiosmtplib connections, and the one place SMTP errors are translated.

aiosmtplib does not pipeline, so throughput comes from several connections, each reused for many
messages and recycled after ``recycle_after``. TLS is explicit: ``tls="starttls"`` passes
``start_tls=True``, ``tls="tls"`` passes ``use_tls=True``, ``tls="none"`` passes
``start_tls=False`` (aiosmtplib's default would quietly upgrade or not, depending on the server).

Every failure leaves here as ``digest.errors.SendError``: ``permanent`` for 5xx answers to the
recipient or the message, temporary for 4xx, timeouts and dropped connections (the ledger retries
those with backoff); 421 closes the connection; a 4.7.28 ("slow down") answer raises ``Throttled``
and pauses the whole pool; a relay that cannot be reached, refuses our login or our sender raises
``RelayUnavailable`` so the send stops instead of burning through the list.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
from collections.abc import Awaitable, Sequence
from typing import Protocol

import aiosmtplib
from aiosmtplib.email import quote_address
from aiosmtplib.protocol import PERIOD_REGEX, SMTPProtocol, normalize_message_line_endings

from digest.errors import RelayUnavailable, SendError
from digest.send.message import WireBytes
from digest.send.ratelimit import Gate, RateLimiter
from digest.settings import Settings

QUOTA_PAUSE = 600.0  # Gmail's 4.7.28: stop at least ten minutes


class Sender(Protocol):
    """Hands one message to the mail system. The SMTP pool and the in-memory twin implement it."""

    async def send(
        self,
        *,
        envelope_from: str,
        recipients: Sequence[str],
        message: bytes,
        handover_after: Awaitable[None] | None = None,
    ) -> None:
        """Raises SendError (``permanent``, ``code``) or RelayUnavailable.

        With ``handover_after``, the handover itself (for SMTP: the end-of-data marker) waits
        until it resolves; if it raises, the message is never handed over and its exception
        propagates. Several sends may wait for one future: a sender shields it, so that a
        cancelled send never cancels it for the others.
        """

    async def aclose(self) -> None: ...

    # Optional: ``async def ready(self) -> None`` returns when a message could start now (rate
    # limit, throttling pause). The send loop calls it, when present, before claiming a row, so
    # that rows do not sit in ``sending`` while the sender waits.


class Throttled(SendError):
    """The provider asked us to slow down (4.7.28); ``resume_at`` is a ``time.time()`` value."""

    def __init__(self, message: str, *, code: int, resume_at: float) -> None:
        super().__init__(message, permanent=False, code=code)
        self.resume_at = resume_at


def is_wire_clean(message: bytes) -> bool:
    """True when ``message`` needs no change for DATA: CRLF only, ends in CRLF, no leading dot.

    A handful of C-speed scans (about 20 µs for 80 KB) instead of aiosmtplib's regex passes.
    """
    crlf = message.count(b"\r\n")
    return (
        message.endswith(b"\r\n")
        and not message.startswith(b".")
        and b"\n." not in message
        and message.count(b"\n") == crlf
        and message.count(b"\r") == crlf
    )


# A bare ``local@domain`` (what digest sends to): no comments, quotes, brackets or spaces.
_BARE_ADDRESS = re.compile(r"[^\s<>()\[\]\\,;:\"@]+@[^\s<>()\[\]\\,;:\"@]+")


def _angle(address: str) -> bytes:
    """``<address>`` for MAIL and RCPT. A bare address is taken as it is; anything else goes
    through aiosmtplib's parser and checks (which cost more than the rest of the command)."""
    if _BARE_ADDRESS.fullmatch(address):
        return f"<{address}>".encode("ascii")
    return quote_address(address).encode("ascii")


def _resolved(gate: Awaitable[None]) -> bool:
    """``gate`` is a future that has already succeeded (so the handover need not wait)."""
    return (
        isinstance(gate, asyncio.Future)
        and gate.done()
        and not gate.cancelled()
        and gate.exception() is None
    )


class HandoverFailed(Exception):
    """The handover gate raised (its exception is ``__cause__``): nothing was handed over."""


class WireSMTP(aiosmtplib.SMTP):
    """aiosmtplib.SMTP with a DATA path for bytes that are already wire-ready.

    ``SMTP.data`` always runs two regular-expression passes (line endings, dot-stuffing) over the
    whole message, and ``sendmail`` a third to compute SIZE; for bytes that ``is_wire_clean``
    accepts they change nothing. ``send_wire`` checks cleanliness, normalises only when needed,
    and writes the bytes followed by the end-of-data marker through aiosmtplib's own protocol
    (``execute_command`` for DATA, ``protocol.write`` + ``protocol.read_response`` for the body).
    One connection is used by one task at a time (the pool guarantees it), so the body write does
    not need aiosmtplib's command lock.
    """

    async def send_wire(
        self,
        sender: str,
        recipients: Sequence[str],
        message: bytes,
        handover_after: Awaitable[None] | None = None,
    ) -> None:
        """MAIL, RCPT, DATA for ``message``; raises aiosmtplib errors (the pool translates).

        The server takes responsibility for a message only at the end-of-data marker. With
        ``handover_after``, the envelope and the whole body travel at once, and only the marker
        waits for it: the send loop overlaps its ledger commit with the transfer. If it raises,
        the connection is dropped mid-DATA (a server discards a transaction whose data never
        ended; RSET would be read as body text) and the exception propagates.
        """
        if not isinstance(message, WireBytes) and not is_wire_clean(message):
            message = PERIOD_REGEX.sub(b"..", normalize_message_line_endings(message))
        await self._ehlo_or_helo_if_needed()
        mail = [b"FROM:" + _angle(sender)]
        if self.supports_extension("size"):
            mail.append(b"SIZE=%d" % len(message))
        response = await self.execute_command(b"MAIL", *mail)
        if response.code != 250:
            raise aiosmtplib.SMTPSenderRefused(response.code, response.message, sender)
        refused = []
        for address in recipients:
            response = await self.execute_command(b"RCPT", b"TO:" + _angle(address))
            if response.code not in (250, 251):
                refused.append(
                    aiosmtplib.SMTPRecipientRefused(response.code, response.message, address)
                )
        if refused:
            # One recipient per message is how digest sends; a partial refusal would need a
            # per-address outcome, so any refusal aborts the transaction.
            await self._reset_quietly()
            raise refused[0]
        response = await self.execute_command(b"DATA")
        if response.code != 354:
            await self._reset_quietly()
            raise aiosmtplib.SMTPDataError(response.code, response.message)
        protocol = self.protocol
        if protocol is None:
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        try:
            if handover_after is None or _resolved(handover_after):
                # One write: the end-of-data marker travels with the body, not on its own.
                protocol.write(message + b".\r\n")
            else:
                protocol.write(message)
                try:
                    # Shielded: this task's cancellation must not cancel what others wait for.
                    await asyncio.shield(handover_after)
                except BaseException as exc:
                    self.close()
                    if isinstance(exc, Exception):
                        raise HandoverFailed() from exc
                    raise
                protocol.write(b".\r\n")
            # No await between the marker and read_response: the reply cannot arrive unclaimed.
            response = await protocol.read_response(timeout=self.timeout)
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
            self.close()
            raise
        if response.code != 250:
            raise aiosmtplib.SMTPDataError(response.code, response.message)

    _closing: SMTPProtocol | None = None

    def close(self) -> None:
        # Remember the protocol: a TLS connection finishes closing only after its shutdown
        # exchange, which ``wait_closed`` waits for.
        self._closing = self.protocol or self._closing
        super().close()

    async def wait_closed(self, timeout: float = 1.0) -> None:
        """Wait (bounded) until the connection closed completely, TLS shutdown included."""
        protocol = self._closing
        deadline = time.monotonic() + timeout
        while protocol is not None and protocol.transport is not None:
            if time.monotonic() > deadline:
                return
            await asyncio.sleep(0.005)

    async def _reset_quietly(self) -> None:
        try:
            await self.rset()
        except (aiosmtplib.SMTPException, OSError):
            self.close()


class _Connection:
    __slots__ = ("smtp", "used")

    def __init__(self, smtp: WireSMTP) -> None:
        self.smtp = smtp
        self.used = 0


class SmtpPool:
    """Up to ``connections`` persistent connections sharing one RateLimiter and one Gate."""

    def __init__(
        self,
        settings: Settings,
        *,
        limiter: RateLimiter | None = None,
        quota_pause: float = QUOTA_PAUSE,
        ramp_every: int = 50,
        connect_attempts: int = 3,
        connect_backoff: float = 1.0,
    ) -> None:
        self.host, self.port = settings.smtp_host, settings.smtp_port
        self._settings = settings
        self.limiter = limiter if limiter is not None else RateLimiter.from_settings(settings)
        self.gate = Gate(capacity=settings.smtp_connections, ramp_every=ramp_every, clock=time.time)
        self.quota_pause = quota_pause
        self._connect_attempts = connect_attempts
        self._connect_backoff = connect_backoff
        self._idle: list[_Connection] = []
        self._all: set[_Connection] = set()
        self.connects = 0  # how many connections were opened (tests and the benchmark read it)

    def _new_smtp(self) -> WireSMTP:
        s = self._settings
        user = s.smtp_user or None
        return WireSMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            timeout=s.smtp_timeout,
            use_tls=s.smtp_tls == "tls",
            start_tls=s.smtp_tls == "starttls",
            username=user,
            password=s.smtp_password.get_secret_value() if user else None,
        )

    async def ready(self) -> None:
        await self.gate.wait_open()
        wait = self.limiter.wait_time()
        if wait > 0:
            await asyncio.sleep(wait)

    async def _checkout(self) -> _Connection:
        while self._idle:
            conn = self._idle.pop()
            if conn.smtp.is_connected and conn.used < self._settings.smtp_recycle_after:
                return conn
            await self._retire(conn)
        last: Exception | None = None
        for attempt in range(self._connect_attempts):
            smtp = self._new_smtp()
            try:
                await smtp.connect()
            except aiosmtplib.SMTPAuthenticationError as exc:
                smtp.close()
                await smtp.wait_closed()
                raise RelayUnavailable(
                    f"SMTP relay {self.host}:{self.port} refused the login for "
                    f"{self._settings.smtp_user!r} ({exc.code} {exc.message}); check "
                    "DIGEST_SMTP_USER and DIGEST_SMTP_PASSWORD"
                ) from None
            except (aiosmtplib.SMTPException, OSError) as exc:
                smtp.close()
                await smtp.wait_closed()
                last = exc
                await asyncio.sleep(self._connect_backoff * (2**attempt) * random.uniform(0.5, 1))
                continue
            self.connects += 1
            conn = _Connection(smtp)
            self._all.add(conn)
            return conn
        raise RelayUnavailable(
            f"SMTP relay {self.host}:{self.port} cannot be reached ({last}); check "
            "DIGEST_SMTP_HOST/DIGEST_SMTP_PORT/DIGEST_SMTP_TLS"
        )

    async def _retire(self, conn: _Connection) -> None:
        self._all.discard(conn)
        if conn.smtp.is_connected:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await conn.smtp.quit()
        conn.smtp.close()  # also closes a transport whose peer already went away
        await conn.smtp.wait_closed()

    async def send(
        self,
        *,
        envelope_from: str,
        recipients: Sequence[str],
        message: bytes,
        handover_after: Awaitable[None] | None = None,
    ) -> None:
        """Send one message on a pooled connection (``handover_after``: see ``Sender.send``).

        Raises SendError, Throttled (a SendError) or RelayUnavailable.
        """
        async with self.gate:
            await self.limiter.acquire()
            conn = await self._checkout()
            keep = True
            try:
                await conn.smtp.send_wire(envelope_from, recipients, message, handover_after)
            except HandoverFailed as exc:
                keep = False
                assert exc.__cause__ is not None
                raise exc.__cause__ from None  # the caller's own error, not an SMTP one
            except aiosmtplib.SMTPSenderRefused as exc:
                if exc.code >= 500:
                    keep = False
                    raise RelayUnavailable(
                        f"SMTP relay {self.host}:{self.port} refuses the sender {envelope_from} "
                        f"({exc.code} {exc.message}); fix DIGEST_FROM_EMAIL or the relay"
                    ) from None
                keep = exc.code != 421
                raise self._translate(exc.code, exc.message, envelope_from) from None
            except aiosmtplib.SMTPResponseException as exc:
                keep = exc.code != 421 and conn.smtp.is_connected
                raise self._translate(exc.code, exc.message, recipients[0]) from None
            except (aiosmtplib.SMTPException, OSError) as exc:
                keep = False
                raise SendError(
                    f"connection to {self.host}:{self.port} failed during the transaction: "
                    f"{exc or type(exc).__name__}",
                    permanent=False,
                ) from None
            finally:
                conn.used += 1
                if keep and conn.smtp.is_connected:
                    self._idle.append(conn)
                else:
                    await self._retire(conn)
            self.gate.succeeded()

    def _translate(self, code: int, text: str, address: str) -> SendError:
        detail = f"{code} {' '.join(text.split())}"
        if "4.7.28" in text:
            resume = self.gate.pause(self.quota_pause)
            return Throttled(
                f"provider throttling for {address}: {detail}; pausing until "
                f"{time.strftime('%H:%M:%S', time.localtime(resume))}",
                code=code,
                resume_at=resume,
            )
        return SendError(f"{address}: {detail}", permanent=code >= 500, code=code)

    async def aclose(self) -> None:
        """QUIT every connection (quietly)."""
        conns, self._idle = list(self._all), []
        await asyncio.gather(*(self._retire(c) for c in conns))
