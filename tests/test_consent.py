"""The consent state machine, its append-only hash-chained log, suppressions, and the
subscriber flows built on them (real SQLite file; PostgreSQL too when configured)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from digest.errors import ConsentError, InputError, NotFound, StateError
from digest.models import ConsentEvent, Subscriber, SubscriberStatus
from digest.settings import Settings
from digest.store import consent as log
from digest.store import subscribers as store
from digest.subscribers import chain, consent, service
from digest.subscribers.export import person_record

S = SubscriberStatus
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def events(session: Session) -> list[ConsentEvent]:
    return list(session.exec(select(ConsentEvent).order_by(ConsentEvent.id)).all())  # type: ignore[arg-type]


def token_of(url: str | None) -> str:
    assert url is not None
    return url.rsplit("/", 1)[1]


@pytest.fixture
def db(session: Session) -> Iterator[Session]:
    yield session
    session.rollback()


def subscribed(db: Session, settings: Settings, email: str = "ana@example.org") -> str:
    outcome = service.subscribe(
        db,
        settings=settings,
        email=email,
        source="web",
        now=NOW,
        ip="192.0.2.7",
        user_agent="Firefox",
    )
    db.commit()
    return token_of(outcome.confirm_url)


def confirmed(db: Session, settings: Settings, email: str = "ana@example.org") -> Subscriber:
    return service.add_confirmed(
        db, settings=settings, email=email, evidence="paper form 2026-01-02", source="cli", now=NOW
    )


# --- the state machine ----------------------------------------------------------------------


def test_a_new_subscriber_is_pending_with_one_event_holding_the_evidence(
    db: Session, settings: Settings
) -> None:
    subscribed(db, settings, " Ana@Example.ORG ")
    sub = store.subscriber_by_email(db, "ana@example.org")
    assert sub is not None and sub.status == S.PENDING
    (event,) = events(db)
    assert (event.action, event.from_status, event.to_status) == (
        "subscribe_requested",
        None,
        "pending",
    )
    assert (event.source, event.ip, event.user_agent, event.list_id) == (
        "web",
        "192.0.2.7",
        "Firefox",
        "friday",
    )
    assert event.wording_version == consent.WORDING_VERSION
    assert event.wording_hash == consent.WORDING_HASH
    assert event.email_hash == consent.email_hash("ana@example.org") == sub.email_hash
    assert event.prev_hash == log.GENESIS


def test_confirming_without_the_persons_click_needs_evidence(
    db: Session, settings: Settings
) -> None:
    with pytest.raises(ConsentError, match="evidence"):
        service.add_confirmed(
            db, settings=settings, email="bo@example.org", evidence=" ", source="cli", now=NOW
        )
    assert events(db) == []


def test_a_forbidden_transition_raises_and_writes_nothing(db: Session, settings: Settings) -> None:
    sub = confirmed(db, settings)
    before = len(events(db))
    with pytest.raises(ConsentError, match="cannot go from confirmed to pending"):
        consent.transition(db, sub, S.PENDING, source="cli", now=NOW, list_id="friday")
    assert len(events(db)) == before and sub.status == S.CONFIRMED


def test_a_stale_status_loses_the_race_and_writes_no_event(
    engine: Engine, settings: Settings
) -> None:
    with Session(engine, expire_on_commit=False) as first:
        token = subscribed(first, settings)
        stale = store.subscriber_by_email(first, "ana@example.org")
        assert stale is not None
        first.commit()
        # Someone else confirms in another session while `stale` still says pending.
        with Session(engine) as other:
            service.confirm(other, token=token, now=NOW)
            other.commit()
        with pytest.raises(ConsentError, match="changed meanwhile"):
            consent.transition(
                first, stale, S.CONFIRMED, source="confirm", now=NOW, list_id="friday"
            )
        first.rollback()
        assert [e.action for e in events(first)] == ["subscribe_requested", "confirmed"]


# --- the log is append-only and chained ----------------------------------------------------


def many_events(db: Session, settings: Settings) -> None:
    for n in range(3):
        token = subscribed(db, settings, f"p{n}@example.org")
        service.confirm(db, token=token, now=NOW + timedelta(minutes=n))
    db.commit()


def test_every_change_extends_a_chain_that_verifies(db: Session, settings: Settings) -> None:
    many_events(db, settings)
    rows = events(db)
    assert len(rows) == 6
    assert all(b.prev_hash == a.hash for a, b in zip(rows, rows[1:], strict=False))
    report = chain.verify_chain(db)
    assert report.ok and report.events == 6 and report.head == rows[-1].hash


def test_the_database_refuses_to_update_or_delete_consent_events(
    db: Session, settings: Settings
) -> None:
    many_events(db, settings)
    for statement in ("UPDATE consent_events SET ip = '203.0.113.1'", "DELETE FROM consent_events"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            db.execute(sa.text(statement))
        db.rollback()
    assert len(events(db)) == 6 and chain.verify_chain(db).ok


def test_the_orm_refuses_to_flush_a_changed_or_deleted_event(
    db: Session, settings: Settings
) -> None:
    many_events(db, settings)
    first = events(db)[0]
    first.ip = "203.0.113.1"
    with pytest.raises(log.AppendOnlyViolation):
        db.flush()
    db.rollback()
    db.delete(events(db)[0])
    with pytest.raises(log.AppendOnlyViolation):
        db.flush()


def test_the_chain_cannot_fork(db: Session, settings: Settings) -> None:
    many_events(db, settings)
    head = events(db)[-1]
    fields = {
        "subscriber_id": head.subscriber_id,
        "email_hash": head.email_hash,
        "at": NOW,
        "action": "confirmed",
        "from_status": "pending",
        "to_status": "confirmed",
        "source": "web",
        "list_id": "friday",
    }
    db.add(
        ConsentEvent(
            **fields, prev_hash=head.prev_hash, hash=chain.event_hash(head.prev_hash, fields)
        )
    )
    with pytest.raises(sa.exc.IntegrityError):
        db.flush()


def without_guards(db: Session) -> None:
    """What an intruder with database rights could do: switch the triggers off."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(sa.text("ALTER TABLE consent_events DISABLE TRIGGER consent_events_append_only"))
    else:
        db.execute(sa.text("DROP TRIGGER consent_events_no_update"))
        db.execute(sa.text("DROP TRIGGER consent_events_no_delete"))


