"""`digest issue check`: the pre-send check on one personalised copy of an issue."""

from __future__ import annotations

import typer
from rich.table import Table

from digest.cli import issue_app
from digest.cli.common import console, now, print_json, settings
from digest.errors import CheckFailed

MARK = {True: "[green]pass[/]", False: "[bold red]FAIL[/]", None: "[dim]skip[/]"}


@issue_app.command("check")
def check_cmd(
    issue: str = typer.Argument(None, help="Issue id or week (default: the latest)."),
    offline: bool = typer.Option(
        False, "--offline", help="Skip the network checks (links, one-click POST)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Check the final bytes of one personalised copy before anything is sent: headers,
    List-Unsubscribe and one-click, DKIM, MIME structure, HTML size, alt texts, https links
    that answer, postal address, subject and preheader. Exits 1 when a check fails.

    Example: digest issue check 2017-W11 --offline
    """
    from digest.check import check_issue
    from digest.db import make_engine, session_scope
    from digest.store.issues import get_issue

    cfg = settings()
    engine = make_engine(cfg)
    with session_scope(engine) as session:
        found = get_issue(session, newsletter=cfg.newsletter_id, ref=issue)
        session.expunge(found)
    engine.dispose()
    report = check_issue(settings=cfg, issue=found, now=now(), offline=offline)
    if as_json:
        print_json({"issue": found.week, **report.as_dict()})
    else:
        table = Table("check", "result", "detail", title=f"issue {found.week}")
        for check in report.checks:
            table.add_row(check.name, MARK[check.ok], check.detail)
        console.print(table)
    if not report.ok:
        names = ", ".join(c.name for c in report.failures)
        raise CheckFailed(f"issue {found.week}: {len(report.failures)} checks failed ({names})")
