"""Turn classified bounces into store changes: a ``Bounce`` row, a consent event with the
evidence, and a suppression where the reader's address is the problem.

- hard → the subscriber becomes ``bounced`` and the address is suppressed everywhere, now;
- soft → counted (one per issue); at ``soft_bounce_limit`` within ``soft_bounce_window_days``
  the subscriber becomes ``bounced`` and the address is suppressed; delay warnings are noted only;
- complaint → ``complained`` and suppressed from every list at once;
- policy → the receiver refused the sender: never suppress the reader; alert the operator and
  pause the issue's send once ``policy_pause_threshold`` recipients were refused;
- unknown → recorded, nothing else.

Unsubscribe requests sent to the List-Unsubscribe mailto address share the mailbox; ``process``
hands them to ``digest.bounces.mailto``. The decisions live in ``digest.bounces.decide``; status
changes and suppressions go through ``digest.subscribers.consent`` only.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from digest.bounces import mailto
from digest.bounces.classify import Verdict, explain
from digest.bounces.decide import act
from digest.bounces.parse import BounceRecord, parse_report
from digest.bounces.sources import ImapMailbox, Incoming, Mailbox, drain, message_id_of
from digest.bounces.verp import delivery_id_from_token
from digest.models import Bounce, BounceKind, Delivery, Subscriber
from digest.settings import Settings
from digest.store import bounces as store
from digest.subscribers import consent

log = logging.getLogger("digest.bounces")

# What a dry run says would happen, per kind.
PLANNED = {
    BounceKind.HARD: "suppress",
    BounceKind.SOFT: "count",
    BounceKind.POLICY: "alert (never suppress)",
    BounceKind.COMPLAINT: "suppress from all lists",
    BounceKind.UNKNOWN: "none",
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What was decided for one bounced recipient (the JSON line of ``bounces process``)."""

    source: str
    recipient: str
    kind: str
    status: str | None
    diagnostic: str
    action: str
    rule: str
    delivery_id: int | None = None
    issue_id: int | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class ProcessReport:
    messages: int = 0
    outcomes: list[Outcome] = field(default_factory=list)
    not_bounces: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    unsubscribes: list[mailto.UnsubscribeOutcome] = field(default_factory=list)

    def summary(self) -> str:
        """One line: messages read, bounced recipients and emailed unsubscribe requests."""
        line = f"{self.messages} message(s) read, {len(self.outcomes)} bounced recipient(s)"
        if self.unsubscribes:
            refused = sum(u.refused for u in self.unsubscribes)
            line += f", {len(self.unsubscribes)} unsubscribe request(s)"
            line += f" ({refused} refused)" if refused else ""
        return line


def plan(record: BounceRecord) -> Outcome:
    """The decision for one record without touching anything (``--dry-run``)."""
    verdict = explain(record)
    action = PLANNED[verdict.kind]
    if verdict.kind is BounceKind.SOFT and record.dsn_action == "delayed":
        action = "note (still retrying)"
    return _outcome(record, verdict, action=action)


def process(
    messages: Iterable[Incoming],
    *,
    settings: Settings,
    now: datetime,
    engine: Engine | None = None,
    dry_run: bool = False,
) -> ProcessReport:
    """Parse, classify and (unless ``dry_run``) apply every message; one transaction each.

    ``engine`` is required unless ``dry_run``. A message to the unsubscribe address goes to
    ``mailto`` (``unsubscribes``); one that holds no bounce is listed in ``not_bounces`` and
    changes nothing.
    """
    from digest.db import session_scope

    report = ProcessReport()
    for message in messages:
        report.messages += 1
        request = mailto.request_of(message.raw, source=message.source, settings=settings)
        if request is not None:
            if dry_run:
                report.unsubscribes.append(mailto.plan(request, settings=settings))
                continue
            if engine is None:
                raise TypeError("process() needs an engine unless dry_run is set")
            with session_scope(engine) as session:
                done = mailto.apply_request(session, request, settings=settings, now=now)
            report.unsubscribes.append(done)
            continue
        records = parse_report(message.raw, source=message.source, verp_domain=settings.verp_domain)
        if not records:
            report.not_bounces.append(message.source)
            continue
        if dry_run:
            report.outcomes.extend(plan(r) for r in records)
            continue
        if engine is None:
            raise TypeError("process() needs an engine unless dry_run is set")
        key = report_key(message)
        with session_scope(engine) as session:
            for record in records:
                outcome = apply(session, record, settings=settings, now=now, key=key)
                report.outcomes.append(outcome)
                alert = _alert_for(session, outcome, settings=settings)
                if alert and alert not in report.alerts:
                    log.warning(alert)
                    report.alerts.append(alert)
    return report


def poll_mailbox(
    *,
    settings: Settings,
    engine: Engine | None,
    clock: Callable[[], datetime],
    dry_run: bool = False,
    mailbox: Mailbox | None = None,
) -> ProcessReport:
    """Handle everything in the bounce mailbox (IMAP from the settings unless ``mailbox`` is
    given), one message per transaction, moving each handled message to the processed folder.
    For ``digest bounces process --imap`` and the scheduler's polling job. Raises SourceError
    when the mailbox cannot be reached, ConfigError when none is configured."""
    report = ProcessReport()

    def handle(message: Incoming) -> None:
        one = process([message], settings=settings, now=clock(), engine=engine, dry_run=dry_run)
        report.messages += one.messages
        report.outcomes += one.outcomes
        report.not_bounces += one.not_bounces
        report.unsubscribes += one.unsubscribes
        report.alerts += [a for a in one.alerts if a not in report.alerts]

    if mailbox is not None:
        drain(mailbox, handle, dry_run=dry_run)
        return report
    with ImapMailbox(settings) as imap:
        drain(imap, handle, dry_run=dry_run)
    return report


