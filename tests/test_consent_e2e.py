"""The acceptance path of issue 6, end to end through real parts: the web app over HTTP
(uvicorn on 127.0.0.1), a real SMTP server (aiosmtpd) capturing every message, a real
database, and the real build/send pipeline.

subscribe → GET the confirm link three times (still pending) → POST (confirmed, one event)
→ receive the digest → POST one-click from the captured List-Unsubscribe header with no
cookies (200, unsubscribed, one event) → the next send skips them.
"""

from __future__ import annotations

import email
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from webserver import serving

from digest.demo import demo_settings
from digest.models import ConsentEvent, SubscriberStatus
from digest.pipeline import build_issue, ingest_paths, send_issue
from digest.settings import Settings
from digest.store import subscribers as store
from digest.subscribers import chain, consent, service
from digest.web.app import create_app

FIRST_SEND = datetime(2026, 3, 13, 7, 0, tzinfo=UTC)  # a Friday morning
SECOND_SEND = FIRST_SEND + timedelta(days=7)

# Stories written for this test (no third-party text).
STORIES = [
    (
        "Tram line extension opens",
        "The new tram line to the hospital opened on Monday. "
        "Trains run every eight minutes. The city expects ten thousand riders a day.",
    ),
    (
        "Flood defences finished early",
        "Work on the river wall finished two months early. "
        "The wall protects four hundred homes. It cost less than planned.",
    ),
    (
        "School meals get a new menu",
        "Pupils voted for the new school menu. Vegetable curry "
        "won by a wide margin. Kitchens start serving it next term.",
    ),
    (
        "Museum opens a night gallery",
        "The history museum now opens on Thursday nights. "
        "Entry after six is free. The first evening drew a long queue.",
    ),
]


def write_week(folder: Path, *, monday: datetime, tag: str) -> Path:
    path = folder / f"{tag}.jsonl"
    rows = [
        json.dumps({
            "title": f"{title} ({tag})", "text": body,
            "url": f"https://paper{n % 2}.example.com/{tag}/{n}",
            "published": (monday + timedelta(days=n % 4, hours=10)).isoformat(),
        })
        for n, (title, body) in enumerate(STORIES)
    ]  # fmt: skip
    path.write_text("\n".join(rows) + "\n")
    return path


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def wait_for(sink: Any, address: str, count: int) -> list[EmailMessage]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        got = [parse(d) for _, rcpts, d in list(sink.messages) if address in rcpts]
        if len(got) >= count:
            return got
        time.sleep(0.05)
    raise AssertionError(f"{address} did not get {count} message(s)")


@pytest.fixture
def world(
    settings: Settings, engine: Engine, smtp_sink: Any, tmp_path: Path
) -> Iterator[tuple[Settings, str]]:
    # Signed: the pre-send check refuses unsigned mail.
    settings = demo_settings(settings.model_copy(update={"smtp_port": smtp_sink.port}))
    for tag, monday in (
        ("w1", FIRST_SEND - timedelta(days=4)),
        ("w2", SECOND_SEND - timedelta(days=4)),
    ):
        ingest_paths([write_week(tmp_path, monday=monday, tag=tag)], settings=settings,
                     now=monday + timedelta(days=4))  # fmt: skip
    app = create_app(settings)
    app.state.engine = engine
    app.state.clock = lambda: FIRST_SEND - timedelta(days=1)
    with serving(app) as url:
        yield settings, url


def local(settings: Settings, url: str, public: str) -> str:
    """Mail links point at the public https host; the test server stands behind it."""
    assert public.startswith(settings.base_url + "/"), public
    return url + public[len(settings.base_url) :]


def status_and_actions(engine: Engine, address: str) -> tuple[str, list[str]]:
    with Session(engine) as session:
        sub = store.subscriber_by_email(session, address)
        assert sub is not None
        events = session.exec(
            select(ConsentEvent)
            .where(ConsentEvent.subscriber_id == sub.id)
            .order_by(ConsentEvent.id)  # type: ignore[arg-type]
        ).all()
        return str(sub.status), [e.action for e in events]


