"""The life of a subscription: subscribe (double opt-in), confirm, add with evidence, unsubscribe,
remove and erase. Each takes a session and an explicit ``now``; the caller commits. Status
changes go through ``consent.transition``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from digest.errors import ConsentError, InputError, StateError
from digest.models import Subscriber, SubscriberStatus
from digest.settings import Settings
from digest.store import consent as log
from digest.store import subscribers as store
from digest.store import suppressions as supp
from digest.subscribers import consent, tokens
from digest.subscribers.links import confirm_url
from digest.subscribers.recipients import (
    LIFTED_BY_FRESH_CONSENT,
    any_suppression,
    blocking_suppression,
    find_by_email,
    parse_address,
    subscriber_of,
)

S = SubscriberStatus


@dataclass(frozen=True)
class SubscribeOutcome:
    """What ``subscribe`` did. ``confirm_url`` is the link to mail, or None when nothing is to
    be sent (already confirmed, suppressed). The web shows the same page either way."""

    email: str
    result: str  # "created", "refreshed", "already confirmed", "suppressed"
    subscriber_id: int | None = None
    confirm_url: str | None = None
    name: str = ""


def _status(subscriber: Subscriber) -> SubscriberStatus:
    # A function, not an attribute read, so type narrowing does not survive a refresh.
    return SubscriberStatus(subscriber.status)


def issue_confirm_token(
    session: Session, subscriber: Subscriber, *, settings: Settings, now: datetime
) -> str:
    token, token_hash = tokens.new_confirm_token()
    subscriber.confirm_token_hash = token_hash
    subscriber.confirm_token_expires_at = now + timedelta(hours=tokens.CONFIRM_TTL_HOURS)
    store.touch(session, subscriber, now=now)
    return confirm_url(settings=settings, token=token)


def subscribe(
    session: Session,
    *,
    settings: Settings,
    email: str,
    name: str = "",
    source: str,
    now: datetime,
    ip: str | None = None,
    user_agent: str | None = None,
) -> SubscribeOutcome:
    """Create or refresh a pending subscriber and return the confirmation link to mail.

    Known confirmed addresses and blocked (bounced, complained, manually suppressed) ones come
    back with ``confirm_url=None``. Raises InputError for a malformed address.
    """
    address = parse_address(email)
    name = name.strip()[:200]
    if blocking_suppression(session, email=address, newsletter=settings.newsletter_id):
        return SubscribeOutcome(email=address, result="suppressed")
    found = store.subscriber_by_email(session, address)
    if found is not None and found.status == S.CONFIRMED:
        return SubscribeOutcome(
            email=address, result="already confirmed", subscriber_id=found.id, name=found.name
        )
    subscriber = found or Subscriber(email=address, name=name)
    if found is not None and name:
        subscriber.name = name
    consent.transition(
        session,
        subscriber,
        S.PENDING,
        source=source,
        now=now,
        ip=ip,
        user_agent=user_agent,
        list_id=settings.newsletter_id,
    )
    url = issue_confirm_token(session, subscriber, settings=settings, now=now)
    return SubscribeOutcome(
        email=address,
        result="refreshed" if found is not None else "created",
        subscriber_id=subscriber.id,
        confirm_url=url,
        name=subscriber.name,
    )


def add_confirmed(
    session: Session,
    *,
    settings: Settings,
    email: str,
    name: str = "",
    evidence: str,
    source: str,
    now: datetime,
) -> Subscriber:
    """Record consent given elsewhere (paper form, old system) and return the subscriber.

    Idempotent for an already confirmed address. Raises InputError (bad address), ConsentError
    (no evidence, or the address is suppressed: lift it explicitly after fresh consent).
    """
    address = parse_address(email)
    reason = any_suppression(session, email=address, newsletter=settings.newsletter_id)
    if reason:
        raise ConsentError(
            f"{address} is on the suppression list ({reason}); if they consented again, "
            f"first run: digest suppressions remove {address}"
        )
    found = store.subscriber_by_email(session, address)
    if found is not None and found.status == S.CONFIRMED:
        return found
    subscriber = found or Subscriber(email=address, name=name.strip()[:200])
    consent.transition(
        session,
        subscriber,
        S.CONFIRMED,
        source=source,
        now=now,
        evidence=evidence,
        list_id=settings.newsletter_id,
    )
    _forget_confirm_token(session, subscriber, now=now)
    return subscriber


def _forget_confirm_token(session: Session, subscriber: Subscriber, *, now: datetime) -> None:
    """Invalidate an unused confirmation link. A used one keeps its hash (its expiry is None)
    so that a later click is recognised as a reuse and explained, not called a forgery."""
    if subscriber.confirm_token_expires_at is not None:
        subscriber.confirm_token_hash = None
        subscriber.confirm_token_expires_at = None
        store.touch(session, subscriber, now=now)


def _list_of(session: Session, subscriber: Subscriber, default: str | None) -> str:
    """The list a pending subscriber asked for: the one named in their latest event."""
    if default:
        return default
    assert subscriber.id is not None
    events = log.events_for_subscriber(session, subscriber_id=subscriber.id)
    if events:
        return events[-1].list_id
    raise StateError(f"subscriber {subscriber.id} has no consent history to confirm against")


def check_confirm_token(session: Session, *, token: str, now: datetime) -> Subscriber:
    """The subscriber a confirmation token belongs to, without changing anything.

    Raises InputError when the token is unknown (forged, mistyped, replaced by a newer one) or
    expired, StateError when it was used already and the subscriber has since left.
    """
    found = store.subscriber_by_confirm_hash(session, tokens.hash_confirm_token(token.strip()))
    if found is None or found.erased_at is not None:
        raise InputError(
            "this confirmation link is not valid (it may have been replaced by a "
            "newer one: use the link in the latest email, or subscribe again)"
        )
    if found.confirm_token_expires_at is None:  # used
        if found.status == S.CONFIRMED:
            return found
        raise StateError("this confirmation link was used already; subscribe again to rejoin")
    if found.confirm_token_expires_at <= now:
        raise InputError(
            "this confirmation link has expired (links last 48 hours); "
            "subscribe again to get a new one"
        )
    return found


def confirm(
    session: Session,
    *,
    token: str,
    now: datetime,
    ip: str | None = None,
    user_agent: str | None = None,
    list_id: str | None = None,
) -> Subscriber:
    """Confirm the subscription a token belongs to and return the subscriber.

    Confirming twice is harmless (no second event). Raises InputError (forged, expired) or
    StateError (used, then left) and changes nothing then.
    """
    subscriber = check_confirm_token(session, token=token, now=now)
    if subscriber.status == S.CONFIRMED:
        return subscriber
    if subscriber.status != S.PENDING:
        raise StateError("this confirmation link no longer applies; subscribe again to rejoin")
    newsletter = _list_of(session, subscriber, list_id)
    try:
        consent.transition(
            session,
            subscriber,
            S.CONFIRMED,
            source="confirm",
            now=now,
            ip=ip,
            user_agent=user_agent,
            list_id=newsletter,
        )
    except ConsentError:
        if _status(subscriber) == S.CONFIRMED:  # a simultaneous click won: same result
            return subscriber
        raise
    subscriber.confirm_token_expires_at = None  # used; the hash stays to recognise a reuse
    store.touch(session, subscriber, now=now)
    _lift_for_fresh_consent(session, subscriber, newsletter=newsletter)
    return subscriber


def _lift_for_fresh_consent(session: Session, subscriber: Subscriber, *, newsletter: str) -> None:
    for row in supp.list_for_hash(session, email_hash=subscriber.email_hash):
        if row.scope in (supp.GLOBAL, newsletter) and row.reason in LIFTED_BY_FRESH_CONSENT:
            supp.remove_suppression(session, email_hash=row.email_hash, scope=row.scope)


def withdraw(
    session: Session,
    subscriber: Subscriber,
    *,
    newsletter: str,
    source: str,
    now: datetime,
    ip: str | None,
    user_agent: str | None,
    evidence: str | None = None,
) -> bool:
    """Unsubscribe (idempotent). Returns True when the status changed. ``evidence`` says what
    the request was (a mailed request's sender and Message-ID) and goes into the consent log."""
    if subscriber.erased_at is not None:
        return False
    consent.suppress(
        session, email=subscriber.email, scope=newsletter, reason="unsubscribed", now=now
    )
    if subscriber.status not in (S.PENDING, S.CONFIRMED):
        return False
    try:
        consent.transition(
            session,
            subscriber,
            S.UNSUBSCRIBED,
            source=source,
            now=now,
            ip=ip,
            user_agent=user_agent,
            evidence=evidence,
            list_id=newsletter,
        )
    except ConsentError:
        if _status(subscriber) == S.UNSUBSCRIBED:  # a simultaneous request won
            return False
        raise
    _forget_confirm_token(session, subscriber, now=now)
    return True


def unsubscribe(
    session: Session,
    *,
    settings: Settings,
    token: str,
    source: str,
    now: datetime,
    ip: str | None = None,
    user_agent: str | None = None,
    evidence: str | None = None,
) -> Subscriber:
    """Unsubscribe the person an unsubscribe token names, from that token's newsletter only.

    Idempotent. Raises InputError (forged token) or NotFound (no such subscriber any more).
    """
    subscriber_id, newsletter = tokens.read_unsubscribe_token(token, settings=settings)
    subscriber = subscriber_of(session, subscriber_id)
    withdraw(
        session,
        subscriber,
        newsletter=newsletter,
        source=source,
        now=now,
        ip=ip,
        user_agent=user_agent,
        evidence=evidence,
    )
    return subscriber


def remove(
    session: Session, *, settings: Settings, email: str, now: datetime, source: str = "cli"
) -> Subscriber:
    """Unsubscribe one person on their behalf (idempotent). Raises NotFound."""
    subscriber = find_by_email(session, email)
    withdraw(
        session,
        subscriber,
        newsletter=settings.newsletter_id,
        source=source,
        now=now,
        ip=None,
        user_agent=None,
    )
    return subscriber


def erase(
    session: Session, *, settings: Settings, email: str, now: datetime, source: str = "cli"
) -> Subscriber:
    """Delete a person's data (GDPR Art. 17) but keep their address hash suppressed globally,
    so no import can add them back without fresh consent. The consent log keeps its events
    (hash of the address, no address): evidence that consent was given and withdrawn.

    Raises NotFound.
    """
    subscriber = find_by_email(session, email)
    if subscriber.status in (S.PENDING, S.CONFIRMED):
        consent.transition(
            session,
            subscriber,
            S.UNSUBSCRIBED,
            source=source,
            now=now,
            list_id=settings.newsletter_id,
        )
    consent.suppress(session, email=subscriber.email, scope=supp.GLOBAL, reason="erased", now=now)
    consent.record(
        session, subscriber, action="erased", source=source, now=now, list_id=settings.newsletter_id
    )
    store.scrub_personal_data(session, subscriber, now=now)
    return subscriber
