"""Operator login for drafts and test sends: a password from settings, a signed session cookie,
CSRF tokens on every form.

The session cookie carries only ``{"op": 1}`` signed (itsdangerous, salted, timestamped) with
the settings' secret key, so it cannot be forged and expires after ``SESSION_HOURS``. CSRF uses
a double submit: a random token in its own signed cookie, repeated in a hidden form field;
both cookies are ``HttpOnly`` and ``SameSite=Lax``, and ``Secure`` whenever the request is https.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from digest.settings import Settings

SESSION_COOKIE = "digest_operator"
CSRF_COOKIE = "digest_csrf"
CSRF_FIELD = "csrf_token"
SESSION_HOURS = 12
WRONG_PASSWORD_PAUSE = 1.0  # seconds


def _serializer(settings: Settings, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret(), salt=f"digest-web-{purpose}")


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def is_operator(request: Request) -> bool:
    """True when the request carries a valid, unexpired operator session."""
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return False
    try:
        data = _serializer(_settings(request), "session").loads(raw, max_age=SESSION_HOURS * 3600)
    except BadSignature:
        return False
    return isinstance(data, dict) and data.get("op") == 1


def csrf_token(request: Request) -> str:
    """The request's CSRF token (from its cookie), or a new one that ``with_csrf`` will set."""
    existing = getattr(request.state, "csrf_token", None)
    if existing:
        return str(existing)
    token: str | None = None
    raw = request.cookies.get(CSRF_COOKIE)
    if raw:
        try:
            token = str(_serializer(_settings(request), "csrf").loads(raw))
        except BadSignature:
            token = None
    request.state.csrf_token = token or secrets.token_urlsafe(24)
    request.state.csrf_new = token is None
    return str(request.state.csrf_token)


def with_csrf(request: Request, response: Response) -> Response:
    """Set the CSRF cookie on ``response`` when this request created the token."""
    if getattr(request.state, "csrf_new", False):
        signed = _serializer(_settings(request), "csrf").dumps(request.state.csrf_token)
        response.set_cookie(CSRF_COOKIE, signed, **_cookie_flags(request))
    return response


def check_csrf(request: Request, form: Any) -> bool:
    """True when the form's token matches the signed cookie's (constant-time compare)."""
    sent = form.get(CSRF_FIELD)
    raw = request.cookies.get(CSRF_COOKIE)
    if not isinstance(sent, str) or not raw:
        return False
    try:
        expected = str(_serializer(_settings(request), "csrf").loads(raw))
    except BadSignature:
        return False
    return hmac.compare_digest(sent.encode(), expected.encode())


def _cookie_flags(request: Request) -> dict[str, Any]:
    return {
        "httponly": True,
        "samesite": "lax",
        "secure": request.url.scheme == "https",
        "path": "/",
    }


def safe_next(target: str | None) -> str:
    """A local path to return to after login; anything pointing elsewhere becomes ``/issues``."""
    if not target:
        return "/issues"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/issues"
    return target


def login_page(request: Request, *, next_path: str, error: str = "", status: int = 200) -> Response:
    """The login form (also the body of every 401)."""
    settings = _settings(request)
    enabled = bool(settings.operator_password.get_secret_value())
    response = request.app.state.templates.TemplateResponse(
        request,
        "login.html",
        {
            "title": "Operator login",
            "next_path": safe_next(next_path),
            "error": error,
            "enabled": enabled,
            "csrf_token": csrf_token(request),
            "csrf_field": CSRF_FIELD,
            "operator": False,
        },
        status_code=status,
    )
    return with_csrf(request, response)


async def login_form(request: Request) -> Response:
    """GET /login"""
    return login_page(request, next_path=request.query_params.get("next", "/issues"))


async def login(request: Request) -> Response:
    """POST /login: password and CSRF token; sets the session and returns to ``next``."""
    form = await request.form()
    next_path = safe_next(str(form.get("next") or ""))
    if not check_csrf(request, form):
        return login_page(request, next_path=next_path, error="The form expired; try again.",
                          status=403)  # fmt: skip
    password = _settings(request).operator_password.get_secret_value()
    given = str(form.get("password") or "")
    if not password or not hmac.compare_digest(given.encode(), password.encode()):
        # A pause per wrong guess slows password guessing without any state to keep.
        await asyncio.sleep(WRONG_PASSWORD_PAUSE)
        return login_page(request, next_path=next_path, error="Wrong password.", status=401)
    response = RedirectResponse(next_path, status_code=303)
    session = _serializer(_settings(request), "session").dumps({"op": 1})
    response.set_cookie(SESSION_COOKIE, session, max_age=SESSION_HOURS * 3600,
                        **_cookie_flags(request))  # fmt: skip
    return response


async def logout(request: Request) -> Response:
    """POST /logout"""
    form = await request.form()
    if not check_csrf(request, form):
        return HTMLResponse("The form expired; go back and try again.", status_code=403)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def login_required_response(request: Request) -> Response:
    """401 with the login form, coming back to the page that was asked for."""
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return login_page(request, next_path=quote(path, safe="/?=&"), status=401)
