"""What each kind of bounce does to the store: suppress, count, note or change the status.

Called by ``digest.bounces.apply`` for one recipient whose bounce is not recorded yet; status
changes and suppressions go through ``digest.subscribers.consent`` only.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlmodel import Session

from digest.bounces.classify import Verdict
from digest.bounces.parse import BounceRecord
from digest.models import BounceKind, Delivery, Subscriber, SubscriberStatus
from digest.settings import Settings
from digest.store import bounces as store
from digest.subscribers import consent


def act(
    session: Session,
    record: BounceRecord,
    verdict: Verdict,
    *,
    subscriber: Subscriber | None,
    email: str,
    delivery: Delivery | None,
    settings: Settings,
    now: datetime,
) -> str:
    """Act on one bounced recipient and return the action taken, as ``Outcome.action`` says it
    ("suppressed", "counted 1/3", "not suppressed (policy)", ...)."""
    evidence = evidence_of(record, verdict, delivery)
    kind = verdict.kind
    if kind is BounceKind.HARD:
        consent.suppress(session, email=email, scope=consent.GLOBAL, reason="hard_bounce", now=now)
        _move(session, subscriber, SubscriberStatus.BOUNCED, "bounce_hard", evidence,
              settings=settings, now=now)  # fmt: skip
        return "suppressed" if subscriber else "suppressed (no subscriber)"
    if kind is BounceKind.COMPLAINT:
        consent.suppress(session, email=email, scope=consent.GLOBAL, reason="complaint", now=now)
        _move(session, subscriber, SubscriberStatus.COMPLAINED, "complaint", evidence,
              settings=settings, now=now)  # fmt: skip
        return "suppressed from all lists"
    if kind is BounceKind.SOFT:
        if record.dsn_action == "delayed":
            _note(session, subscriber, "bounce_delayed", evidence, settings=settings, now=now)
            return "noted"
        since = now - timedelta(days=settings.soft_bounce_window_days)
        # This report is not stored yet: count it on top of the earlier ones.
        seen = store.soft_bounce_issues(session, email=email, since=since)
        count = len(seen | {f"issue:{delivery.issue_id}" if delivery else "this"})
        limit = settings.soft_bounce_limit
        if count >= limit:
            consent.suppress(session, email=email, scope=consent.GLOBAL,
                             reason="soft_bounce_limit", now=now)  # fmt: skip
            _move(session, subscriber, SubscriberStatus.BOUNCED, "bounce_soft_limit", evidence,
                  settings=settings, now=now)  # fmt: skip
            return f"suppressed after {count} soft"
        _note(session, subscriber, "bounce_soft", evidence, settings=settings, now=now)
        return f"counted {count}/{limit}"
    if kind is BounceKind.POLICY:
        _note(session, subscriber, "bounce_policy", evidence, settings=settings, now=now)
        return "not suppressed (policy)"
    return "none"


def _move(
    session: Session,
    subscriber: Subscriber | None,
    to: SubscriberStatus,
    action: str,
    evidence: str,
    *,
    settings: Settings,
    now: datetime,
) -> None:
    """Change the status when the state machine allows it; otherwise (already bounced,
    complained) only append the evidence."""
    if subscriber is None:
        return
    current = SubscriberStatus(subscriber.status)
    source = "complaint" if to is SubscriberStatus.COMPLAINED else "bounce"
    if consent.allowed(current, to) and current is not to:
        consent.transition(session, subscriber, to, source=source, now=now, evidence=evidence,
                           list_id=settings.newsletter_id)  # fmt: skip
    else:
        _note(session, subscriber, action, evidence, settings=settings, now=now)


def _note(
    session: Session,
    subscriber: Subscriber | None,
    action: str,
    evidence: str,
    *,
    settings: Settings,
    now: datetime,
) -> None:
    if subscriber is not None:
        consent.record(session, subscriber, action=action, source="bounce", now=now,
                       evidence=evidence, list_id=settings.newsletter_id)  # fmt: skip


def evidence_of(record: BounceRecord, verdict: Verdict, delivery: Delivery | None) -> str:
    """The consent event's evidence for a bounce: its kind, rule and diagnostic, as JSON."""
    return json.dumps(
        {
            "kind": verdict.kind.value,
            "rule": verdict.rule,
            "status": record.status,
            "diagnostic": record.diagnostic[:500],
            "report": record.report,
            "remote_mta": record.remote_mta,
            "delivery_id": delivery.id if delivery else None,
        },
        sort_keys=True,
        ensure_ascii=False,
    )
