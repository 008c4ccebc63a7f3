"""Subscribe, confirm, one-click unsubscribe (RFC 8058) and preferences pages.

Links in mail never act on GET (mail scanners fetch them): GET shows a page with a button, POST
acts. The token in the URL is the only credential: no cookie or login is read or set on
``/confirm``, ``/u`` and ``/p``. Only ``/subscribe`` sets a cookie, for its CSRF check.

What the app may carry in ``app.state`` (tests inject these; production uses the defaults):
``engine`` (else one made from the settings), ``sender`` (else an SmtpPool per confirmation),
``clock`` (a ``() -> datetime``), ``subscribe_limiter`` (``{"ip": …, "address": …}``, each a
``guards.RateLimiter``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import BackgroundTasks, Form, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from digest.db import make_engine, session_scope
from digest.errors import ConsentError, DigestError, InputError, NotFound, StateError
from digest.settings import Settings
from digest.subscribers import consent, service, tokens
from digest.subscribers.lifecycle import SubscribeOutcome
from digest.subscribers.mail import send_confirmation
from digest.web.guards import CSRF_MAX_AGE, csrf_ok, default_limiters, new_csrf_token

log = logging.getLogger(__name__)

CSRF_COOKIE = "digest_csrf"
ONE_CLICK = "One-Click"
_init_lock = threading.Lock()


# --- plumbing ---------------------------------------------------------------------------------


def _state(request: Request, name: str, make: Callable[[], Any]) -> Any:
    state = request.app.state
    value = getattr(state, name, None)
    if value is None:
        with _init_lock:
            value = getattr(state, name, None)
            if value is None:
                value = make()
                setattr(state, name, value)
    return value


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _engine(request: Request) -> Engine:
    engine: Engine = _state(request, "engine", lambda: make_engine(_settings(request)))
    return engine


def _now(request: Request) -> datetime:
    clock = getattr(request.app.state, "clock", None)
    return clock() if clock is not None else datetime.now(UTC)


def _who(request: Request) -> dict[str, str | None]:
    return {
        "ip": request.client.host if request.client else None,
        "user_agent": request.headers.get("user-agent"),
    }


def _page(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    settings = _settings(request)
    context = {
        "newsletter_name": settings.newsletter_name,
        "brand_color": settings.brand_color,
        "wording": consent.WORDING_TEXT,
        **values,
    }
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, template, context, status_code=status_code
    )
    # Pages carrying tokens must not be cached or leak the token onwards.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _form_page(request: Request, *, status_code: int = 200, **values: Any) -> HTMLResponse:
    settings = _settings(request)
    token = new_csrf_token(settings, now=time.time())
    values.setdefault("email", "")
    values.setdefault("name", "")
    response = _page(request, "subscribe.html", status_code, csrf=token, **values)
    response.set_cookie(
        CSRF_COOKIE,
        token,
        max_age=CSRF_MAX_AGE,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/subscribe",
    )
    return response


# --- /subscribe ---------------------------------------------------------------------------------


def subscribe_form(request: Request) -> HTMLResponse:
    return _form_page(request)


async def _mail_confirmation(
    settings: Settings, sender: Any, outcome: SubscribeOutcome, now: datetime
) -> None:
    """Runs after the response is sent, so a slow relay cannot reveal whether mail went out."""
    assert outcome.confirm_url is not None
    own = sender is None
    if own:
        from digest.send.smtp import SmtpPool

        sender = SmtpPool(settings)
    try:
        await send_confirmation(
            settings=settings,
            sender=sender,
            email=outcome.email,
            name=outcome.name,
            confirm_url=outcome.confirm_url,
            now=now,
        )
    except DigestError as exc:
        log.warning("confirmation to subscriber %s not sent: %s", outcome.subscriber_id, exc)
    finally:
        if own:
            await sender.aclose()


def subscribe_submit(
    request: Request,
    background: BackgroundTasks,
    email: str = Form(""),
    name: str = Form(""),
    website: str = Form(""),
    csrf: str = Form(""),
) -> HTMLResponse:
    settings = _settings(request)
    if not csrf_ok(
        settings, form_value=csrf, cookie_value=request.cookies.get(CSRF_COOKIE), now=time.time()
    ):
        return _form_page(
            request,
            status_code=400,
            email=email,
            name=name,
            error="The form had expired. Please submit it again.",
        )
    if website.strip():  # the honeypot: answer like a success, do nothing
        return _page(request, "subscribe_sent.html")
    try:
        address = service.parse_address(email)
    except InputError:
        return _form_page(
            request,
            status_code=400,
            email=email,
            name=name,
            error="Please enter a valid email address.",
        )
    who = _who(request)
    limiters = _state(request, "subscribe_limiter", default_limiters)
    if not (
        limiters["ip"].allow(f"ip:{who['ip']}")
        and limiters["address"].allow(consent.email_hash(address))
    ):
        return _page(
            request,
            "subscribe_problem.html",
            429,
            heading="Please wait a little",
            message="Too many sign-up requests; please try again in an hour.",
        )
    now = _now(request)
    for attempt in (1, 2):
        try:
            with session_scope(_engine(request)) as session:
                outcome = service.subscribe(
                    session, settings=settings, email=address, name=name, source="web", now=now,
                    **who,
                )  # fmt: skip
            break
        except (IntegrityError, ConsentError):
            # Two sign-ups for the same new address raced: the loser sees the winner's row now.
            if attempt == 2:
                raise
    if outcome.confirm_url is not None:
        background.add_task(
            _mail_confirmation, settings, getattr(request.app.state, "sender", None), outcome, now
        )
    # The same page whatever happened: known, new, suppressed (no address enumeration).
    return _page(request, "subscribe_sent.html")


# --- /confirm/<token> ---------------------------------------------------------------------------


def confirm_page(request: Request, token: str) -> HTMLResponse:
    """Shows the Confirm button. Changes nothing."""
    try:
        with session_scope(_engine(request)) as session:
            subscriber = service.check_confirm_token(session, token=token, now=_now(request))
    except (InputError, StateError) as exc:
        return _page(request, "confirm_problem.html", 400, message=str(exc))
    if subscriber.status == "confirmed":
        return _page(request, "confirm_done.html")
    return _page(request, "confirm.html", token=token)


def confirm_submit(request: Request, token: str) -> HTMLResponse:
    try:
        with session_scope(_engine(request)) as session:
            service.confirm(session, token=token, now=_now(request), **_who(request))
    except (InputError, StateError) as exc:
        return _page(request, "confirm_problem.html", 400, message=str(exc))
    return _page(request, "confirm_done.html")


# --- /u/<token>: one-click unsubscribe -----------------------------------------------------------


def unsubscribe_page(request: Request, token: str) -> HTMLResponse:
    """Shows the Unsubscribe button. Changes nothing (GET and HEAD)."""
    try:
        tokens.read_unsubscribe_token(token, settings=_settings(request))
    except InputError as exc:
        return _page(request, "unsubscribe_problem.html", 400, message=str(exc))
    return _page(request, "unsubscribe.html", token=token)


def unsubscribe_submit(
    request: Request, token: str, one_click: str = Form("", alias="List-Unsubscribe")
) -> HTMLResponse:
    """RFC 8058: body ``List-Unsubscribe=One-Click`` (urlencoded or multipart), no cookies,
    200 and never a redirect, idempotent."""
    settings = _settings(request)
    if one_click.strip() != ONE_CLICK:
        return _page(
            request,
            "unsubscribe_problem.html",
            400,
            message="this request did not say List-Unsubscribe=One-Click; use the button",
        )
    try:
        with session_scope(_engine(request)) as session:
            subscriber = service.unsubscribe(
                session,
                settings=settings,
                token=token,
                source="one-click",
                now=_now(request),
                **_who(request),
            )
            prefs = (
                service.preferences_url(settings=settings, subscriber=subscriber)
                if subscriber.erased_at is None
                else None
            )
    except InputError as exc:
        return _page(request, "unsubscribe_problem.html", 400, message=str(exc))
    except NotFound:  # the person was deleted: nothing will be sent, which is what they want
        prefs = None
    return _page(request, "unsubscribe_done.html", preferences_url=prefs)


# --- /p/<token>: preferences ----------------------------------------------------------------------

_STATUS_TEXT = {
    "pending": "waiting for your confirmation",
    "confirmed": "subscribed",
    "unsubscribed": "unsubscribed",
    "bounced": "paused: mail to this address bounced",
    "complained": "unsubscribed: our mail was reported as unwanted",
}

_NOTICE = {
    "name": "Your name is saved.",
    "pause": "Delivery is paused. Resume whenever you like.",
    "resume": "Delivery is on again.",
    "unsubscribe": "You are unsubscribed.",
    "resubscribe": "Welcome back: you are subscribed again.",
}


def _preferences(
    request: Request, token: str, *, notice: str = "", error: str = "", status_code: int = 200
) -> HTMLResponse:
    try:
        with session_scope(_engine(request)) as session:
            subscriber, _ = service.subscriber_for_preferences(
                session, settings=_settings(request), token=token
            )
    except (InputError, NotFound) as exc:
        return _page(request, "preferences_problem.html", 400, message=str(exc))
    status = str(subscriber.status)
    text = _STATUS_TEXT.get(status, status)
    if status == "confirmed" and subscriber.paused:
        text = "subscribed, delivery paused"
    return _page(
        request,
        "preferences.html",
        status_code,
        token=token,
        email=subscriber.email,
        name=subscriber.name,
        status=status,
        status_text=text,
        paused=subscriber.paused,
        notice=notice,
        error=error,
    )


def preferences_page(request: Request, token: str) -> HTMLResponse:
    return _preferences(request, token)


def preferences_submit(
    request: Request, token: str, action: str = Form(""), name: str = Form("")
) -> HTMLResponse:
    try:
        with session_scope(_engine(request)) as session:
            service.update_preferences(
                session,
                settings=_settings(request),
                token=token,
                action=action,
                name=name,
                now=_now(request),
                **_who(request),
            )
    except (InputError, NotFound) as exc:
        return _page(request, "preferences_problem.html", 400, message=str(exc))
    except StateError as exc:
        return _preferences(request, token, error=str(exc), status_code=409)
    return _preferences(request, token, notice=_NOTICE.get(action, "Saved."))
