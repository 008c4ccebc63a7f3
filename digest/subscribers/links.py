"""The links mail carries to one subscriber: confirmation, one-click unsubscribe, preferences.
Pure: signed (or given) tokens under ``settings.base_url``.
"""

from __future__ import annotations

from digest.models import Subscriber
from digest.settings import Settings
from digest.subscribers import tokens


def confirm_url(*, settings: Settings, token: str) -> str:
    """``base_url/confirm/<token>``: the double opt-in link."""
    return f"{settings.base_url}/confirm/{token}"


def unsubscribe_url(*, settings: Settings, subscriber: Subscriber) -> str:
    """``base_url/u/<token>``: the List-Unsubscribe (RFC 8058 one-click) URL."""
    assert subscriber.id is not None
    return unsubscribe_link(settings=settings, subscriber_id=subscriber.id)


def preferences_url(*, settings: Settings, subscriber: Subscriber) -> str:
    """``base_url/p/<token>``: the footer's preferences page."""
    assert subscriber.id is not None
    return preferences_link(settings=settings, subscriber_id=subscriber.id)


def unsubscribe_link(*, settings: Settings, subscriber_id: int) -> str:
    """``unsubscribe_url`` from the id alone (the send loop has no Subscriber object)."""
    token = tokens.unsubscribe_token(
        settings=settings, subscriber_id=subscriber_id, newsletter=settings.newsletter_id
    )
    return f"{settings.base_url}/u/{token}"


def preferences_link(*, settings: Settings, subscriber_id: int) -> str:
    """``preferences_url`` from the id alone."""
    token = tokens.preferences_token(
        settings=settings, subscriber_id=subscriber_id, newsletter=settings.newsletter_id
    )
    return f"{settings.base_url}/p/{token}"
