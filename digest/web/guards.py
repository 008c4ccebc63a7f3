"""What keeps the public forms from being abused: sliding-window rate limits per key, and
double-submit CSRF tokens (a signed, timestamped token in a cookie and in the form).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable

from digest.settings import Settings

CSRF_MAX_AGE = 2 * 3600  # seconds a form's token stays valid


class RateLimiter:
    """At most ``limit`` hits per key in any ``window`` seconds (sliding window, in memory).

    Per process: with several web workers each keeps its own counts, which still bounds abuse.
    """

    def __init__(
        self, *, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Count a hit for ``key``; False when it is over the limit (the hit is not counted)."""
        now = self.clock()
        with self._lock:
            if len(self._hits) > 50_000:  # forget idle keys so memory stays bounded
                self._hits = {
                    k: v for k, v in self._hits.items() if v and v[-1] > now - self.window
                }
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return False
            hits.append(now)
            return True


def default_limiters() -> dict[str, RateLimiter]:
    """Per IP: 10 sign-ups an hour; per address: 3 an hour (no mail-bombing a stranger)."""
    return {
        "ip": RateLimiter(limit=10, window=3600),
        "address": RateLimiter(limit=3, window=3600),
    }


def _csrf_mac(settings: Settings, stamp: str, nonce: str) -> str:
    key = settings.secret()
    return hmac.new(key, f"csrf|{stamp}|{nonce}".encode(), hashlib.sha256).hexdigest()[:32]


def new_csrf_token(settings: Settings, *, now: float) -> str:
    stamp, nonce = str(int(now)), secrets.token_urlsafe(16)
    return f"{stamp}.{nonce}.{_csrf_mac(settings, stamp, nonce)}"


def csrf_ok(settings: Settings, *, form_value: str, cookie_value: str | None, now: float) -> bool:
    """True when the form's token equals the cookie's, is signed by us and is fresh."""
    if not form_value or not cookie_value or not hmac.compare_digest(form_value, cookie_value):
        return False
    try:
        stamp, nonce, mac = form_value.split(".")
        age = now - int(stamp)
    except ValueError:
        return False
    fresh = 0 <= age <= CSRF_MAX_AGE
    return fresh and hmac.compare_digest(mac, _csrf_mac(settings, stamp, nonce))
