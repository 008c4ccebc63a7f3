"""The pre-send check on the final bytes of one personalised copy.

The network checks talk to the real web app in-process (httpx's ASGI transport) for the
newsletter's own links and the one-click POST; article sites on the internet cannot be reached
here, so a small stand-in transport answers for those hosts (said where it is used).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from digest.check import check_issue
from digest.check_message import Check, check_message
from digest.models import Issue
from digest.render import render_digest
from digest.render.sample import sample_content
from digest.send.dkim import generate_key, key_file, make_default
from digest.settings import Settings

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def with_key(settings: Settings) -> Settings:
    """A DKIM key for the From domain, recorded as the default the signer picks up."""
    path = key_file(settings.data_dir, selector="digest", domain=settings.sender_domain)
    generate_key(path=path)
    make_default(data_dir=settings.data_dir, selector="digest", domain=settings.sender_domain,
                 key=path)  # fmt: skip
    return settings


def issue_for(settings: Settings, **changes: str) -> Issue:
    rendered = render_digest(sample_content(), settings=settings)
    values = {"subject": rendered.subject, "preheader": rendered.preheader,
              "html": rendered.html, "text": rendered.text, **changes}  # fmt: skip
    return Issue(newsletter="friday", week="2017-W11", **values)  # type: ignore[arg-type]


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def test_a_well_built_signed_issue_passes_every_offline_check(settings: Settings) -> None:
    report = check_issue(settings=with_key(settings), issue=issue_for(settings), now=NOW,
                         offline=True)  # fmt: skip

    assert report.failures == []
    assert report.ok
    names = by_name(report.checks)
    assert names["DKIM signature valid"].ok is True
    assert names["DKIM covers List-Unsubscribe and -Post"].ok is True
    assert names["links answer"].ok is None  # skipped offline


def test_an_unsigned_message_fails_the_dkim_check(settings: Settings) -> None:
    report = check_issue(settings=settings, issue=issue_for(settings), now=NOW, offline=True)

    assert not report.ok
    assert [c.name for c in report.failures] == ["DKIM signature valid"]


def test_a_header_changed_after_signing_breaks_the_signature(settings: Settings) -> None:
    report = check_issue(settings=with_key(settings), issue=issue_for(settings), now=NOW,
                         offline=True)  # fmt: skip
    tampered = report.message.replace(b"=One-Click", b"=One-Clack")

    checks = by_name(check_message(tampered, settings=settings, preheader="x"))

    assert checks["DKIM signature valid"].ok is False
    assert checks["List-Unsubscribe-Post: One-Click"].ok is False


def test_content_problems_are_named(settings: Settings) -> None:
    good = issue_for(settings)
    page = re.sub(r' alt="[^"]*"', "", good.html, count=1)
    page = page.replace("https://news0.example.com", "http://news0.example.com", 1)
    issue = issue_for(
        settings,
        html=page,
        text=good.text.replace("Example Newsroom", "Somewhere"),
        subject="Hi",
        preheader="",
    )

    report = check_issue(settings=with_key(settings), issue=issue, now=NOW, offline=True)

    assert {c.name for c in report.failures} == {
        "images have alt",
        "links are absolute https",
        "postal address in both parts",
        "subject length",
        "preheader present",
    }


def test_an_oversized_html_part_fails(settings: Settings) -> None:
    good = issue_for(settings)
    filler = "<p>" + "padding words " * 8000 + "</p>"
    issue = issue_for(settings, html=good.html.replace("</body>", filler + "</body>"))

    checks = by_name(check_issue(settings=settings, issue=issue, now=NOW, offline=True).checks)

    assert checks["HTML size"].ok is False


class Routes(httpx.AsyncBaseTransport):
    """The newsletter's own host goes to the real app; other hosts (article sites, which the
    internet would serve) answer from ``outside``."""

    def __init__(self, app_host: str, app: httpx.AsyncBaseTransport, dead: set[str]) -> None:
        self.app_host, self.app, self.dead = app_host, app, dead
        self.methods: list[tuple[str, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.methods.append((request.method, str(request.url)))
        if request.url.host == self.app_host:
            return await self.app.handle_async_request(request)
        status = 404 if str(request.url) in self.dead else 200
        return httpx.Response(status, request=request)


def network(settings: Settings, engine: Engine, *, dead: frozenset[str] = frozenset()) -> Routes:
    from digest.web.app import create_app

    web = create_app(settings)
    web.state.engine = engine  # the test's engine, closed by its fixture
    return Routes("news.example.org", httpx.ASGITransport(app=web), set(dead))


def test_links_answer_and_the_one_click_endpoint_answers_a_post(
    settings: Settings, engine: Engine
) -> None:
    routes = network(settings, engine)

    report = check_issue(settings=with_key(settings), issue=issue_for(settings), now=NOW,
                         transport=routes)  # fmt: skip

    checks = by_name(report.checks)
    assert checks["links answer"].ok is True, checks["links answer"].detail
    assert checks["one-click unsubscribe answers POST"].ok is True
    assert ("POST", re.findall(r"<(https://[^>]+)>", report.message.decode())[0]) in routes.methods
    assert all(m == "HEAD" for m, u in routes.methods if "/u/" not in u)


def test_a_dead_link_fails_and_is_named(settings: Settings, engine: Engine) -> None:
    issue = issue_for(settings)
    dead = re.findall(r'href="(https://news1\.example\.com[^"]+)"', issue.html)[0]
    dead = dead.replace("&amp;", "&")

    report = check_issue(settings=with_key(settings), issue=issue, now=NOW,
                         transport=network(settings, engine, dead=frozenset({dead})))  # fmt: skip

    check = by_name(report.checks)["links answer"]
    assert check.ok is False and dead in check.detail and "HTTP 404" in check.detail


@pytest.mark.parametrize("flag", [[], ["--json"]])
def test_the_command_prints_the_table_and_exits_1_on_failure(
    settings: Settings, engine: Engine, tmp_path: Path, flag: list[str]
) -> None:
    from sqlmodel import Session

    from digest.cli import app

    with Session(engine) as session:
        session.add(issue_for(settings, subject="Hi"))
        session.commit()
    env = {
        "DIGEST_DATA_DIR": str(settings.data_dir),
        "DIGEST_DATABASE_URL": settings.db_url,
        "DIGEST_BASE_URL": settings.base_url,
        "DIGEST_FROM_EMAIL": settings.from_email,
        "DIGEST_SECRET_KEY": settings.secret_key.get_secret_value(),
        "COLUMNS": "200",
    }
    with_key(settings)

    result = CliRunner().invoke(app, ["issue", "check", "2017-W11", "--offline", *flag], env=env)

    assert result.exit_code == 1
    assert "subject length" in result.output
    if flag:
        payload = json.loads(result.stdout)
        assert payload["ok"] is False and payload["issue"] == "2017-W11"
