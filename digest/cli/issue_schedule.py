"""`digest issue schedule|approve|cancel`: when an issue goes out, or that it does not."""

from __future__ import annotations

import typer

from digest.cli import issue_app
from digest.cli.common import console, now, settings


def _said(verb: str, week: str, status: str, when: object) -> None:
    console.print(f"issue {week}: {verb} ({status}{'' if when is None else f', {when}'})",
                  highlight=False, markup=False)  # fmt: skip


@issue_app.command("approve")
def approve(
    ref: str = typer.Argument(..., help="Issue id or week (2017-W11)."),
    at: str = typer.Option(
        None,
        "--at",
        help='When to send: now, ISO time, or "fri 08:00" '
        "(default: the week's send time, or now if that has passed).",
    ),
) -> None:
    """Approve a draft for sending; the scheduler sends it at its time.

    Example: digest issue approve 2026-W48
    """
    issue = _approve(ref, at)
    _said("approved", issue[0], issue[1], issue[2])


@issue_app.command("schedule")
def schedule(
    ref: str = typer.Argument(..., help="Issue id or week (2017-W11)."),
    at: str = typer.Option(
        None,
        "--at",
        help='When to send: now, ISO time, or "fri 08:00" '
        "(default: the week's send time, or now if that has passed).",
    ),
) -> None:
    """(Re)schedule an issue's send. A missed issue goes out only when scheduled again here.

    Example: digest issue schedule 2026-W48 --at "2026-11-27T09:30"
    """
    issue = _approve(ref, at)
    _said("scheduled", issue[0], issue[1], issue[2])


@issue_app.command("cancel")
def cancel(ref: str = typer.Argument(..., help="Issue id or week (2017-W11).")) -> None:
    """Cancel a draft or scheduled issue: it will not be sent.

    Example: digest issue cancel 2026-W48
    """
    from digest.db import make_engine, session_scope
    from digest.store import schedule as store

    cfg = settings()
    engine = make_engine(cfg)
    try:
        with session_scope(engine) as session:
            issue = store.cancel(session, newsletter=cfg.newsletter_id, ref=ref)
            _said("cancelled", issue.week, str(issue.status), None)
    finally:
        engine.dispose()


def _approve(ref: str, at: str | None) -> tuple[str, str, str]:
    from digest.db import make_engine, session_scope
    from digest.store import schedule as store
    from digest.store.issues import get_issue
    from jobs.calendar import parse_when, send_time

    cfg, moment = settings(), now()
    engine = make_engine(cfg)
    try:
        with session_scope(engine) as session:
            if at is None:
                week = get_issue(session, newsletter=cfg.newsletter_id, ref=ref).week
                when = max(send_time(week, settings=cfg), moment)
            else:
                when = parse_when(at, now=moment, settings=cfg)
            issue = store.approve(session, newsletter=cfg.newsletter_id, ref=ref, at=when)
            local = when.astimezone(cfg.zone)
            return issue.week, str(issue.status), f"sends {local:%a %Y-%m-%d %H:%M %Z}"
    finally:
        engine.dispose()
