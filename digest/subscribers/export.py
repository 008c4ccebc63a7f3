"""What the operator and the person can see: one person's full record (GDPR access), everyone
as rows for CSV/JSON export, and counts. Read-only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from digest.models import ConsentEvent, Subscriber
from digest.store import consent as log
from digest.store import subscribers as store
from digest.store import suppressions as supp
from digest.subscribers.recipients import find_by_email

EXPORT_FIELDS = (
    "id",
    "email",
    "name",
    "status",
    "paused",
    "created_at",
    "confirmed_at",
    "updated_at",
)


def event_dict(event: ConsentEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": event.at.isoformat(),
        "action": event.action,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "source": event.source,
        "list_id": event.list_id,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "wording_version": event.wording_version,
        "wording_hash": event.wording_hash,
        "evidence": event.evidence,
        "hash": event.hash,
    }


def subscriber_dict(subscriber: Subscriber) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": subscriber.id,
        "email": subscriber.email,
        "name": subscriber.name,
        "status": str(subscriber.status),
        "paused": subscriber.paused,
        "created_at": iso(subscriber.created_at),
        "confirmed_at": iso(subscriber.confirmed_at),
        "updated_at": iso(subscriber.updated_at),
    }


def person_record(session: Session, *, email: str) -> dict[str, Any]:
    """Everything held about one person (GDPR access): the row, the full consent history, and
    their suppressions. Raises NotFound."""
    subscriber = find_by_email(session, email)
    assert subscriber.id is not None
    record = subscriber_dict(subscriber)
    record["events"] = [
        event_dict(e) for e in log.events_for_subscriber(session, subscriber_id=subscriber.id)
    ]
    record["suppressions"] = [
        {"scope": s.scope, "reason": s.reason, "created_at": s.created_at.isoformat()}
        for s in supp.list_for_hash(session, email_hash=subscriber.email_hash)
    ]
    return record


def stats(session: Session) -> dict[str, Any]:
    counts = store.count_by_status(session)
    return {
        "subscribers": counts,
        "consent_events": log.count_events(session),
        "suppressions": len(supp.list_suppressions(session)),
    }


def everyone(session: Session) -> list[dict[str, Any]]:
    """Every live (not erased) subscriber as a flat row of EXPORT_FIELDS."""
    return [subscriber_dict(s) for s in store.list_subscribers(session)]
