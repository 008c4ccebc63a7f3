"""`digest ingest PATH...`: files and folders of dumps, pages and feeds into the store."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import Progress
from rich.table import Table

from digest.cli import app
from digest.cli.common import console, now, print_json, settings
from digest.errors import InputError


@app.command("ingest")
def ingest_cmd(
    paths: list[Path] = typer.Argument(..., help="Files or folders (.txt .html .xml .jsonl .csv)."),
    source: str = typer.Option(None, "--source", help="Attribute articles to this source name."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Clean and store every article found in the given files and folders.

    Example: digest ingest ./dumps/ feed.xml --source "Morning Wire"
    """
    from digest.ingest.run import expand
    from digest.pipeline import ingest_paths

    files = expand(paths)
    if not files:
        raise InputError("nothing to ingest: no .txt, .html, .xml, .jsonl or .csv files found")
    with Progress(console=console, transient=True, disable=as_json) as progress:
        task = progress.add_task("ingesting", total=None)
        report = ingest_paths(
            paths, settings=settings(), now=now(), source_name=source,
            on_item=lambda _item: progress.advance(task),
        )  # fmt: skip
    if as_json:
        print_json(
            {"new": report.new, "updated": report.updated, "duplicates": report.duplicates,
             "failed": [{"input": i, "reason": r} for i, r in report.failed]}
        )  # fmt: skip
        return
    table = Table("new", "updated", "duplicates", "failed")
    table.add_row(str(report.new), str(report.updated), str(report.duplicates), str(len(report.failed)))
    console.print(table)
    for label, reason in report.failed:
        console.print(f"[red]failed[/red] {label}: {reason}", markup=True, highlight=False)
