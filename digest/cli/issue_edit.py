"""`digest issue pin|drop|boost|move|blurb|subject|preheader|explain`: an editor's hand on a draft.

Every change is stored and re-applied whenever the draft is rebuilt, so a pin or a drop
survives `digest issue build`. Sent (or approved, sending) issues are frozen: editing one is
refused with one line.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from digest.cli import issue_app
from digest.cli.common import console, now, print_json, settings
from digest.models import EditKind

ISSUE_HELP = "Issue id or week, e.g. 2017-W11 (default: the latest)."
IssueArg = Annotated[str, typer.Argument(help=ISSUE_HELP)]
IssueOpt = Annotated[str | None, typer.Option("--issue", help=ISSUE_HELP)]
ItemArg = Annotated[int, typer.Argument(help="Item number, as `digest issue show` lists it.")]


def _edit(
    kind: EditKind,
    *,
    issue: str | None,
    article_id: int | None = None,
    item: int | None = None,
    position: int | None = None,
    text: str | None = None,
    amount: float | None = None,
) -> None:
    from digest.pipeline import edit_issue

    result = edit_issue(
        settings=settings(),
        now=now(),
        ref=issue,
        kind=kind,
        article_id=article_id,
        item=item,
        position=position,
        text=text,
        amount=amount,
    )
    console.print(result.message, highlight=False)
    for change in result.changes:
        console.print(f"  {change}", highlight=False, markup=False)


@issue_app.command("pin")
def pin(
    issue: IssueArg,
    article_id: int = typer.Argument(..., help="Id of the article to keep in the issue."),
) -> None:
    """Always include an article (shown through that very article), even on rebuilds.

    Example: digest issue pin 2017-W11 412
    """
    _edit(EditKind.PIN, issue=issue, article_id=article_id)


@issue_app.command("drop")
def drop(
    issue: IssueArg,
    article_id: int = typer.Argument(..., help="Id of an article of the story to leave out."),
) -> None:
    """Leave a story out (the article's whole story), even on rebuilds; the next best fills in.

    Example: digest issue drop 2017-W11 412
    """
    _edit(EditKind.DROP, issue=issue, article_id=article_id)


@issue_app.command("boost")
def boost(
    issue: IssueArg,
    article_id: int = typer.Argument(..., help="Id of the article whose story to boost."),
    amount: float = typer.Argument(..., help="Added to the story's score (0 removes the boost)."),
) -> None:
    """Raise (or, below zero, lower) a story's rank by an editor boost, kept across rebuilds;
    `digest issue explain` shows it among the score parts.

    Example: digest issue boost 2017-W11 412 0.5
    """
    _edit(EditKind.BOOST, issue=issue, article_id=article_id, amount=amount)


@issue_app.command("move")
def move(
    item: ItemArg,
    to: int = typer.Option(..., "--to", min=1, help="New position (1 = first)."),
    issue: IssueOpt = None,
) -> None:
    """Move an item to another position.

    Example: digest issue move 5 --to 1 --issue 2017-W11
    """
    _edit(EditKind.MOVE, issue=issue, item=item, position=to)


@issue_app.command("blurb")
def blurb(
    item: ItemArg,
    text: str = typer.Argument(..., help="The new blurb."),
    issue: IssueOpt = None,
) -> None:
    """Replace an item's blurb with your own words.

    Example: digest issue blurb 2 "Scotland asks for a second vote." --issue 2017-W11
    """
    _edit(EditKind.BLURB, issue=issue, item=item, text=text)


@issue_app.command("subject")
def subject(
    text: str = typer.Argument(..., help="The new subject line (about 70 characters show)."),
    issue: IssueOpt = None,
) -> None:
    """Replace the generated subject line.

    Example: digest issue subject "Scotland, the Dutch vote and a rocket test" --issue 2017-W11
    """
    _edit(EditKind.SUBJECT, issue=issue, text=text)


@issue_app.command("preheader")
def preheader(
    text: str = typer.Argument(..., help="The new preheader (about 110 characters show)."),
    issue: IssueOpt = None,
) -> None:
    """Replace the generated preheader (the grey line after the subject in the inbox).

    Example: digest issue preheader "Also: Chuck Berry; Orly airport" --issue 2017-W11
    """
    _edit(EditKind.PREHEADER, issue=issue, text=text)


@issue_app.command("explain")
def explain(
    issue: str = typer.Argument(None, help=ISSUE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    left_out: int = typer.Option(10, "--left-out", min=0, help="How many left-out stories."),
) -> None:
    """Why each item was picked (its score parts) and the best stories left out, with why.

    Example: digest issue explain 2017-W11 --json
    """
    from digest.db import make_engine, session_scope
    from digest.store.items import explanation

    cfg = settings()
    with session_scope(make_engine(cfg)) as session:
        data = explanation(session, newsletter=cfg.newsletter_id, ref=issue, left_out=left_out)
    if as_json:
        print_json(data)
        return
    _print_explanation(data)


def _parts(parts: dict[str, float]) -> str:
    """ "coverage 0.42 · recency 0.15 · ..." without the parts that added nothing."""
    return " \u00b7 ".join(f"{name} {value:.2f}" for name, value in parts.items() if value)


def _one_line(table: Table, *, column: int) -> None:
    """Cut ``column`` (the titles) to one line of at most 40 characters, ending in an ellipsis."""
    table.columns[column].overflow = "ellipsis"
    table.columns[column].no_wrap = True
    table.columns[column].max_width = 40


def _print_explanation(data: dict[str, Any]) -> None:
    console.print(
        f"[bold]{data['subject']}[/bold]  ({data['week']}, {data['status']})", highlight=False
    )
    table = Table("#", "article", "title", "source", "score", "why (score parts)")
    _one_line(table, column=2)
    for item in data["items"]:
        why = _parts(item["score_parts"])
        flags = [*item["editor"], *(["undated: first seen"] if item["undated"] else [])]
        if flags:
            why = f"{why} [{', '.join(flags)}]"
        table.add_row(
            str(item["position"]), str(item["article_id"]), item["title"], item["source"],
            f"{item['score']:.3f}", why,
        )  # fmt: skip
    console.print(table, highlight=False)
    if data["left_out"]:
        console.print("\n[bold]Best stories left out[/bold]")
        out = Table("article", "title", "source", "score", "why")
        _one_line(out, column=1)
        for row in data["left_out"]:
            out.add_row(
                str(row["article_id"]), row["title"], row["source"], f"{row['score']:.3f}",
                row["reason"],
            )  # fmt: skip
        console.print(out, highlight=False)
