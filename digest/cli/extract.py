"""`digest extract PATH`: clean one file and print the article."""

from __future__ import annotations

from pathlib import Path

import typer

from digest.cli import app
from digest.cli.common import console, print_json
from digest.errors import InputError


@app.command("extract")
def extract_cmd(
    path: Path = typer.Argument(..., help="A text dump (.txt) or an HTML page."),
    kind: str = typer.Option(None, "--kind", help="html or text (default: detect)."),
    url: str = typer.Option(None, "--url", help="The page's URL, if known."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Clean one page or text dump and print title, body, credit, author, published, url.

    Example: digest extract ../shared/seed/000_61f1709d1c0051da.txt --json
    """
    from digest.ingest.extract import extract

    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        article = extract(path.read_bytes(), kind=kind, url=url)
    except InputError as exc:
        raise type(exc)(f"{path}: {exc}") from None
    if as_json:
        print_json(article.to_json())
        return
    console.print(f"[bold]{article.title}[/bold]")
    for label in ("credit", "author", "published", "url"):
        value = getattr(article, label)
        if value:
            console.print(f"[dim]{label}:[/dim] {value}")
    console.print()
    console.print(article.body, markup=False, highlight=False)