def test_an_edited_event_is_named_by_verify(db: Session, settings: Settings) -> None:
    many_events(db, settings)
    target = events(db)[2]
    without_guards(db)
    db.execute(
        sa.text("UPDATE consent_events SET ip = '203.0.113.9' WHERE id = :i"), {"i": target.id}
    )
    report = chain.verify_chain(db)
    assert not report.ok and report.first_bad_id == target.id and "edited" in (report.problem or "")


def test_a_deleted_event_is_named_by_verify(db: Session, settings: Settings) -> None:
    many_events(db, settings)
    rows = events(db)
    without_guards(db)
    db.execute(sa.text("DELETE FROM consent_events WHERE id = :i"), {"i": rows[3].id})
    report = chain.verify_chain(db)
    assert (
        not report.ok and report.first_bad_id == rows[4].id and "deleted" in (report.problem or "")
    )


# --- suppressions and who may receive ---------------------------------------------------------


def test_suppression_is_scoped_global_or_per_newsletter(db: Session) -> None:
    consent.suppress(db, email="Ana@Example.org", scope="friday", reason="unsubscribed", now=NOW)
    consent.suppress(db, email="ana@example.org", scope="friday", reason="unsubscribed", now=NOW)
    assert consent.is_suppressed(db, email="ana@example.org", newsletter="friday")
    assert not consent.is_suppressed(db, email="ana@example.org", newsletter="monday")
    consent.suppress(db, email="bo@example.org", scope="global", reason="complained", now=NOW)
    assert consent.is_suppressed(db, email="bo@example.org", newsletter="monday")


def test_may_receive_says_why_someone_is_skipped(db: Session, settings: Settings) -> None:
    sub = confirmed(db, settings)
    assert consent.may_receive(db, sub, newsletter="friday") is None
    consent.suppress(db, email=sub.email, scope="global", reason="bounced", now=NOW)
    assert consent.may_receive(db, sub, newsletter="friday") == "suppressed (global: bounced)"
    pending = store.subscriber_by_email(db, "x@example.org") or Subscriber(email="x@example.org")
    consent.transition(db, pending, S.PENDING, source="web", now=NOW, list_id="friday")
    assert consent.may_receive(db, pending, newsletter="friday") == "status is pending"