def test_subscribe_confirm_receive_one_click_unsubscribe_and_be_skipped(
    world: tuple[Settings, str], engine: Engine, smtp_sink: Any
) -> None:
    settings, url = world
    with Session(engine) as session:  # someone already on the list, to show the send goes on
        service.add_confirmed(session, settings=settings, email="regular@example.org",
                              evidence="paper form", source="cli", now=FIRST_SEND)  # fmt: skip
        session.commit()

    # 1. Subscribe through the form.
    with httpx.Client(base_url=url, follow_redirects=False) as browser:
        form = browser.get("/subscribe")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token is not None
        answer = browser.post("/subscribe", data={"email": "reader@example.org", "name": "Rea",
                                                  "csrf": token.group(1)})  # fmt: skip
    assert answer.status_code == 200
    (confirmation,) = wait_for(smtp_sink, "reader@example.org", 1)
    assert confirmation["From"].addresses[0].addr_spec == settings.transactional_from_email
    text = confirmation.get_body(preferencelist=("plain",))
    assert text is not None
    link = re.search(r"https://\S+/confirm/\S+", text.get_content())
    assert link is not None
    confirm_url = local(settings, url, link.group(0))

    # 2. A mail scanner (or the person) opens the link three times: nothing changes.
    for _ in range(3):
        page = httpx.get(confirm_url)
        assert page.status_code == 200 and "Yes, subscribe me" in page.text
    assert status_and_actions(engine, "reader@example.org") == ("pending", ["subscribe_requested"])

    # 3. The button POSTs: confirmed, with exactly one confirmation event.
    assert httpx.post(confirm_url).status_code == 200
    assert status_and_actions(engine, "reader@example.org") == (
        "confirmed", ["subscribe_requested", "confirmed"],
    )  # fmt: skip

    # 4. The digest arrives, with RFC 8058 headers.
    built = build_issue(settings=settings, now=FIRST_SEND, force=True)
    assert built.issue is not None
    first = send_issue(settings=settings, now=FIRST_SEND)
    assert first.sent == 2
    digest_mail = wait_for(smtp_sink, "reader@example.org", 2)[1]
    assert digest_mail["From"].addresses[0].addr_spec == settings.from_email
    assert digest_mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https = re.findall(r"<(https://[^>]+)>", digest_mail["List-Unsubscribe"])
    assert len(https) == 1

    # 5. The mailbox provider POSTs one-click: no cookies, 200, never a redirect, idempotent.
    for _ in range(2):
        with httpx.Client(follow_redirects=False) as provider:
            done = provider.post(local(settings, url, https[0]),
                                 data={"List-Unsubscribe": "One-Click"})  # fmt: skip
        assert done.status_code == 200 and "set-cookie" not in done.headers
        assert not provider.cookies
    assert status_and_actions(engine, "reader@example.org") == (
        "unsubscribed", ["subscribe_requested", "confirmed", "unsubscribed"],
    )  # fmt: skip

    # 6. The next week's send skips them and still reaches everyone else.
    build_issue(settings=settings, now=SECOND_SEND, force=True)
    second = send_issue(settings=settings, now=SECOND_SEND)
    assert second.sent == 1
    assert len(wait_for(smtp_sink, "regular@example.org", 2)) == 2
    assert sum("reader@example.org" in rcpts for _, rcpts, _ in smtp_sink.messages) == 2
    with Session(engine) as session:
        assert chain.verify_chain(session).ok
        assert consent.is_suppressed(session, email="reader@example.org", newsletter="friday")
        reader = store.subscriber_by_email(session, "reader@example.org")
        assert reader is not None and reader.status == SubscriberStatus.UNSUBSCRIBED


def test_forged_expired_and_reused_links_change_nothing_over_http(
    world: tuple[Settings, str], engine: Engine, smtp_sink: Any
) -> None:
    settings, url = world
    with Session(engine) as session:
        outcome = service.subscribe(session, settings=settings, email="late@example.org",
                                    source="web", now=FIRST_SEND - timedelta(days=3))  # fmt: skip
        member = service.add_confirmed(session, settings=settings, email="member@example.org",
                                       evidence="form", source="cli", now=FIRST_SEND)  # fmt: skip
        session.commit()
        unsubscribe = service.unsubscribe_url(settings=settings, subscriber=member)
    assert outcome.confirm_url is not None
    before = (
        status_and_actions(engine, "late@example.org"),
        status_and_actions(engine, "member@example.org"),
    )

    expired = httpx.post(local(settings, url, outcome.confirm_url))  # issued 3 days ago
    forged_confirm = httpx.post(local(settings, url, outcome.confirm_url[:-4] + "abcd"))
    forged_unsub = httpx.post(local(settings, url, unsubscribe[:-4] + "abcd"),
                              data={"List-Unsubscribe": "One-Click"})  # fmt: skip
    assert [r.status_code for r in (expired, forged_confirm, forged_unsub)] == [400, 400, 400]
    assert "expired" in expired.text and "not valid" in forged_confirm.text
    after = (
        status_and_actions(engine, "late@example.org"),
        status_and_actions(engine, "member@example.org"),
    )
    assert after == before

    # Reused: confirmed with a fresh link, unsubscribed, then the old link is posted again.
    with Session(engine) as session:
        fresh = service.subscribe(session, settings=settings, email="late@example.org",
                                  source="web", now=FIRST_SEND - timedelta(days=1))  # fmt: skip
        session.commit()
    assert fresh.confirm_url is not None
    fresh_url = local(settings, url, fresh.confirm_url)
    assert httpx.post(fresh_url).status_code == 200
    with Session(engine) as session:
        late = store.subscriber_by_email(session, "late@example.org")
    assert late is not None
    one_click = local(settings, url, service.unsubscribe_url(settings=settings, subscriber=late))
    assert httpx.post(one_click, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    reused = httpx.post(fresh_url)
    assert reused.status_code == 400 and "used already" in reused.text
    assert status_and_actions(engine, "late@example.org") == (
        "unsubscribed",
        ["subscribe_requested", "subscribe_requested", "confirmed", "unsubscribed"],
    )
