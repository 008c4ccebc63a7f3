"""The preview, archive and operator login over real HTTP (uvicorn on 127.0.0.1, a free port)
with a real database. Test sends go through the real SMTP pool to aiosmtpd on 127.0.0.1.

(Starlette's httpx.Client is not used: with this httpx it raises a deprecation warning, and
warnings are errors here.)
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from webserver import serving

from digest.models import Issue, IssueStatus
from digest.models import TestSend as SentTest  # a "Test*" name would be collected
from digest.render import render_digest
from digest.render.sample import sample_content
from digest.settings import Settings
from digest.web.app import create_app

PASSWORD = "correct horse battery staple"
BUILT = datetime(2017, 3, 17, 6, 0, tzinfo=UTC)


def add_issue(engine: Engine, settings: Settings, *, week: str, status: IssueStatus) -> Issue:
    """Store a built issue (the sample content) in the given state."""
    content = sample_content(12)
    rendered = render_digest(content, settings=settings)
    issue = Issue(
        newsletter=settings.newsletter_id, week=week, status=status,
        subject=f"{rendered.subject} ({week})", preheader=rendered.preheader,
        mjml=rendered.mjml, html=rendered.html, text=rendered.text, built_at=BUILT,
        sent_at=BUILT if status == IssueStatus.SENT else None,
    )  # fmt: skip
    with Session(engine, expire_on_commit=False) as session:
        session.add(issue)
        session.commit()
        session.refresh(issue)
    return issue


@pytest.fixture
def web_settings(settings: Settings, smtp_sink: object) -> Settings:
    return settings.model_copy(
        update={
            "operator_password": SecretStr(PASSWORD),
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp_sink.port,  # type: ignore[attr-defined]
        }
    )


def serve(settings: Settings, *, engine: Engine) -> Iterator[str]:
    """Run the real app under uvicorn in a thread; yield its base URL, stop it afterwards.

    The app uses the test's engine (disposed by its fixture), so no pooled connection outlives
    the test.
    """
    app = create_app(settings)
    app.state.engine = engine
    with serving(app) as base:
        yield base


@pytest.fixture
def client(web_settings: Settings, engine: Engine) -> Iterator[httpx.Client]:
    for base in serve(web_settings, engine=engine):
        with httpx.Client(base_url=base, timeout=30) as c:
            yield c


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "no CSRF field on the page"
    return match.group(1)


def log_in(client: httpx.Client) -> None:
    form = client.get("/login")
    response = client.post(
        "/login",
        data={"csrf_token": csrf_of(form.text), "password": PASSWORD, "next": "/issues"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


# --- login --------------------------------------------------------------------------------


def test_a_draft_preview_is_refused_without_login(
    client: httpx.Client, engine: Engine, web_settings: Settings
) -> None:
    draft = add_issue(engine, web_settings, week="2017-W11", status=IssueStatus.DRAFT)
    for path in (f"/issues/{draft.id}", f"/issues/{draft.id}/email.html", "/issues"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert "Operator login" in response.text
        assert "Harbour authority" not in response.text


def test_a_draft_is_not_in_the_public_archive(
    client: httpx.Client, engine: Engine, web_settings: Settings
) -> None:
    add_issue(engine, web_settings, week="2017-W11", status=IssueStatus.DRAFT)
    assert client.get("/archive/2017-W11").status_code == 404
    assert "2017-W11" not in client.get("/archive").text
    assert "2017-W11" not in client.get("/archive.atom").text


def test_a_wrong_password_does_not_log_in(client: httpx.Client) -> None:
    form = client.get("/login")
    response = client.post(
        "/login", data={"csrf_token": csrf_of(form.text), "password": "guess", "next": "/issues"},
        follow_redirects=False,
    )  # fmt: skip
    assert response.status_code == 401
    assert client.get("/issues").status_code == 401


def test_login_without_the_csrf_token_is_refused(client: httpx.Client) -> None:
    client.get("/login")
    response = client.post(
        "/login", data={"password": PASSWORD, "next": "/issues"}, follow_redirects=False
    )
    assert response.status_code == 403
    assert client.get("/issues").status_code == 401


def test_a_forged_session_cookie_is_ignored(client: httpx.Client) -> None:
    client.cookies.set("digest_operator", "eyJvcCI6MX0.forged.signature")
    assert client.get("/issues").status_code == 401


def test_login_only_returns_to_local_pages(client: httpx.Client) -> None:
    form = client.get("/login")
    response = client.post(
        "/login",
        data={"csrf_token": csrf_of(form.text), "password": PASSWORD,
              "next": "https://evil.example/steal"},
        follow_redirects=False,
    )  # fmt: skip
    assert response.headers["location"] == "/issues"


# --- preview ------------------------------------------------------------------------------------


def test_the_preview_shows_subject_preheader_from_frames_and_text(
    client: httpx.Client, engine: Engine, web_settings: Settings
) -> None:
    draft = add_issue(engine, web_settings, week="2017-W11", status=IssueStatus.DRAFT)
    log_in(client)
    listing = client.get("/issues")
    assert listing.status_code == 200 and f'href="/issues/{draft.id}"' in listing.text
    page = client.get(f"/issues/{draft.id}")
    assert page.status_code == 200
    assert "The tidal barrier gets its green light" in page.text
    assert "A harbour decision, a rail review" in page.text
    assert "The Friday Digest &lt;digest@news.example.org&gt;" in page.text
    assert 'id="frame-desktop"' in page.text and 'id="frame-mobile"' in page.text
    assert "Ferry operator &amp; unions agree a four-day week" in page.text  # text part
    frame = client.get(f"/issues/{draft.id}/email.html")
    assert "Harbour authority approves the long-delayed tidal barrier" in frame.text
    assert "%%" not in frame.text
    assert "script-src 'none'" in frame.headers["content-security-policy"]


def test_a_test_send_reaches_the_smtp_server_and_is_recorded(
    client: httpx.Client, engine: Engine, web_settings: Settings, smtp_sink: object
) -> None:
    draft = add_issue(engine, web_settings, week="2017-W11", status=IssueStatus.DRAFT)
    log_in(client)
    page = client.get(f"/issues/{draft.id}")
    response = client.post(
        f"/issues/{draft.id}/test",
        data={"csrf_token": csrf_of(page.text), "to": "editor@example.com"},
        follow_redirects=True,
    )
    assert "Test copy sent to editor@example.com" in response.text
    messages = smtp_sink.messages  # type: ignore[attr-defined]
    assert [rcpts for _, rcpts, _ in messages] == [["editor@example.com"]]
    mail = message_from_bytes(messages[0][2], policy=policy.default)
    assert mail["Subject"].startswith("[Test] The tidal barrier")
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Harbour authority approves" in html and "%%" not in html
    with Session(engine) as session:
        rows = session.exec(select(SentTest)).all()
    assert [(r.issue_id, r.email, r.requested_by) for r in rows] == [
        (draft.id, "editor@example.com", "web")
    ]


def test_a_test_send_without_csrf_sends_nothing(
    client: httpx.Client, engine: Engine, web_settings: Settings, smtp_sink: object
) -> None:
    draft = add_issue(engine, web_settings, week="2017-W11", status=IssueStatus.DRAFT)
    log_in(client)
    response = client.post(f"/issues/{draft.id}/test", data={"to": "editor@example.com"})
    assert response.status_code == 403
    assert smtp_sink.messages == []  # type: ignore[attr-defined]


def test_a_bad_test_address_is_shown_not_sent(
    client: httpx.Client, engine: Engine, web_settings: Settings, smtp_sink: object
) -> None:
    draft = add_issue(engine, web_settings, week="2017-W11", status=IssueStatus.DRAFT)
    log_in(client)
    page = client.get(f"/issues/{draft.id}")
    response = client.post(
        f"/issues/{draft.id}/test",
        data={"csrf_token": csrf_of(page.text), "to": "not an address"},
        follow_redirects=True,
    )
    assert "Test not sent" in response.text and "not usable" in response.text
    assert smtp_sink.messages == []  # type: ignore[attr-defined]


# --- public archive -------------------------------------------------------------------------------


def test_sent_issues_have_stable_public_urls_and_a_feed(
    client: httpx.Client, engine: Engine, web_settings: Settings
) -> None:
    add_issue(engine, web_settings, week="2017-W10", status=IssueStatus.SENT)
    add_issue(engine, web_settings, week="2017-W11", status=IssueStatus.SENT)
    add_issue(engine, web_settings, week="2017-W12", status=IssueStatus.DRAFT)
    index = client.get("/archive")
    assert index.status_code == 200
    assert index.text.index("/archive/2017-W11") < index.text.index("/archive/2017-W10")
    page = client.get("/archive/2017-W10")
    assert page.status_code == 200 and "Harbour authority approves" in page.text
    assert "https://news.example.org/u/preview" in page.text and "%%" not in page.text
    feed = client.get("/archive.atom")
    assert feed.headers["content-type"].startswith("application/atom+xml")
    ns = {"a": "http://www.w3.org/2005/Atom"}
    root = ET.fromstring(feed.content)
    links = [e.find("a:link", ns).get("href") for e in root.findall("a:entry", ns)]  # type: ignore[union-attr]
    assert links == [
        "https://news.example.org/archive/2017-W11",
        "https://news.example.org/archive/2017-W10",
    ]
    assert root.find("a:updated", ns).text == "2017-03-17T06:00:00Z"  # type: ignore[union-attr]


def test_a_browser_is_opened_only_where_there_is_a_display(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The environment is the input here; monkeypatch sets it, nothing is mocked.
    from digest.web.preview import display_available

    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert not display_available()
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert display_available()
