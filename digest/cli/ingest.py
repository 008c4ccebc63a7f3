"""`digest ingest [PATH...] [--source NAME]`: sources and files into the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from digest.cli import app
from digest.cli.common import console, now, print_json, settings
from digest.errors import InputError


@app.command("ingest")
def ingest_cmd(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Files or folders (.txt .html .xml .jsonl .csv); none: due sources."),
    ] = None,
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source", help="Fetch this source now (repeatable); with PATHs: their name."
        ),
    ] = None,
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Fetch every due source, or read the given files, and store the articles.

    Ends with a table: new, updated, duplicates (seen before, unchanged), near-duplicates
    linked to an earlier article, and failures with the reason for each.

    Example: digest ingest

    Example: digest ingest --source "Harbour Times"

    Example: digest ingest ./dumps/ feed.xml --source "Morning Wire"
    """
    from digest.ingest.run import IngestReport, expand
    from digest.pipeline import ingest_all, ingest_paths

    cfg, moment = settings(), now()
    report = IngestReport()
    with Progress(console=console, transient=True, disable=as_json) as progress:
        if paths:
            files = expand(paths)
            if not files:
                raise InputError(
                    "nothing to ingest: no .txt, .html, .xml, .jsonl or .csv files found"
                )
            if source and len(source) > 1:
                raise InputError("with PATHs give at most one --source (the name to file under)")
            task = progress.add_task("reading files", total=None)
            report = ingest_paths(
                paths, settings=cfg, now=moment, source_name=source[0] if source else None,
                on_item=lambda _item: progress.advance(task),
            )  # fmt: skip
        else:
            task = progress.add_task("fetching sources", total=None)
            report = ingest_all(
                settings=cfg, now=moment, names=source or None,
                on_source=lambda src, _part: progress.update(
                    task, advance=1, description=f"fetched {src.name}"
                ),
            )  # fmt: skip
    if as_json:
        print_json(
            {"sources": report.sources, "not_modified": report.not_modified, "new": report.new,
             "updated": report.updated, "duplicates": report.duplicates, "linked": report.linked,
             "failed": [{"input": i, "reason": r} for i, r in report.failed]}
        )  # fmt: skip
        return
    if not paths and report.sources == 0:
        console.print("no source is due (add one with `digest sources add`, or name --source)")
    table = Table("new", "updated", "duplicates", "near-dup linked", "failed")
    table.add_row(str(report.new), str(report.updated), str(report.duplicates),
                  str(report.linked), str(len(report.failed)))  # fmt: skip
    console.print(table)
    if report.failed:
        failures = Table("failed", "reason", title="Failures")
        for label, reason in report.failed:
            failures.add_row(label, reason)
        console.print(failures)
