"""The preferences page (``/p/<token>``): whom its token names, and what it can do (name, pause,
resume, unsubscribe, resubscribe). The caller commits.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from digest.errors import InputError, NotFound, StateError
from digest.models import Subscriber, SubscriberStatus
from digest.settings import Settings
from digest.store import subscribers as store
from digest.store import suppressions as supp
from digest.subscribers import consent, tokens
from digest.subscribers.lifecycle import withdraw
from digest.subscribers.recipients import subscriber_of

S = SubscriberStatus


def subscriber_for_preferences(
    session: Session, *, settings: Settings, token: str
) -> tuple[Subscriber, str]:
    """(subscriber, newsletter) named by a preferences token.

    Raises InputError (forged) or NotFound (gone or erased).
    """
    subscriber_id, newsletter = tokens.read_preferences_token(token, settings=settings)
    subscriber = subscriber_of(session, subscriber_id)
    if subscriber.erased_at is not None:
        raise NotFound("this subscription no longer exists")
    return subscriber, newsletter


def update_preferences(
    session: Session,
    *,
    settings: Settings,
    token: str,
    action: str,
    now: datetime,
    name: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
) -> Subscriber:
    """Apply one preferences action: "name", "pause", "resume", "unsubscribe", "resubscribe".

    Raises InputError (forged token, unknown action), NotFound, StateError (resubscribing an
    address that bounced or complained: that needs the subscribe form).
    """
    subscriber, newsletter = subscriber_for_preferences(session, settings=settings, token=token)
    who = {"ip": ip, "user_agent": user_agent}
    if action == "name":
        subscriber.name = (name or "").strip()[:200]
        store.touch(session, subscriber, now=now)
    elif action in ("pause", "resume"):
        wanted = action == "pause"
        if subscriber.paused != wanted:
            subscriber.paused = wanted
            store.touch(session, subscriber, now=now)
            consent.record(
                session,
                subscriber,
                action="paused" if wanted else "resumed",
                source="preferences",
                now=now,
                list_id=newsletter,
                **who,
            )
    elif action == "unsubscribe":
        withdraw(session, subscriber, newsletter=newsletter, source="preferences", now=now, **who)
    elif action == "resubscribe":
        if subscriber.status == S.UNSUBSCRIBED:
            consent.transition(
                session,
                subscriber,
                S.CONFIRMED,
                source="preferences",
                now=now,
                list_id=newsletter,
                **who,
            )
            supp.remove_suppression(session, email_hash=subscriber.email_hash, scope=newsletter)
        elif subscriber.status != S.CONFIRMED:
            raise StateError(
                "mail to this address bounced or was reported; please subscribe again with the form"
            )
    else:
        raise InputError(f"unknown preferences action {action!r}")
    return subscriber
