"""`digest issue build|list|show|preview|send`."""

from __future__ import annotations

from pathlib import Path
from typing import TypedDict

import typer
from rich.table import Table

from digest.cli import issue_app
from digest.cli.common import console, now, print_json, settings


@issue_app.command("build")
def build(
    week: str = typer.Option(
        None, "--week", help="ISO week like 2017-W11 (default: the coming send)."
    ),
    force: bool = typer.Option(False, "--force", help="Build even when the week is thin."),
) -> None:
    """Pick the week's highlights and freeze them, rendered, as the week's issue.

    Example: digest issue build --week 2017-W11
    """
    from digest.pipeline import build_issue

    result = build_issue(settings=settings(), now=now(), week=week, force=force)
    console.print(result.message, highlight=False)
    for change in result.changes:
        console.print(f"  {change}", highlight=False, markup=False)


@issue_app.command("list")
def list_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List issues, newest first.

    Example: digest issue list --json
    """
    from digest.db import make_engine, session_scope
    from digest.store.issues import list_issues

    cfg = settings()
    with session_scope(make_engine(cfg)) as session:
        issues = list_issues(session, newsletter=cfg.newsletter_id)
    rows = [
        {"id": i.id, "week": i.week, "status": str(i.status), "subject": i.subject,
         "built_at": i.built_at, "sent_at": i.sent_at}
        for i in issues
    ]  # fmt: skip
    if as_json:
        print_json(rows)
        return
    table = Table("id", "week", "status", "subject", "sent")
    for i in issues:
        table.add_row(str(i.id), i.week, str(i.status), i.subject, str(i.sent_at or ""))
    console.print(table)


class ItemJson(TypedDict):
    title: str
    url: str
    source: str
    section: str
    blurb: str
    also_reported_by: list[str]


class IssueJson(TypedDict):
    id: int
    week: str
    status: str
    subject: str
    preheader: str
    content_hash: str
    items: list[ItemJson]


def issue_json(ref: str | None) -> IssueJson:
    from digest.db import make_engine, session_scope
    from digest.store.issues import get_issue, items_of

    cfg = settings()
    with session_scope(make_engine(cfg)) as session:
        issue = get_issue(session, newsletter=cfg.newsletter_id, ref=ref)
        assert issue.id is not None
        items = items_of(session, issue.id)
    return {
        "id": issue.id,
        "week": issue.week,
        "status": str(issue.status),
        "subject": issue.subject,
        "preheader": issue.preheader,
        "content_hash": issue.content_hash,
        "items": [
            {"title": i.title, "url": i.url, "source": i.source_name, "section": i.section,
             "blurb": i.blurb, "also_reported_by": list(i.also_reported_by)}
            for i in items
        ],
    }  # fmt: skip


@issue_app.command("show")
def show(
    issue: str = typer.Argument(None, help="Issue id or week (default: the latest)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show an issue's subject, preheader and items.

    Example: digest issue show 2017-W11 --json
    """
    data = issue_json(issue)
    if as_json:
        print_json(data)
        return
    console.print(f"[bold]{data['subject']}[/bold]  ({data['week']}, {data['status']})")
    console.print(f"[dim]{data['preheader']}[/dim]\n")
    table = Table("#", "section", "title", "source", "also reported by")
    for n, item in enumerate(data["items"], start=1):
        table.add_row(str(n), item["section"], item["title"], item["source"],
                      ", ".join(item["also_reported_by"]))  # fmt: skip
    console.print(table)


@issue_app.command("preview")
def preview(
    issue: str = typer.Argument(None, help="Issue id or week (default: the latest)."),
    out: Path = typer.Option(None, "--out", help="Folder (default: DATA_DIR/previews)."),
    open_browser: bool = typer.Option(False, "--open", help="Open the HTML in a browser."),
) -> None:
    """Write the issue's HTML and text parts to files, as a reader would get them.

    Example: digest issue preview --open
    """
    from digest.preview_files import write_preview

    html_path, text_path = write_preview(settings=settings(), ref=issue, folder=out)
    console.print(f"HTML: {html_path}\ntext: {text_path}", highlight=False)
    if open_browser:
        import webbrowser

        from digest.web.preview import display_available

        # Without a display, webbrowser would start a console browser (lynx, w3m) in this terminal.
        if not display_available() or not webbrowser.open(html_path.resolve().as_uri()):
            console.print("no browser available here; open the file above yourself")

# `digest issue send|status|retry-failed` live in digest/cli/issue_send.py.
