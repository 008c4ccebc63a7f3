"""The public archive: sent issues only, at stable URLs (``/archive/<week>``), and an Atom feed.

A draft, approved or cancelled issue is answered with 404 here, the same as a week that never
existed, so the archive does not reveal what is being prepared. Personal links in the archived
copy point to the general unsubscribe and preferences pages.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from digest.db import session_scope
from digest.errors import NotFound
from digest.models import Issue, IssueStatus
from digest.settings import Settings
from digest.store import issues as issue_store
from digest.web.auth import is_operator
from digest.web.preview import engine_of, filled


def sent_issues(request: Request) -> list[Issue]:
    """Sent issues of this newsletter, newest first, detached from the session."""
    settings: Settings = request.app.state.settings
    with session_scope(engine_of(request)) as session:
        issues = [
            i
            for i in issue_store.list_issues(session, newsletter=settings.newsletter_id)
            if i.status == IssueStatus.SENT
        ]
        for issue in issues:
            session.expunge(issue)
    return issues


async def archive_index(request: Request) -> Response:
    """GET /archive: the list of sent issues."""
    settings: Settings = request.app.state.settings
    response: Response = request.app.state.templates.TemplateResponse(
        request,
        "archive.html",
        {
            "title": f"{settings.newsletter_name}: archive",
            "newsletter_name": settings.newsletter_name,
            "issues": sent_issues(request),
            "operator": is_operator(request),
        },
    )
    return response


async def archive_issue(request: Request) -> Response:
    """GET /archive/{week}: the sent issue as readers got it (example personal links)."""
    settings: Settings = request.app.state.settings
    week = request.path_params["week"]
    issue = next((i for i in sent_issues(request) if i.week == week), None)
    if issue is None:
        raise NotFound(f"no sent issue for {week!r} in the archive")
    return HTMLResponse(
        filled(issue.html, settings=settings, html_part=True),
        headers={"Content-Security-Policy": "script-src 'none'"},
    )


async def archive_feed(request: Request) -> Response:
    """GET /archive.atom: an Atom feed of the sent issues (newest 50)."""
    settings: Settings = request.app.state.settings
    issues = sent_issues(request)[:50]
    updated = max(
        (i.sent_at or i.built_at or i.created_at for i in issues),
        default=datetime(1970, 1, 1, tzinfo=UTC),
    )
    entries = [
        {
            "id": f"{settings.base_url}/archive/{i.week}",
            "url": f"{settings.base_url}/archive/{i.week}",
            "title": i.subject or i.week,
            "summary": i.preheader,
            "updated": _rfc3339(i.sent_at or i.built_at or i.created_at),
        }
        for i in issues
    ]
    response: Response = request.app.state.templates.TemplateResponse(
        request,
        "archive.atom.xml",
        {
            "feed_id": f"{settings.base_url}/archive",
            "feed_url": f"{settings.base_url}/archive.atom",
            "site_url": f"{settings.base_url}/archive",
            "newsletter_name": settings.newsletter_name,
            "updated": _rfc3339(updated),
            "entries": entries,
        },
        media_type="application/atom+xml",
    )
    return response


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
