"""The in-memory twin of the SMTP pool: keeps what it was given, fails where it is told to."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field

from digest.errors import RelayUnavailable, SendError
from digest.send.smtp import Throttled


@dataclass
class MemorySender:
    """``sent`` holds ``(envelope_from, recipients, message)`` for every accepted message.

    ``fail(address, code, text, times=n)`` makes the next ``n`` sends to ``address`` (all of them
    when ``times`` is None) fail with that SMTP code: 5xx permanent, 4xx temporary.
    ``throttle(address, pause=s)`` answers the next send to ``address`` with 421 4.7.28 (Throttled).
    ``down = True`` makes every send raise RelayUnavailable.
    """

    sent: list[tuple[str, tuple[str, ...], bytes]] = field(default_factory=list)
    down: bool = False
    closed: bool = False
    _failures: dict[str, list[tuple[int, str, int | None]]] = field(default_factory=dict)
    _throttles: dict[str, float] = field(default_factory=dict)

    def fail(
        self, address: str, code: int, text: str = "refused", *, times: int | None = None
    ) -> None:
        self._failures.setdefault(address.lower(), []).append((code, text, times))

    def throttle(self, address: str, *, pause: float) -> None:
        """The next send to ``address`` gets Gmail's 421 4.7.28; resume after ``pause`` seconds."""
        self._throttles[address.lower()] = pause

    async def ready(self) -> None:
        return None

    async def send(
        self,
        *,
        envelope_from: str,
        recipients: Sequence[str],
        message: bytes,
        handover_after: Awaitable[None] | None = None,
    ) -> None:
        """Record the message (once ``handover_after`` resolves), or raise SendError /
        RelayUnavailable as configured."""
        if self.down:
            raise RelayUnavailable("memory relay is down (MemorySender.down)")
        for address in recipients:
            pause = self._throttles.pop(address.lower(), None)
            if pause is not None:
                raise Throttled(
                    f"{address}: 421 4.7.28 slow down", code=421, resume_at=time.time() + pause
                )
            rules = self._failures.get(address.lower())
            if not rules:
                continue
            code, text, times = rules[0]
            if times is not None:
                if times <= 1:
                    rules.pop(0)
                else:
                    rules[0] = (code, text, times - 1)
            raise SendError(f"{address}: {code} {text}", permanent=code >= 500, code=code)
        if handover_after is not None:
            await asyncio.shield(handover_after)  # never cancelled from here
        self.sent.append((envelope_from, tuple(recipients), message))

    def to(self, address: str) -> list[bytes]:
        """Messages accepted for ``address``."""
        return [m for _, rcpts, m in self.sent if address in rcpts]

    async def aclose(self) -> None:
        self.closed = True
