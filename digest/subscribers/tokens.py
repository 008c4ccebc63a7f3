"""Tokens in links. Unsubscribe and preferences tokens are HMAC-signed (subscriber id,
newsletter), so they need no database row and cannot be forged; confirmation tokens are random,
single-use, and stored only as a hash.

Signed token layout: ``base64url("<id>:<newsletter>") "." base64url(HMAC-SHA256[:24])``; the
HMAC key is derived from ``settings.secret()`` per purpose, so an unsubscribe token is never a
valid preferences token and vice versa.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from typing import Protocol

from digest.errors import InputError

CONFIRM_TTL_HOURS = 48
_MAC_BYTES = 24


class HasSecret(Protocol):
    def secret(self) -> bytes: ...


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(settings: HasSecret, purpose: str) -> bytes:
    return _purpose_key(settings.secret(), purpose)


@functools.lru_cache(maxsize=8)
def _purpose_key(secret: bytes, purpose: str) -> bytes:
    # Derived once per secret and purpose: the send loop signs two links per recipient.
    return hmac.new(secret, f"digest-token:{purpose}".encode(), hashlib.sha256).digest()


def _sign(settings: HasSecret, purpose: str, *, subscriber_id: int, newsletter: str) -> str:
    if ":" in newsletter:
        raise ValueError(f"newsletter id {newsletter!r} must not contain ':'")
    payload = f"{subscriber_id}:{newsletter}".encode()
    mac = hmac.new(_key(settings, purpose), payload, hashlib.sha256).digest()[:_MAC_BYTES]
    return f"{_b64(payload)}.{_b64(mac)}"


def _read(token: str, settings: HasSecret, purpose: str) -> tuple[int, str]:
    what = "unsubscribe" if purpose == "unsubscribe" else "preferences"
    forged = InputError(f"this {what} link is not valid (copy the whole link from the email)")
    try:
        payload_text, mac_text = token.strip().split(".")
        payload, mac = _unb64(payload_text), _unb64(mac_text)
    except ValueError:  # wrong shape or bad base64 (binascii.Error is a ValueError)
        raise forged from None
    expected = hmac.new(_key(settings, purpose), payload, hashlib.sha256).digest()[:_MAC_BYTES]
    if not hmac.compare_digest(mac, expected):
        raise forged
    sid_text, _, newsletter = payload.decode().partition(":")
    return int(sid_text), newsletter


def unsubscribe_token(*, settings: HasSecret, subscriber_id: int, newsletter: str) -> str:
    """A token for ``/u/<token>``: names the subscriber and the newsletter, signed."""
    return _sign(settings, "unsubscribe", subscriber_id=subscriber_id, newsletter=newsletter)


def read_unsubscribe_token(token: str, *, settings: HasSecret) -> tuple[int, str]:
    """(subscriber id, newsletter) from a token. Raises InputError when forged or mangled."""
    return _read(token, settings, "unsubscribe")


def preferences_token(*, settings: HasSecret, subscriber_id: int, newsletter: str) -> str:
    """A token for ``/p/<token>`` (the preferences page linked from the footer)."""
    return _sign(settings, "preferences", subscriber_id=subscriber_id, newsletter=newsletter)


def read_preferences_token(token: str, *, settings: HasSecret) -> tuple[int, str]:
    """(subscriber id, newsletter). Raises InputError when forged or mangled."""
    return _read(token, settings, "preferences")


def hash_confirm_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_confirm_token() -> tuple[str, str]:
    """(token for the link, its sha256 to store). Only the hash is kept, so a database leak
    cannot confirm anyone."""
    token = secrets.token_urlsafe(32)
    return token, hash_confirm_token(token)
