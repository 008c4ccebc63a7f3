"""The consent state machine: the ONLY code that changes a subscriber's status.

Every change appends a :class:`ConsentEvent` whose ``hash`` covers the previous event's hash and
every field of its own, so editing, deleting or reordering any event breaks the chain
(``subscribers.chain.verify_chain``). Suppressions are kept by address hash so they outlive erasure.

    (new) ──► pending ──► confirmed ──► unsubscribed ──► pending / confirmed (fresh consent)
                 │            ├──────► bounced      ──► pending / confirmed (fresh consent)
                 └──► unsubscribed, bounced, complained
                              └──────► complained   ──► pending / confirmed (fresh consent)

Entering ``confirmed`` needs the person's own action (the confirmation link or the preferences
page) or recorded evidence of consent given elsewhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from digest.errors import ConsentError
from digest.models import ConsentEvent, Subscriber, SubscriberStatus
from digest.store import consent as log
from digest.store import subscribers as store
from digest.store import suppressions
from digest.subscribers.chain import event_hash

S = SubscriberStatus

# The words beside the form's button. Change the text => change the version: each event stores
# both, so what a person agreed to can be shown later (GDPR Art. 7(1)).
WORDING_VERSION = "2026-11-25"
WORDING_TEXT = (
    "Yes, email me the weekly digest. I can unsubscribe at any time with the link at the foot "
    "of every issue. My address is used only to send this newsletter."
)
WORDING_HASH = hashlib.sha256(WORDING_TEXT.encode()).hexdigest()

GLOBAL = suppressions.GLOBAL

# Sources where the person acted themselves, so no separate evidence is needed to confirm.
SELF_SERVICE = frozenset({"confirm", "preferences"})

_ALLOWED: dict[SubscriberStatus | None, frozenset[SubscriberStatus]] = {
    None: frozenset({S.PENDING, S.CONFIRMED}),
    S.PENDING: frozenset({S.PENDING, S.CONFIRMED, S.UNSUBSCRIBED, S.BOUNCED, S.COMPLAINED}),
    S.CONFIRMED: frozenset({S.UNSUBSCRIBED, S.BOUNCED, S.COMPLAINED}),
    S.UNSUBSCRIBED: frozenset({S.PENDING, S.CONFIRMED, S.BOUNCED, S.COMPLAINED}),
    S.BOUNCED: frozenset({S.PENDING, S.CONFIRMED, S.UNSUBSCRIBED, S.COMPLAINED}),
    S.COMPLAINED: frozenset({S.PENDING, S.CONFIRMED, S.UNSUBSCRIBED}),
}

_ACTION = {
    S.PENDING: "subscribe_requested",
    S.CONFIRMED: "confirmed",
    S.UNSUBSCRIBED: "unsubscribed",
    S.BOUNCED: "bounced",
    S.COMPLAINED: "complained",
}


def normalise_email(email: str) -> str:
    """The form addresses are compared and hashed in: trimmed and lower-cased."""
    return email.strip().lower()


def email_hash(email: str) -> str:
    """sha256 (hex) of the normalised address."""
    return hashlib.sha256(normalise_email(email).encode()).hexdigest()


def allowed(current: SubscriberStatus | None, to: SubscriberStatus) -> bool:
    return to in _ALLOWED[current]


def transition(
    session: Session,
    subscriber: Subscriber,
    to: SubscriberStatus,
    *,
    source: str,
    now: datetime,
    ip: str | None = None,
    user_agent: str | None = None,
    evidence: str | None = None,
    list_id: str,
) -> ConsentEvent:
    """Move ``subscriber`` to ``to`` and append the event that records it.

    A subscriber without an id is new: it is inserted with status ``to``. Returns the event.
    Raises ConsentError when the move is not allowed, when confirming lacks evidence, or when
    the status changed underneath (another request won the race).
    """
    is_new = subscriber.id is None
    current = None if is_new else SubscriberStatus(subscriber.status)
    if not allowed(current, to):
        raise ConsentError(
            f"{subscriber.email}: cannot go from {current.value if current else 'new'} "
            f"to {to.value}"
        )
    if to is S.CONFIRMED and source not in SELF_SERVICE and not (evidence or "").strip():
        raise ConsentError(
            f"{subscriber.email}: confirming without the person's own click needs consent "
            "evidence (say where and when they agreed, e.g. --evidence 'paper form, 2026-05-01')"
        )
    log.lock_chain(session)
    if is_new:
        subscriber.email = normalise_email(subscriber.email)
        subscriber.email_hash = email_hash(subscriber.email)
        subscriber.status = to
        subscriber.created_at = subscriber.updated_at = now
        if to is S.CONFIRMED:
            subscriber.confirmed_at = now
        session.add(subscriber)
        session.flush()
    else:
        assert subscriber.id is not None and current is not None
        if not store.set_status_if(
            session, subscriber_id=subscriber.id, expected=current, to=to, now=now
        ):
            session.refresh(subscriber)
            raise ConsentError(
                f"{subscriber.email}: status changed meanwhile (now {subscriber.status}); retry"
            )
        session.refresh(subscriber)
    return _append(
        session,
        subscriber,
        action=_ACTION[to],
        from_status=current,
        to_status=to,
        source=source,
        now=now,
        ip=ip,
        user_agent=user_agent,
        evidence=evidence,
        list_id=list_id,
    )


def record(
    session: Session,
    subscriber: Subscriber,
    *,
    action: str,
    source: str,
    now: datetime,
    list_id: str,
    ip: str | None = None,
    user_agent: str | None = None,
    evidence: str | None = None,
) -> ConsentEvent:
    """Append an event that changes no status (pause, resume, erasure) and return it."""
    log.lock_chain(session)
    # Write the subscriber row first: on SQLite that takes the write lock before the chain head
    # is read, so no other writer can append in between.
    store.touch(session, subscriber, now=now)
    status = SubscriberStatus(subscriber.status)
    return _append(
        session,
        subscriber,
        action=action,
        from_status=status,
        to_status=status,
        source=source,
        now=now,
        ip=ip,
        user_agent=user_agent,
        evidence=evidence,
        list_id=list_id,
    )


def _append(
    session: Session,
    subscriber: Subscriber,
    *,
    action: str,
    from_status: SubscriberStatus | None,
    to_status: SubscriberStatus,
    source: str,
    now: datetime,
    ip: str | None,
    user_agent: str | None,
    evidence: str | None,
    list_id: str,
) -> ConsentEvent:
    fields: dict[str, Any] = {
        "subscriber_id": subscriber.id,
        "email_hash": subscriber.email_hash or email_hash(subscriber.email),
        "at": now.astimezone(UTC),
        "action": action,
        "from_status": from_status.value if from_status else None,
        "to_status": to_status.value,
        "source": source,
        "list_id": list_id,
        "ip": ip,
        "user_agent": (user_agent or None) and user_agent[:500],
        "wording_version": WORDING_VERSION,
        "wording_hash": WORDING_HASH,
        "evidence": evidence,
    }
    prev = log.chain_head(session)
    event = ConsentEvent(**fields, prev_hash=prev, hash=event_hash(prev, fields))
    return log.append_event(session, event)


@dataclass(frozen=True)
class Admission:
    """A new subscriber for :func:`admit`: the address (normalised), the first status, and
    optionally a confirmation-token hash to store with the row."""

    email: str
    name: str
    status: SubscriberStatus
    evidence: str | None = None
    confirm_token_hash: str | None = None
    confirm_token_expires_at: datetime | None = None


def admit(
    session: Session,
    admissions: Sequence[Admission],
    *,
    source: str,
    now: datetime,
    list_id: str,
) -> list[int]:
    """Insert many NEW subscribers, each with its first status and one chained event, in two
    bulk statements (the import path: ``transition`` for 10,000 rows costs a round trip each).

    Same rules as ``transition`` from "new". Returns the new ids in the order given. Raises
    ConsentError before writing anything when any admission breaks a rule; an address that
    already exists raises the database's IntegrityError (callers pass only unknown addresses).
    """
    for item in admissions:
        if not allowed(None, item.status):
            raise ConsentError(f"{item.email}: a new subscriber cannot start as {item.status}")
        if item.status is S.CONFIRMED and source not in SELF_SERVICE and not item.evidence:
            raise ConsentError(f"{item.email}: confirming needs consent evidence")
    if not admissions:
        return []
    log.lock_chain(session)
    at = now.astimezone(UTC)
    rows = [
        {
            "email": item.email,
            "email_hash": email_hash(item.email),
            "name": item.name,
            "status": item.status.value,
            "paused": False,
            "soft_bounces": 0,
            "confirm_token_hash": item.confirm_token_hash,
            "confirm_token_expires_at": item.confirm_token_expires_at,
            "created_at": at,
            "updated_at": at,
            "confirmed_at": at if item.status is S.CONFIRMED else None,
        }
        for item in admissions
    ]
    ids = list(store.insert_many(session, rows))
    prev = log.chain_head(session)
    events: list[dict[str, Any]] = []
    for subscriber_id, row, item in zip(ids, rows, admissions, strict=True):
        fields: dict[str, Any] = {
            "subscriber_id": subscriber_id,
            "email_hash": row["email_hash"],
            "at": at,
            "action": _ACTION[item.status],
            "from_status": None,
            "to_status": item.status.value,
            "source": source,
            "list_id": list_id,
            "ip": None,
            "user_agent": None,
            "wording_version": WORDING_VERSION,
            "wording_hash": WORDING_HASH,
            "evidence": item.evidence,
        }
        digest_ = event_hash(prev, fields)
        events.append({**fields, "prev_hash": prev, "hash": digest_})
        prev = digest_
    log.append_rows(session, events)
    return ids


# --- suppressions ----------------------------------------------------------------------------


def suppress(session: Session, *, email: str, scope: str, reason: str, now: datetime) -> None:
    """Keep ``email`` (as its hash) from receiving mail: ``scope`` is "global" or a newsletter."""
    suppressions.add_suppression(
        session, email_hash=email_hash(email), scope=scope, reason=reason, now=now
    )


def is_suppressed(session: Session, *, email: str, newsletter: str) -> bool:
    found = suppressions.find_suppression(
        session, email_hash=email_hash(email), scopes=[GLOBAL, newsletter]
    )
    return found is not None


def may_receive(session: Session, subscriber: Subscriber, *, newsletter: str) -> str | None:
    """None when ``subscriber`` may get ``newsletter`` now, else the reason to skip them.

    Checked right before each message, after the recipient query already filtered: a
    subscriber can unsubscribe or bounce while a send is running.
    """
    # Read the row afresh: the caller's object may be minutes old or from another session.
    fresh = session.get(Subscriber, subscriber.id, populate_existing=True)
    if fresh is None:
        return "deleted"
    if fresh.erased_at is not None:
        return "erased"
    if fresh.status != S.CONFIRMED:
        return f"status is {fresh.status}"
    if fresh.paused:
        return "paused"
    found = suppressions.find_suppression(
        session,
        email_hash=fresh.email_hash or email_hash(fresh.email),
        scopes=[GLOBAL, newsletter],
    )
    if found is not None:
        return f"suppressed ({found.scope}: {found.reason})"
    return None
