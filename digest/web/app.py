"""``create_app(settings)``: the FastAPI app with the ONE route table and one error handler."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.templating import Jinja2Templates

from digest.errors import DigestError, InputError, NotFound, StateError
from digest.settings import Settings
from digest.web import archive, auth, preview
from digest.web import subscriptions as subs

TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "web"


@dataclass(frozen=True, slots=True)
class Route:
    path: str
    endpoint: Callable[..., Any]
    methods: tuple[str, ...] = ("GET",)
    name: str | None = None


async def home(request: Request) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    return HTMLResponse(
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{settings.newsletter_name}</title></head><body>"
        f"<h1>{settings.newsletter_name}</h1>"
        "<ul><li><a href='/archive'>Archive of sent issues</a></li>"
        "<li><a href='/subscribe'>Subscribe</a></li>"
        "<li><a href='/issues'>Issues (operators)</a></li></ul></body></html>"
    )


async def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def _routes() -> list[Route]:
    """Every route of the app, in one place."""
    routes = [
        Route("/", home, name="home"),
        Route("/healthz", health, name="health"),
        # Subscriptions (digest/web/subscriptions.py): links in mail act on POST only.
        Route("/subscribe", subs.subscribe_form, name="subscribe_form"),
        Route("/subscribe", subs.subscribe_submit, ("POST",), name="subscribe_submit"),
        Route("/confirm/{token}", subs.confirm_page, ("GET", "HEAD"), name="confirm_page"),
        Route("/confirm/{token}", subs.confirm_submit, ("POST",), name="confirm_submit"),
        Route("/u/{token}", subs.unsubscribe_page, ("GET", "HEAD"), name="unsubscribe_page"),
        Route("/u/{token}", subs.unsubscribe_submit, ("POST",), name="unsubscribe_submit"),
        Route("/p/{token}", subs.preferences_page, name="preferences_page"),
        Route("/p/{token}", subs.preferences_submit, ("POST",), name="preferences_submit"),
        # Operator login, previews and test sends (digest/web/auth.py, preview.py): login needed.
        Route("/login", auth.login_form, name="login_form"),
        Route("/login", auth.login, ("POST",), name="login"),
        Route("/logout", auth.logout, ("POST",), name="logout"),
        Route("/issues", preview.issue_list, name="issues"),
        Route("/issues/{ref}", preview.issue_preview, name="issue_preview"),
        Route("/issues/{ref}/email.html", preview.issue_frame, name="issue_frame"),
        Route("/issues/{ref}/email.txt", preview.issue_text, name="issue_text"),
        Route("/issues/{ref}/test", preview.issue_test_send, ("POST",), name="issue_test_send"),
        # The public archive of sent issues (digest/web/archive.py).
        Route("/archive", archive.archive_index, name="archive"),
        Route("/archive.atom", archive.archive_feed, name="archive_feed"),
        Route("/archive/{week}", archive.archive_issue, name="archive_issue"),
    ]
    return routes


ROUTES = _routes


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(title=settings.newsletter_name, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.templates = Jinja2Templates(directory=str(TEMPLATES))
    for route in ROUTES():
        app.add_api_route(route.path, route.endpoint, methods=list(route.methods), name=route.name)

    @app.exception_handler(DigestError)
    async def _digest_error(request: Request, exc: DigestError) -> Any:
        status = 404 if isinstance(exc, NotFound) else 409 if isinstance(exc, StateError) else 400
        if isinstance(exc, InputError):
            status = 400
        if "text/html" in request.headers.get("accept", ""):
            return HTMLResponse(
                f"<!doctype html><title>Problem</title><h1>Sorry</h1><p>{_escape(str(exc))}</p>",
                status_code=status,
            )
        return JSONResponse({"error": str(exc)}, status_code=status)

    return app


def _escape(text: str) -> str:
    import html

    return html.escape(text)