def test_the_recipient_query_enforces_consent_and_suppression(
    db: Session, settings: Settings
) -> None:
    ok = [confirmed(db, settings, f"ok{n}@example.org") for n in range(3)]
    subscribed(db, settings, "pending@example.org")
    paused = confirmed(db, settings, "paused@example.org")
    paused.paused = True
    gone = confirmed(db, settings, "gone@example.org")
    consent.suppress(db, email=gone.email, scope="friday", reason="unsubscribed", now=NOW)
    other = confirmed(db, settings, "other@example.org")
    consent.suppress(db, email=other.email, scope="monday", reason="unsubscribed", now=NOW)
    erased = confirmed(db, settings, "erased@example.org")
    service.erase(db, settings=settings, email=erased.email, now=NOW)
    db.flush()
    got = service.confirmed_recipients(db, newsletter="friday")
    assert [s.email for s in got] == [s.email for s in ok] + ["other@example.org"]
    page = service.confirmed_recipients(db, newsletter="friday", after_id=ok[0].id or 0, limit=1)
    assert [s.email for s in page] == [ok[1].email]


# --- the flows -------------------------------------------------------------------------------


def test_confirming_twice_is_harmless(db: Session, settings: Settings) -> None:
    token = subscribed(db, settings)
    first = service.confirm(db, token=token, now=NOW, ip="192.0.2.8", user_agent="Safari")
    again = service.confirm(db, token=token, now=NOW + timedelta(hours=1))
    assert first.id == again.id and again.status == S.CONFIRMED
    assert [e.action for e in events(db)] == ["subscribe_requested", "confirmed"]
    assert events(db)[-1].ip == "192.0.2.8"


def test_forged_expired_and_reused_confirm_tokens_change_nothing(
    db: Session, settings: Settings
) -> None:
    token = subscribed(db, settings)
    with pytest.raises(InputError, match="not valid"):
        service.confirm(db, token=token[:-2] + "xx", now=NOW)
    with pytest.raises(InputError, match="expired"):
        service.confirm(db, token=token, now=NOW + timedelta(hours=48, seconds=1))
    assert store.subscriber_by_email(db, "ana@example.org").status == S.PENDING  # type: ignore[union-attr]
    service.confirm(db, token=token, now=NOW + timedelta(hours=47))
    service.remove(db, settings=settings, email="ana@example.org", now=NOW + timedelta(days=3))
    with pytest.raises(StateError, match="used already"):
        service.confirm(db, token=token, now=NOW + timedelta(days=3))
    assert store.subscriber_by_email(db, "ana@example.org").status == S.UNSUBSCRIBED  # type: ignore[union-attr]
    assert [e.action for e in events(db)] == ["subscribe_requested", "confirmed", "unsubscribed"]


def test_subscribing_again_replaces_the_confirmation_link(db: Session, settings: Settings) -> None:
    old = subscribed(db, settings)
    new = subscribed(db, settings)
    with pytest.raises(InputError, match="not valid"):
        service.confirm(db, token=old, now=NOW)
    assert service.confirm(db, token=new, now=NOW).status == S.CONFIRMED


def test_subscribing_a_confirmed_or_bounced_address_sends_nothing(
    db: Session, settings: Settings
) -> None:
    confirmed(db, settings)
    outcome = service.subscribe(
        db, settings=settings, email="ana@example.org", source="web", now=NOW
    )
    assert outcome.confirm_url is None and outcome.result == "already confirmed"
    consent.suppress(db, email="bo@example.org", scope="global", reason="bounced", now=NOW)
    outcome = service.subscribe(
        db, settings=settings, email="bo@example.org", source="web", now=NOW
    )
    assert outcome.confirm_url is None and outcome.result == "suppressed"
    with pytest.raises(InputError, match="not a valid email"):
        service.subscribe(db, settings=settings, email="bo@@example", source="web", now=NOW)


def test_one_click_unsubscribe_is_idempotent_and_scoped_to_its_newsletter(
    db: Session, settings: Settings
) -> None:
    sub = confirmed(db, settings)
    url = service.unsubscribe_url(settings=settings, subscriber=sub)
    assert url.startswith("https://news.example.org/u/")
    for _ in range(2):
        service.unsubscribe(db, settings=settings, token=token_of(url), source="one-click", now=NOW)
    assert sub.status == S.UNSUBSCRIBED
    assert [e.action for e in events(db)] == ["confirmed", "unsubscribed"]
    assert consent.is_suppressed(db, email=sub.email, newsletter="friday")
    assert not consent.is_suppressed(db, email=sub.email, newsletter="monday")
    with pytest.raises(InputError):
        service.unsubscribe(
            db, settings=settings, token=token_of(url) + "x", source="one-click", now=NOW
        )


