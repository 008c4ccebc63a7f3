"""Who a subscriber is and who gets mail: address syntax, lookups by address or id, the
suppressions that stand in the way of a subscription, and the confirmed-recipients query.
Nothing here changes the store.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from sqlmodel import Session

from digest.errors import InputError, NotFound
from digest.models import Subscriber
from digest.store import subscribers as store
from digest.store import suppressions as supp
from digest.subscribers import consent

# Suppressions that a fresh double opt-in lifts: the person asked again and proved the mailbox.
LIFTED_BY_FRESH_CONSENT = frozenset({"unsubscribed", "erased"})


def parse_address(raw: str) -> str:
    """The normalised address (trimmed, lower-cased) if ``raw`` is one mailbox, syntax only.

    Raises InputError naming the input and what is wrong with it.
    """
    text = (raw or "").strip()
    if not text:
        raise InputError("the email address is empty")
    try:
        checked = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InputError(f"{text!r} is not a valid email address: {exc}") from None
    return consent.normalise_email(checked.normalized)


def find_by_email(session: Session, email: str) -> Subscriber:
    """The subscriber with this address. Raises NotFound (with a hint)."""
    address = consent.normalise_email(email)
    found = store.subscriber_by_email(session, address)
    if found is None:
        raise NotFound(f"no subscriber {address} (list them with: digest subscribers list)")
    return found


def subscriber_of(session: Session, subscriber_id: int) -> Subscriber:
    """The subscriber with this id. Raises NotFound."""
    found = store.get_subscriber(session, subscriber_id)
    if found is None:
        raise NotFound(f"subscriber {subscriber_id} does not exist")
    return found


def blocking_suppression(session: Session, *, email: str, newsletter: str) -> str | None:
    """The reason a suppression forbids even asking this address again, else None."""
    rows = supp.list_for_hash(session, email_hash=consent.email_hash(email))
    for row in rows:
        if row.scope in (supp.GLOBAL, newsletter) and row.reason not in LIFTED_BY_FRESH_CONSENT:
            return f"{row.scope}: {row.reason}"
    return None


def any_suppression(session: Session, *, email: str, newsletter: str) -> str | None:
    """The reason any suppression of this list (or a global one) holds the address, else None."""
    found = supp.find_suppression(
        session, email_hash=consent.email_hash(email), scopes=[supp.GLOBAL, newsletter]
    )
    return f"{found.scope}: {found.reason}" if found else None


def confirmed_recipients(
    session: Session, *, newsletter: str, after_id: int = 0, limit: int = 1000
) -> list[Subscriber]:
    """See ``digest.store.subscribers.confirmed_recipients``: consent enforced in the query."""
    return store.confirmed_recipients(
        session, newsletter=newsletter, after_id=after_id, limit=limit
    )
