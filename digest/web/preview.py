"""Operator pages: the issue list, the preview of one issue, and "send a test to …".

Every page here needs the operator login (drafts are not public). The preview shows the frozen
issue exactly as built: its HTML in a desktop frame and a 375 px frame, a dark-mode toggle that
simulates the forced inversion Gmail applies, and the plain-text part. The frames load
``/issues/<ref>/email.html``, the issue's HTML with example personal links.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from email_validator import EmailNotValidError, validate_email
from fastapi import Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from sqlalchemy.engine import Engine

from digest.db import make_engine, session_scope
from digest.errors import DigestError, InputError
from digest.models import Issue, IssueStatus, TestSend
from digest.render import PREFERENCES_URL, UNSUBSCRIBE_URL, example_values, fill_examples
from digest.settings import Settings
from digest.store import issues as issue_store
from digest.web.auth import (
    CSRF_FIELD,
    check_csrf,
    csrf_token,
    is_operator,
    login_required_response,
    with_csrf,
)

# Simulates Gmail's forced dark mode: colours inverted, pictures turned back. Added to the
# preview copy only (never to mail); the page's toggle sets the class on the frame's <html>.
FORCED_DARK_CSS = (
    "<style>html.digest-forced-dark{filter:invert(1) hue-rotate(180deg);background:#fff}"
    "html.digest-forced-dark img{filter:invert(1) hue-rotate(180deg)}</style>"
)
_HEAD_END = re.compile(r"</head>", re.IGNORECASE)


def engine_of(request: Request) -> Engine:
    """The app's engine, made once (a new engine per request would open a new pool each time)."""
    engine = getattr(request.app.state, "engine", None)
    if engine is None:
        engine = make_engine(request.app.state.settings)
        request.app.state.engine = engine
    return engine


def filled(part: str, *, settings: Settings, html_part: bool) -> str:
    return fill_examples(part, base_url=settings.base_url, html_part=html_part)


def frame_html(issue: Issue, *, settings: Settings, dark: bool) -> str:
    """The issue's HTML for a preview frame: example links, links open outside the frame."""
    page = filled(issue.html, settings=settings, html_part=True)
    extra = '<base target="_blank">' + FORCED_DARK_CSS
    page = _HEAD_END.sub(lambda _m: extra + "</head>", page, count=1)
    if dark:
        page = page.replace("<html ", '<html class="digest-forced-dark" ', 1)
    return page


def _issue(request: Request, ref: str) -> Issue:
    settings: Settings = request.app.state.settings
    with session_scope(engine_of(request)) as session:
        issue = issue_store.get_issue(session, newsletter=settings.newsletter_id, ref=ref)
        session.expunge(issue)
    return issue


def _page(
    request: Request, name: str, context: Mapping[str, object], status: int = 200
) -> Response:
    settings: Settings = request.app.state.settings
    response = request.app.state.templates.TemplateResponse(
        request,
        name,
        {
            "newsletter_name": settings.newsletter_name,
            "operator": True,
            "csrf_token": csrf_token(request),
            "csrf_field": CSRF_FIELD,
            **context,
        },
        status_code=status,
    )
    return with_csrf(request, response)


async def issue_list(request: Request) -> Response:
    """GET /issues: every issue, newest first."""
    if not is_operator(request):
        return login_required_response(request)
    settings: Settings = request.app.state.settings
    with session_scope(engine_of(request)) as session:
        issues = issue_store.list_issues(session, newsletter=settings.newsletter_id)
        rows = [
            {"id": i.id, "week": i.week, "status": str(i.status), "subject": i.subject,
             "built_at": i.built_at, "sent_at": i.sent_at}
            for i in issues
        ]  # fmt: skip
    return _page(request, "issues.html", {"title": "Issues", "issues": rows})


async def issue_preview(request: Request) -> Response:
    """GET /issues/{ref}: subject, preheader, From, the two frames, the text part, test send."""
    if not is_operator(request):
        return login_required_response(request)
    settings: Settings = request.app.state.settings
    issue = _issue(request, request.path_params["ref"])
    ref = quote(str(issue.id))
    context = {
        "title": f"Preview {issue.week}",
        "issue": issue,
        "status": str(issue.status),
        "from_header": f"{settings.from_name} <{settings.from_email}>",
        "frame_url": f"/issues/{ref}/email.html",
        "text": filled(issue.text, settings=settings, html_part=False),
        "html_bytes": len(filled(issue.html, settings=settings, html_part=True).encode()),
        "test_url": f"/issues/{ref}/test",
        "sent_to": request.query_params.get("sent", ""),
        "error": request.query_params.get("error", ""),
        "public_url": f"/archive/{issue.week}" if issue.status == IssueStatus.SENT else "",
    }
    return _page(request, "preview.html", context)