def test_preferences_pause_resume_unsubscribe_and_resubscribe(
    db: Session, settings: Settings
) -> None:
    sub = confirmed(db, settings)
    token = token_of(service.preferences_url(settings=settings, subscriber=sub))

    def act(action: str, **kw: str) -> Subscriber:
        return service.update_preferences(
            db, settings=settings, token=token, action=action, now=NOW, **kw
        )

    assert act("name", name="  Ana B. ").name == "Ana B."
    assert act("pause").paused and consent.may_receive(db, sub, newsletter="friday") == "paused"
    assert not act("resume").paused
    assert act("unsubscribe").status == S.UNSUBSCRIBED
    assert act("resubscribe").status == S.CONFIRMED
    assert not consent.is_suppressed(db, email=sub.email, newsletter="friday")
    assert [e.action for e in events(db)] == [
        "confirmed",
        "paused",
        "resumed",
        "unsubscribed",
        "confirmed",
    ]
    with pytest.raises(InputError, match="unknown preferences action"):
        act("explode")


def test_erasing_keeps_only_a_hash_and_blocks_re_adding(db: Session, settings: Settings) -> None:
    sub = confirmed(db, settings)
    service.erase(db, settings=settings, email="ana@example.org", now=NOW)
    db.commit()
    assert store.subscriber_by_email(db, "ana@example.org") is None
    assert sub.email.endswith("@erased.invalid") and sub.name == "" and sub.email_hash == ""
    assert consent.is_suppressed(db, email="ana@example.org", newsletter="friday")
    assert [e.action for e in events(db)] == ["confirmed", "unsubscribed", "erased"]
    assert all("ana" not in (e.evidence or "") + (e.user_agent or "") for e in events(db))
    with pytest.raises(ConsentError, match="suppression list"):
        confirmed(db, settings)
    with pytest.raises(NotFound):
        person_record(db, email="ana@example.org")
    assert chain.verify_chain(db).ok


def test_a_fresh_double_opt_in_after_erasure_lifts_the_erasure(
    db: Session, settings: Settings
) -> None:
    confirmed(db, settings)
    service.erase(db, settings=settings, email="ana@example.org", now=NOW)
    token = subscribed(db, settings)
    service.confirm(db, token=token, now=NOW)
    assert not consent.is_suppressed(db, email="ana@example.org", newsletter="friday")


def test_a_persons_record_holds_their_whole_history(db: Session, settings: Settings) -> None:
    token = subscribed(db, settings)
    service.confirm(db, token=token, now=NOW)
    record = person_record(db, email="ANA@example.org")
    assert record["email"] == "ana@example.org" and record["status"] == "confirmed"
    assert [e["action"] for e in record["events"]] == ["subscribe_requested", "confirmed"]
    assert record["events"][0]["ip"] == "192.0.2.7"


def test_bulk_admission_follows_the_same_rules_and_extends_the_same_chain(
    db: Session, settings: Settings
) -> None:
    confirmed(db, settings, "first@example.org")
    with pytest.raises(ConsentError, match="needs consent evidence"):
        consent.admit(db, [consent.Admission("a@example.org", "", S.CONFIRMED)], source="import",
                      now=NOW, list_id="friday")  # fmt: skip
    assert len(events(db)) == 1
    ids = consent.admit(
        db,
        [consent.Admission(f"p{n}@example.org", "", S.PENDING) for n in range(3)]
        + [consent.Admission("c@example.org", "C", S.CONFIRMED, evidence="fair")],
        source="import", now=NOW, list_id="friday",
    )  # fmt: skip
    confirmed(db, settings, "last@example.org")  # a single transition after the bulk one
    assert len(ids) == 4 and [e.subscriber_id for e in events(db)[1:5]] == ids
    assert chain.verify_chain(db).ok and chain.verify_chain(db).events == 6
    assert store.subscriber_by_email(db, "c@example.org").status == S.CONFIRMED  # type: ignore[union-attr]