def report_key(message: Incoming) -> str:
    """What identifies one report across re-reads: its Message-ID, else a hash of its bytes."""
    return message_id_of(message.raw) or "sha256:" + hashlib.sha256(message.raw).hexdigest()[:32]


def apply(
    session: Session,
    record: BounceRecord,
    *,
    settings: Settings,
    now: datetime,
    key: str,
    delivery: Delivery | None = None,
) -> Outcome:
    """Record one bounced recipient and act on it. Handling the same report twice is a no-op.

    ``delivery`` is the bounced delivery when the caller knows it (an SMTP-session refusal);
    otherwise it is found from the VERP token or the original Message-ID."""
    verdict = explain(record)
    delivery = delivery or _delivery_for(session, record, settings=settings)
    email = consent.normalise_email(delivery.email if delivery else record.recipient)
    if not email:
        return _outcome(record, verdict, action="none (no recipient)")
    if store.already_recorded(session, source=key, email=email):
        return _outcome(record, verdict, action="already recorded", delivery=delivery)
    subscriber = _subscriber_for(session, delivery, email)
    action = act(session, record, verdict, subscriber=subscriber, email=email,
                  delivery=delivery, settings=settings, now=now)  # fmt: skip
    store.add_bounce(
        session,
        Bounce(
            delivery_id=delivery.id if delivery else None,
            issue_id=delivery.issue_id if delivery else None,
            email=email,
            kind=verdict.kind,
            status=(record.status or None) and record.status[:16],
            diagnostic=record.diagnostic[:4000],
            source=key[:500],
            action=action[:40],
            received_at=now,
        ),
    )
    return _outcome(record, verdict, action=action, delivery=delivery, email=email)


def record_smtp_rejection(
    session: Session,
    *,
    delivery: Delivery,
    code: int,
    message: str,
    settings: Settings,
    now: datetime,
    phase: str | None = None,
) -> Outcome:
    """A recipient refused during the SMTP session (RCPT or DATA): handled like a bounce.

    For the send engine; ``phase`` is "rcpt" or "data" when known. Returns the outcome.
    """
    from digest.bounces.parse import STATUS_RE

    found = STATUS_RE.search(message)
    record = BounceRecord(
        source=f"smtp:{delivery.id}",
        recipient=delivery.email,
        report="heuristic",
        status=found.group(0) if found else f"{str(code)[:1]}.0.0",
        diagnostic=f"{code} {message}".strip(),
        smtp_code=code,
        smtp_phase=phase,
        dsn_action="failed" if code >= 500 else "delayed",
        original_message_id=delivery.message_id,
    )
    # The delivery is known (a refused message has no Message-ID on record to find it by);
    # the key makes a retried report a no-op.
    key = f"smtp:{delivery.id}:{code}"
    outcome = apply(session, record, settings=settings, now=now, key=key, delivery=delivery)
    alert = _alert_for(session, outcome, settings=settings)
    if alert:
        log.warning(alert)
    return outcome


def pause_reason(
    session: Session, *, issue_id: int, settings: Settings, since: datetime | None = None
) -> str | None:
    """Why the send of ``issue_id`` should pause now (too many policy rejections), or None.

    The send engine checks this between batches with ``since`` set to the start of its run:
    refusals before an earlier pause do not count again, so a send resumed after the operator
    fixed the cause is not paused at once by the evidence that paused it before."""
    count = store.policy_count(session, issue_id=issue_id, since=since)
    if count < settings.policy_pause_threshold:
        return None
    when = " in this run" if since is not None else ""
    return (
        f"{count} recipients of issue {issue_id} were refused for policy reasons{when} (threshold "
        f"{settings.policy_pause_threshold}): receivers are rejecting the sender. Check SPF, "
        "DKIM, DMARC and blocklists (digest dns-records, digest bounces list --kind policy) "
        "before resuming"
    )


def _alert_for(session: Session, outcome: Outcome, *, settings: Settings) -> str | None:
    if outcome.kind != BounceKind.POLICY.value or outcome.issue_id is None:
        return None
    return pause_reason(session, issue_id=outcome.issue_id, settings=settings)


# --- finding the delivery and the person ------------------------------------------------------


def _delivery_for(session: Session, record: BounceRecord, *, settings: Settings) -> Delivery | None:
    """The delivery a bounce belongs to: by VERP token, else by the original Message-ID."""
    if record.verp_token:
        delivery_id = delivery_id_from_token(record.verp_token, secret=settings.secret())
        if delivery_id is not None:
            found = store.delivery_by_id(session, delivery_id)
            if found is not None:
                return found
    if record.original_message_id:
        return store.delivery_by_message_id(session, record.original_message_id)
    return None


def _subscriber_for(session: Session, delivery: Delivery | None, email: str) -> Subscriber | None:
    from digest.store.subscribers import get_subscriber, subscriber_by_email

    if delivery is not None:
        found = get_subscriber(session, delivery.subscriber_id)
        if found is not None:
            return found
    return subscriber_by_email(session, email)


def _outcome(
    record: BounceRecord,
    verdict: Verdict,
    *,
    action: str,
    delivery: Delivery | None = None,
    email: str | None = None,
) -> Outcome:
    return Outcome(
        source=record.source,
        recipient=email or record.recipient,
        kind=verdict.kind.value,
        status=record.status,
        diagnostic=record.diagnostic,
        action=action,
        rule=verdict.rule,
        delivery_id=delivery.id if delivery else None,
        issue_id=delivery.issue_id if delivery else None,
    )