async def issue_frame(request: Request) -> Response:
    """GET /issues/{ref}/email.html[?dark=1]: the email itself, for the preview frames."""
    if not is_operator(request):
        return login_required_response(request)
    settings: Settings = request.app.state.settings
    issue = _issue(request, request.path_params["ref"])
    dark = request.query_params.get("dark") == "1"
    return HTMLResponse(
        frame_html(issue, settings=settings, dark=dark),
        headers={
            # The email needs no script and must not be framed by another site.
            "Content-Security-Policy": "script-src 'none'; frame-ancestors 'self'",
            "X-Frame-Options": "SAMEORIGIN",
        },
    )


async def issue_text(request: Request) -> Response:
    """GET /issues/{ref}/email.txt: the plain-text part with example links."""
    if not is_operator(request):
        return login_required_response(request)
    settings: Settings = request.app.state.settings
    issue = _issue(request, request.path_params["ref"])
    return PlainTextResponse(filled(issue.text, settings=settings, html_part=False))


async def issue_test_send(request: Request) -> Response:
    """POST /issues/{ref}/test: send one copy to the address in the form, record a TestSend."""
    if not is_operator(request):
        return login_required_response(request)
    form = await request.form()
    if not check_csrf(request, form):
        return HTMLResponse("The form expired; go back, reload and try again.", status_code=403)
    settings: Settings = request.app.state.settings
    issue = _issue(request, request.path_params["ref"])
    back = f"/issues/{issue.id}"
    try:
        result = await send_test(
            settings=settings, engine=engine_of(request), issue=issue,
            to=str(form.get("to") or ""), requested_by="web", now=datetime.now(UTC),
        )  # fmt: skip
    except DigestError as exc:  # a bad address, or the relay said no: show it on the page
        return RedirectResponse(f"{back}?error={quote(str(exc))}", status_code=303)
    return RedirectResponse(f"{back}?sent={quote(result.email)}", status_code=303)


# --- the test send ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TestSendResult:
    email: str
    message_id: str
    test_send_id: int


async def send_test(
    *,
    settings: Settings,
    engine: Engine,
    issue: Issue,
    to: str,
    requested_by: str,
    now: datetime,
    sender: object | None = None,
) -> TestSendResult:
    """Send one copy of ``issue`` to ``to`` and record it as a TestSend (never in the ledger).

    The copy is the subscriber's message (same template, headers and DKIM signature) with
    ``[Test]`` before the subject and example personal links. ``sender`` defaults to the SMTP
    pool from settings. Raises InputError for an unusable address, SendError if SMTP fails.
    """
    from digest.send.dkim import DkimSigner
    from digest.send.message import MessageTemplate, Recipient, new_message_id

    try:
        address = validate_email(to.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InputError(f"test address {to!r} is not usable: {exc}") from None
    assert issue.id is not None
    examples = example_values(base_url=settings.base_url)
    template = MessageTemplate.build(
        subject=f"[Test] {issue.subject}", html=issue.html, text=issue.text, settings=settings,
        campaign=f"{issue.week}-test",
    )  # fmt: skip
    recipient = Recipient(
        email=address, name="",
        unsubscribe_url=examples[UNSUBSCRIBE_URL], preferences_url=examples[PREFERENCES_URL],
    )  # fmt: skip
    message_id = new_message_id(settings=settings)
    data = template.render(recipient, date=now, message_id=message_id)
    signer = DkimSigner.from_settings(settings)
    if signer is not None:
        data = signer.sign(data)
    await _hand_over(settings, sender, envelope_from=settings.from_email, to=address, data=data)
    with session_scope(engine) as session:
        row = TestSend(issue_id=issue.id, email=address, sent_at=now, requested_by=requested_by)
        session.add(row)
        session.flush()
        assert row.id is not None
        return TestSendResult(email=address, message_id=message_id, test_send_id=row.id)


async def _hand_over(
    settings: Settings, sender: object | None, *, envelope_from: str, to: str, data: bytes
) -> None:
    from digest.send.smtp import SmtpPool

    active = sender if sender is not None else SmtpPool(settings, connect_attempts=1)
    try:
        await active.send(envelope_from=envelope_from, recipients=[to], message=data)  # type: ignore[attr-defined]
    finally:
        if sender is None:
            await asyncio.shield(active.aclose())  # type: ignore[attr-defined]


def display_available() -> bool:
    """True when a graphical browser can be opened (``digest issue preview --open``): on macOS
    and Windows, elsewhere when an X11 or Wayland display is set. The display variables describe
    the session, not digest's configuration, so they are read here rather than in settings."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
