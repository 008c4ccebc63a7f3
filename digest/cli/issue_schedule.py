"""`digest issue schedule|approve|cancel`: when an issue goes out, or that it does not."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from digest.cli import issue_app
from digest.cli.common import console, now, settings

if TYPE_CHECKING:
    from sqlmodel import Session

    from digest.settings import Settings

IssueRef = Annotated[str, typer.Argument(help="Issue id or week (2017-W11).")]
SendAt = Annotated[
    str | None,
    typer.Option(
        "--at",
        help='When to send: now, ISO time, or "fri 08:00" '
        "(default: the week's send time, or now if that has passed).",
    ),
]


def _said(verb: str, week: str, status: str, when: object) -> None:
    console.print(f"issue {week}: {verb} ({status}{'' if when is None else f', {when}'})",
                  highlight=False, markup=False)  # fmt: skip


@issue_app.command("approve")
def approve(ref: IssueRef, at: SendAt = None) -> None:
    """Approve a draft for sending; the scheduler sends it at its time.

    Example: digest issue approve 2026-W48
    """
    _approve(ref, at, verb="approved")


@issue_app.command("schedule")
def schedule(ref: IssueRef, at: SendAt = None) -> None:
    """(Re)schedule an issue's send. A missed issue goes out only when scheduled again here.

    Example: digest issue schedule 2026-W48 --at "2026-11-27T09:30"
    """
    _approve(ref, at, verb="scheduled")


@issue_app.command("cancel")
def cancel(ref: IssueRef) -> None:
    """Cancel a draft or scheduled issue: it will not be sent.

    Example: digest issue cancel 2026-W48
    """
    from digest.store import schedule as store

    with _store() as (cfg, session):
        issue = store.cancel(session, newsletter=cfg.newsletter_id, ref=ref)
        _said("cancelled", issue.week, str(issue.status), None)


def _approve(ref: str, at: str | None, *, verb: str) -> None:
    """Approve (or re-schedule) ``ref`` to send ``at`` (default: its week's send time, or now
    once that has passed) and say so, naming ``verb``."""
    from digest.store import schedule as store
    from digest.store.issues import get_issue
    from jobs.calendar import parse_when, send_time

    moment = now()
    with _store() as (cfg, session):
        if at is None:
            week = get_issue(session, newsletter=cfg.newsletter_id, ref=ref).week
            when = max(send_time(week, settings=cfg), moment)
        else:
            when = parse_when(at, now=moment, settings=cfg)
        issue = store.approve(session, newsletter=cfg.newsletter_id, ref=ref, at=when)
        local = when.astimezone(cfg.zone)
        week, status = issue.week, str(issue.status)
    _said(verb, week, status, f"sends {local:%a %Y-%m-%d %H:%M %Z}")


@contextmanager
def _store() -> Iterator[tuple[Settings, Session]]:
    """The settings and one session (committed at the end) on an engine of this command's own."""
    from digest.db import make_engine, session_scope

    cfg = settings()
    engine = make_engine(cfg)
    try:
        with session_scope(engine) as session:
            yield cfg, session
    finally:
        engine.dispose()
