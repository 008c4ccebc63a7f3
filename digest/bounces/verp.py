"""VERP tokens: ``bounces+TOKEN@verp_domain`` names the delivery a bounce belongs to.

The token is the delivery id and a short MAC, so a forged bounce cannot point at someone else's
delivery: ``42.k3vq9x2m``. Only characters allowed in a local part without quoting are used.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def verp_token(delivery_id: int, *, secret: bytes) -> str:
    """The token for one delivery (``send`` puts it in the envelope sender)."""
    return f"{delivery_id}.{_mac(delivery_id, secret)}"


def delivery_id_from_token(token: str, *, secret: bytes) -> int | None:
    """The delivery id in ``token``, or None when it is malformed or its MAC does not match."""
    head, _, mac = token.strip().lower().partition(".")
    if not head.isdigit() or not mac:
        return None
    delivery_id = int(head)
    return delivery_id if hmac.compare_digest(mac, _mac(delivery_id, secret)) else None


def _mac(delivery_id: int, secret: bytes) -> str:
    digest = hmac.new(secret, f"verp:{delivery_id}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:5]).decode().lower()
