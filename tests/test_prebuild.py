"""Messages built ahead by the forked prebuild child (send.prebuild), on SQLite and PostgreSQL.

The child is a real forked process reading the real ledger; the sender is the in-memory twin
(the crash-safety test runs the same path against aiosmtpd, killed at random points)."""

from __future__ import annotations

import asyncio
import dataclasses
import email
import time
from datetime import datetime
from typing import Any

import dkim
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select
from test_ledger import FAST, NOW, add_issue, add_people, send

from digest.db import session_scope
from digest.models import Delivery
from digest.send import prebuild
from digest.send.claims import recipient_for
from digest.send.dkim import generate_key, key_file, make_default
from digest.send.engine import build_template
from digest.send.memory import MemorySender
from digest.settings import Settings
from digest.store import deliveries as ledger

pytestmark = pytest.mark.skipif(not prebuild.available(), reason="building ahead needs os.fork")
AHEAD = dataclasses.replace(FAST, prebuild_from=1)


class AfterTheChild(MemorySender):
    """The in-memory relay, except that its first message waits until the prebuild child has
    delivered ``ahead`` messages: it answers at once, so the send loop would otherwise finish
    on its own before a busy machine has even started the child."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, ahead: int = 5) -> None:
        super().__init__()
        self.ahead = ahead
        self.builders: list[prebuild.Prebuilder] = []
        start = prebuild.Prebuilder.start

        def recorded(builder: prebuild.Prebuilder, work: prebuild.Work) -> None:
            self.builders.append(builder)
            start(builder, work)

        monkeypatch.setattr(prebuild.Prebuilder, "start", recorded)

    async def send(self, **kwargs: Any) -> None:
        deadline = time.monotonic() + 30
        while not self.builders or self.builders[0].received < self.ahead:
            assert time.monotonic() < deadline, "the prebuild child built nothing"
            await asyncio.sleep(0.005)
        await super().send(**kwargs)


def signing_key(settings: Settings) -> dict[bytes, bytes]:
    path = key_file(settings.data_dir, selector="s1", domain="news.example.org")
    txt = generate_key(path=path)
    make_default(data_dir=settings.data_dir, selector="s1", domain="news.example.org", key=path)
    return {b"s1._domainkey.news.example.org.": txt.encode()}


def test_messages_built_ahead_are_signed_for_their_recipient_and_recorded_by_message_id(
    engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    emails = add_people(engine, settings, 60)
    issue = add_issue(engine, settings)
    table = signing_key(settings)
    sender = AfterTheChild(monkeypatch)
    report = send(engine, settings, issue, sender, policy=AHEAD)
    assert report.sent == 60 and report.built_ahead > 0
    assert sorted(r[0] for _, r, _ in sender.sent) == emails  # each once
    with session_scope(engine) as session:
        recorded = {d.email: d.message_id for d in session.exec(select(Delivery)).all()}
    for _, (to,), data in sender.sent:
        assert dkim.verify(data, dnsfunc=lambda n, timeout=5: table.get(n))
        parsed = email.message_from_bytes(data)
        assert to in parsed["To"]
        assert parsed["Message-ID"] == recorded[to]
    assert len(set(recorded.values())) == 60


def test_a_child_that_fails_leaves_every_message_to_the_send_loop(
    engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("the child breaks")

    monkeypatch.setattr(prebuild, "_build_all", broken)  # the forked child inherits it
    emails = add_people(engine, settings, 20)
    issue = add_issue(engine, settings)
    sender = MemorySender()
    report = send(engine, settings, issue, sender, policy=AHEAD)
    assert report.built_ahead == 0 and report.sent == 20
    assert sorted(r[0] for _, r, _ in sender.sent) == emails

    async def failing_child() -> str | None:
        builder = prebuild.Prebuilder(stock=4)
        template = build_template(settings=settings, issue=issue)
        builder.start(prebuild.Work(engine, template, settings, issue.id or 0, b"", 0, time_now))
        deadline = time.monotonic() + 30
        while not builder.ended:
            assert time.monotonic() < deadline, "the child never ended"
            await asyncio.sleep(0.01)
        builder.close()
        return builder.trouble

    # What the report and `--json` carry as built_ahead_trouble, once the child has ended.
    assert asyncio.run(failing_child()) == "it exited with status 1"


def time_now() -> datetime:
    return datetime.now(NOW.tzinfo)


def test_a_message_is_taken_only_for_the_same_recipient_and_while_fresh(
    engine: Engine, settings: Settings
) -> None:
    add_people(engine, settings, 6)
    issue = add_issue(engine, settings)
    assert issue.id is not None
    from digest.send.engine import enqueue_recipients

    enqueue_recipients(engine, settings=settings, issue_id=issue.id, now=NOW)
    with session_scope(engine) as session:
        rows = ledger.upcoming(session, issue_id=issue.id, after=0, limit=10)
    assert [row.email for row, _ in rows] == sorted(row.email for row, _ in rows)
    template = build_template(settings=settings, issue=issue)

    async def built_ahead(max_age: float) -> prebuild.Prebuilder:
        builder = prebuild.Prebuilder(stock=10, max_age=max_age)
        builder.start(
            prebuild.Work(
                engine,
                template=template,
                settings=settings,
                issue_id=issue.id or 0,
                secret=b"",
                skip=0,
                clock=time_now,
            )
        )
        deadline = time.monotonic() + 30
        while builder.received < len(rows):
            assert time.monotonic() < deadline, "the child built nothing"
            await asyncio.sleep(0.01)
        return builder

    async def scenario() -> None:
        builder = await built_ahead(max_age=60)
        (first, name), (second, second_name) = rows[0], rows[1]
        recipient = recipient_for(first, name, settings=settings, secret=b"")
        renamed = dataclasses.replace(
            recipient_for(second, second_name, settings=settings, secret=b""), name="Someone Else"
        )
        try:
            built = builder.take(first.delivery_id, recipient)
            assert built is not None and built.recipient == recipient
            assert b"To: Reader 0 <reader0000@example.org>" in built.data
            assert builder.take(first.delivery_id, recipient) is None  # taken once
            assert builder.take(second.delivery_id, renamed) is None  # the name changed
        finally:
            builder.close()
        stale = await built_ahead(max_age=0)
        try:
            time.sleep(0.01)
            assert stale.take(first.delivery_id, recipient) is None
        finally:
            stale.close()

    asyncio.run(scenario())


def test_messages_larger_than_the_read_buffer_arrive_whole(
    engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prebuild, "_READ", 512)  # every message is several times larger
    emails = add_people(engine, settings, 30)
    issue = add_issue(engine, settings)
    table = signing_key(settings)
    sender = AfterTheChild(monkeypatch)
    report = send(engine, settings, issue, sender, policy=AHEAD)
    assert report.built_ahead > 0
    assert sorted(r[0] for _, r, _ in sender.sent) == emails
    for _, _, data in sender.sent:
        assert len(data) > 512
        assert dkim.verify(data, dnsfunc=lambda n, timeout=5: table.get(n))
