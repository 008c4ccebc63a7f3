"""The subscription pages over real HTTP (uvicorn on 127.0.0.1), with a real SQLite file (and
PostgreSQL when configured) and confirmation mail captured by a real aiosmtpd server."""

from __future__ import annotations

import email
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from webserver import serving

from digest.models import ConsentEvent, Subscriber, SubscriberStatus
from digest.settings import Settings
from digest.store import subscribers as store
from digest.subscribers import chain, consent, service
from digest.web.app import create_app
from digest.web.guards import RateLimiter

S = SubscriberStatus


@dataclass
class Site:
    url: str
    engine: Engine
    settings: Settings
    sink: Any
    clock: list[datetime]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, follow_redirects=False, timeout=20)

    def local(self, public_url: str) -> str:
        """The path of a link from a mail (base_url is the public https host)."""
        assert public_url.startswith(self.settings.base_url), public_url
        return public_url[len(self.settings.base_url) :]

    def subscriber(self, address: str) -> Subscriber | None:
        with Session(self.engine) as session:
            return store.subscriber_by_email(session, address)

    def events(self) -> list[ConsentEvent]:
        with Session(self.engine) as session:
            return list(session.exec(select(ConsentEvent).order_by(ConsentEvent.id)).all())  # type: ignore[arg-type]

    def mails_to(self, address: str, count: int = 1) -> list[EmailMessage]:
        """Wait (the confirmation goes out after the response) for ``count`` mails."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            got: list[EmailMessage] = [
                email.message_from_bytes(data, policy=policy.default)  # type: ignore[misc]
                for _, rcpts, data in list(self.sink.messages)
                if address in rcpts
            ]
            if len(got) >= count:
                return got
            time.sleep(0.05)
        raise AssertionError(f"no mail for {address} after 20 s")


@pytest.fixture
def site(settings: Settings, engine: Engine, smtp_sink: Any) -> Iterator[Site]:
    settings = settings.model_copy(update={"smtp_port": smtp_sink.port})
    app = create_app(settings)
    app.state.engine = engine
    clock = [datetime(2026, 11, 20, 9, 0, tzinfo=UTC)]
    app.state.clock = lambda: clock[0]
    with serving(app) as url:
        yield Site(url=url, engine=engine, settings=settings, sink=smtp_sink, clock=clock)


def form_token(client: httpx.Client) -> str:
    page = client.get("/subscribe")
    assert page.status_code == 200
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match is not None
    return match.group(1)


def sign_up(site: Site, address: str, **extra: str) -> httpx.Response:
    with site.client() as client:
        token = form_token(client)
        return client.post("/subscribe", data={"email": address, "csrf": token, **extra})


def confirm_path(site: Site, address: str) -> str:
    mail = site.mails_to(address)[-1]
    text = mail.get_body(preferencelist=("plain",))
    assert text is not None
    match = re.search(r"https://\S+/confirm/\S+", text.get_content())
    assert match is not None
    return site.local(match.group(0))


# --- /subscribe ----------------------------------------------------------------------------------


def test_the_form_shows_the_consent_wording_a_honeypot_and_a_csrf_token(site: Site) -> None:
    with site.client() as client:
        page = client.get("/subscribe")
    assert page.status_code == 200
    assert consent.WORDING_TEXT in page.text
    assert 'name="website"' in page.text and 'name="csrf"' in page.text
    assert "digest_csrf" in page.headers["set-cookie"]
    assert "samesite=strict" in page.headers["set-cookie"].lower()


def test_signing_up_mails_a_confirmation_from_the_transactional_address(site: Site) -> None:
    answer = sign_up(site, "ana@example.org", name="Ana")
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    mail = site.mails_to("ana@example.org")[0]
    assert site.settings.transactional_from_email in mail["From"]
    assert mail["From"] != site.settings.from_email
    assert mail["List-Unsubscribe"] is None and mail["Auto-Submitted"] == "auto-generated"
    assert site.subscriber("ana@example.org").status == S.PENDING  # type: ignore[union-attr]
    (event,) = site.events()
    assert event.ip == "127.0.0.1" and event.user_agent and "python-httpx" in event.user_agent


def test_the_answer_is_the_same_for_a_known_and_an_unknown_address(site: Site) -> None:
    with Session(site.engine) as session:
        service.add_confirmed(session, settings=site.settings, email="known@example.org",
                              evidence="paper form", source="cli", now=site.clock[0])  # fmt: skip
        session.commit()
    known = sign_up(site, "known@example.org")
    unknown = sign_up(site, "stranger@example.org")
    assert known.status_code == unknown.status_code == 200
    assert known.text == unknown.text
    site.mails_to("stranger@example.org")
    assert "known@example.org" not in site.sink.recipients()


def test_a_post_without_the_csrf_token_changes_nothing(site: Site) -> None:
    with site.client() as client:
        answer = client.post("/subscribe", data={"email": "ana@example.org", "csrf": "1.2.3"})
    assert answer.status_code == 400 and "expired" in answer.text
    assert site.subscriber("ana@example.org") is None


def test_a_filled_honeypot_looks_like_success_and_does_nothing(site: Site) -> None:
    answer = sign_up(site, "bot@example.org", website="http://spam.example.com")
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    assert site.subscriber("bot@example.org") is None and site.events() == []


def test_a_malformed_address_is_sent_back_to_the_form(site: Site) -> None:
    answer = sign_up(site, "not-an-address")
    assert answer.status_code == 400 and "valid email address" in answer.text
    assert site.events() == []


def test_sign_ups_are_rate_limited_per_address_and_per_ip(site: Site) -> None:
    answers = [sign_up(site, "ana@example.org").status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    assert len(site.mails_to("ana@example.org", 3)) == 3
    # 10 requests per IP an hour: the 4 above (refused ones count too) and 6 more.
    other = [sign_up(site, f"p{n}@example.org").status_code for n in range(7)]
    assert other == [200] * 6 + [429]


def test_the_rate_limiter_forgets_hits_older_than_its_window() -> None:
    now = [0.0]
    limiter = RateLimiter(limit=2, window=60, clock=lambda: now[0])
    assert [limiter.allow("k") for _ in range(3)] == [True, True, False]
    now[0] = 61
    assert limiter.allow("k")


# --- /confirm ------------------------------------------------------------------------------------


def test_get_and_head_on_a_confirm_link_change_nothing(site: Site) -> None:
    sign_up(site, "ana@example.org")
    path = confirm_path(site, "ana@example.org")
    with site.client() as client:
        for _ in range(3):
            page = client.get(path)
            assert page.status_code == 200 and 'method="post"' in page.text
        assert client.head(path).status_code == 200
    assert site.subscriber("ana@example.org").status == S.PENDING  # type: ignore[union-attr]
    assert [e.action for e in site.events()] == ["subscribe_requested"]


def test_posting_the_confirm_link_confirms_once(site: Site) -> None:
    sign_up(site, "ana@example.org")
    path = confirm_path(site, "ana@example.org")
    with site.client() as client:
        first, second = client.post(path), client.post(path)
    assert first.status_code == second.status_code == 200
    assert "You are subscribed" in first.text and "You are subscribed" in second.text
    assert "set-cookie" not in first.headers
    assert [e.action for e in site.events()] == ["subscribe_requested", "confirmed"]


def test_forged_and_expired_confirm_links_get_a_clear_page_and_change_nothing(site: Site) -> None:
    sign_up(site, "ana@example.org")
    path = confirm_path(site, "ana@example.org")
    with site.client() as client:
        forged = client.post(path[:-3] + "AAA")
        site.clock[0] += timedelta(hours=49)
        expired = client.post(path)
    assert forged.status_code == 400 and "not valid" in forged.text
    assert expired.status_code == 400 and "expired" in expired.text
    assert site.subscriber("ana@example.org").status == S.PENDING  # type: ignore[union-attr]
    assert len(site.events()) == 1


# --- /u one-click --------------------------------------------------------------------------------


def confirmed_member(site: Site, address: str = "ana@example.org") -> Subscriber:
    with Session(site.engine, expire_on_commit=False) as session:
        sub = service.add_confirmed(
            session, settings=site.settings, email=address, evidence="paper form",
            source="cli", now=site.clock[0],
        )  # fmt: skip
        session.commit()
    return sub


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_one_click_unsubscribes_with_200_and_no_cookies(site: Site, encoding: str) -> None:
    sub = confirmed_member(site)
    path = site.local(service.unsubscribe_url(settings=site.settings, subscriber=sub))
    body: dict[str, Any] = (
        {"data": {"List-Unsubscribe": "One-Click"}}
        if encoding == "urlencoded"
        else {"files": {"List-Unsubscribe": (None, "One-Click")}}
    )
    answers = [httpx.post(site.url + path, **body, follow_redirects=False) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200]
    assert all("set-cookie" not in a.headers for a in answers)
    assert site.subscriber("ana@example.org").status == S.UNSUBSCRIBED  # type: ignore[union-attr]
    assert [e.action for e in site.events()] == ["confirmed", "unsubscribed"]
    assert site.events()[-1].source == "one-click"
    with Session(site.engine) as session:
        assert consent.is_suppressed(session, email="ana@example.org", newsletter="friday")
        assert not consent.is_suppressed(session, email="ana@example.org", newsletter="other")


def test_get_on_the_unsubscribe_link_shows_a_button_and_changes_nothing(site: Site) -> None:
    sub = confirmed_member(site)
    path = site.local(service.unsubscribe_url(settings=site.settings, subscriber=sub))
    page = httpx.get(site.url + path)
    assert page.status_code == 200 and 'value="One-Click"' in page.text
    assert httpx.head(site.url + path).status_code == 200
    assert site.subscriber("ana@example.org").status == S.CONFIRMED  # type: ignore[union-attr]


def test_a_forged_unsubscribe_link_changes_nothing(site: Site) -> None:
    sub = confirmed_member(site)
    path = site.local(service.unsubscribe_url(settings=site.settings, subscriber=sub))
    forged = httpx.post(site.url + path[:-2] + "xy", data={"List-Unsubscribe": "One-Click"})
    bare = httpx.post(site.url + path, data={})
    assert forged.status_code == 400 and "not valid" in forged.text
    assert bare.status_code == 400
    assert site.subscriber("ana@example.org").status == S.CONFIRMED  # type: ignore[union-attr]


# --- /p preferences ------------------------------------------------------------------------------


def test_the_preferences_page_pauses_renames_unsubscribes_and_resubscribes(site: Site) -> None:
    sub = confirmed_member(site)
    path = site.local(service.preferences_url(settings=site.settings, subscriber=sub))
    with site.client() as client:
        assert "Pause delivery" in client.get(path).text
        assert "Delivery is paused" in client.post(path, data={"action": "pause"}).text
        assert "Resume delivery" in client.get(path).text
        renamed = client.post(path, data={"action": "name", "name": "Ana Bell"})
        assert 'value="Ana Bell"' in renamed.text
        assert "You are unsubscribed" in client.post(path, data={"action": "unsubscribe"}).text
        back = client.post(path, data={"action": "resubscribe"})
        assert back.status_code == 200 and "subscribed again" in back.text
        forged = client.get(path + "x")
    assert forged.status_code == 400
    found = site.subscriber("ana@example.org")
    assert found is not None and found.status == S.CONFIRMED and found.name == "Ana Bell"
    assert [e.action for e in site.events()] == [
        "confirmed", "paused", "unsubscribed", "confirmed",
    ]  # fmt: skip


# --- races ---------------------------------------------------------------------------------------


def test_simultaneous_clicks_and_sign_ups_write_one_event_each(site: Site) -> None:
    from concurrent.futures import ThreadPoolExecutor

    sign_up(site, "ana@example.org")
    path = confirm_path(site, "ana@example.org")
    with ThreadPoolExecutor(8) as pool:
        confirms = list(pool.map(lambda _: httpx.post(site.url + path, timeout=30), range(8)))
        sign_ups = list(pool.map(lambda _: sign_up(site, "bo@example.org"), range(3)))
    assert [r.status_code for r in confirms] == [200] * 8
    assert [r.status_code for r in sign_ups] == [200] * 3
    actions = [(e.subscriber_id, e.action) for e in site.events()]
    ana = site.subscriber("ana@example.org")
    bo = site.subscriber("bo@example.org")
    assert ana is not None and bo is not None
    assert actions.count((ana.id, "confirmed")) == 1
    assert actions.count((bo.id, "subscribe_requested")) == 3
    with Session(site.engine) as session:
        assert chain.verify_chain(session).ok
