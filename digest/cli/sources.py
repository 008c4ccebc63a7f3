"""`digest sources add|list|remove|check`: where articles come from, and how that is going."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import typer
from rich.table import Table
from sqlmodel import Session

from digest.cli import sources_app
from digest.cli.common import console, now, print_json, settings
from digest.errors import InputError
from digest.models import Source, SourceKind


@contextmanager
def db_session() -> Iterator[Session]:
    from digest.db import make_engine, session_scope

    engine = make_engine(settings())
    try:
        with session_scope(engine) as session:
            yield session
    finally:
        engine.dispose()


def _kind(value: str | None, location: str) -> SourceKind:
    from digest.ingest.poll import is_url

    if value is None:
        return SourceKind.FEED if is_url(location) else SourceKind.DUMP
    try:
        return SourceKind(value.lower())
    except ValueError:
        known = ", ".join(k.value for k in SourceKind)
        raise InputError(f"unknown source kind {value!r}; use one of: {known}") from None


def _check_location(kind: SourceKind, location: str) -> str:
    from digest.ingest.canonical import canonical_url
    from digest.ingest.poll import is_url

    if is_url(location):
        if kind is SourceKind.DUMP:
            raise InputError(f"a dump source is a file or folder, not a URL: {location}")
        canonical_url(location)  # raises InputError for a malformed URL
        return location
    if "://" in location:
        raise InputError(f"{location} is neither an http(s) URL nor a local path")
    path = Path(location).expanduser()
    if not path.exists():
        raise InputError(f"{location} does not exist (give a URL, or a file or folder)")
    return str(path.resolve())


@sources_app.command("add")
def add(
    name: str = typer.Argument(..., help="A short unique name, e.g. 'Harbour Times'."),
    location: str = typer.Argument(..., help="Feed or page URL, or a file or folder of dumps."),
    kind: str = typer.Option(
        None, "--kind", help="feed, page or dump (default: feed for a URL, dump for a path)."
    ),
    section: str = typer.Option(None, "--section", help="Section its articles go under."),
    weight: float = typer.Option(1.0, "--weight", min=0.0, help="Ranking weight (1 = normal)."),
    interval: int = typer.Option(
        None, "--interval", min=1, help="Minutes between polls (default: INGEST_EVERY_MINUTES)."
    ),
    fetch_full: bool = typer.Option(
        False, "--fetch-full", help="Fetch the linked page when a feed entry is only a teaser."
    ),
) -> None:
    """Add a source.

    Example: digest sources add "Harbour Times" https://harbour.example.org/feed.xml --fetch-full

    Example: digest sources add Archive ./dumps --kind dump --section Local
    """
    from digest.store import sources as store

    chosen = _kind(kind, location)
    where = _check_location(chosen, location)
    with db_session() as session:
        source = store.add_source(
            session, name=name, kind=chosen, location=where, section=section, weight=weight,
            interval_minutes=interval, fetch_full=fetch_full, now=now(),
        )  # fmt: skip
        console.print(f"added {source.kind} source {source.name!r}: {where}", highlight=False)


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "never"


@sources_app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts.")) -> None:
    """List sources with their health: last success, last error, failures in a row, and
    articles first seen in the last seven days.

    Example: digest sources list --json
    """
    from digest.store import sources as store

    with db_session() as session:
        rows = store.source_health(session, now=now())
        data = [_as_dict(h.source, h.articles_this_week) for h in rows]
    if as_json:
        print_json(data)
        return
    if not data:
        console.print("no sources yet; add one with `digest sources add NAME URL`")
        return
    table = Table(title="Sources")
    table.add_column("name", no_wrap=True)
    table.add_column("kind")
    table.add_column("location", overflow="ellipsis", max_width=40)
    for header in ("section", "last success", "failures", "last error", "this week"):
        table.add_column(header)
    for row in data:
        failures = int(str(row["consecutive_failures"] or 0))
        table.add_row(
            str(row["name"]), str(row["kind"]), str(row["location"]), str(row["section"] or ""),
            _when(row["last_success_at"]),  # type: ignore[arg-type]
            f"[red]{failures}[/red]" if failures else "0",
            str(row["last_error"] or ""), str(row["articles_this_week"]),
        )  # fmt: skip
    console.print(table)


def _as_dict(source: Source, articles: int) -> dict[str, object]:
    return {
        "name": source.name,
        "kind": str(source.kind),
        "location": source.location,
        "section": source.section,
        "weight": source.weight,
        "interval_minutes": source.interval_minutes,
        "fetch_full": source.fetch_full,
        "last_checked_at": source.last_checked_at,
        "last_success_at": source.last_success_at,
        "last_error": source.last_error,
        "last_error_at": source.last_error_at,
        "consecutive_failures": source.consecutive_failures,
        "articles_this_week": articles,
    }


@sources_app.command("remove")
def remove(
    name: str = typer.Argument(..., help="The source's name."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would happen; change nothing."),
) -> None:
    """Remove a source. Its articles stay in the store (they keep the source's name).

    Example: digest sources remove "Harbour Times" --dry-run
    """
    from digest.store import sources as store

    with db_session() as session:
        if dry_run:
            source = store.get_source(session, name)
            console.print(f"would remove source {source.name!r} ({source.location})",
                          highlight=False)  # fmt: skip
            return
        unlinked = store.remove_source(session, name)
    console.print(f"removed source {name!r}; {unlinked} article(s) kept", highlight=False)


@sources_app.command("check")
def check(
    name: str = typer.Argument(..., help="The source's name."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Fetch a source now and show what it yields, without storing anything.

    Example: digest sources check "Harbour Times"
    """
    from digest.ingest.fetch import Fetcher
    from digest.ingest.poll import poll
    from digest.ingest.run import accepted_languages
    from digest.store import sources as store

    cfg = settings()
    with db_session() as session:
        source = store.get_source(session, name)
        session.expunge(source)
    # Unconditional: a check wants to see the content even when nothing changed.
    source.etag = source.last_modified = None
    with Fetcher.from_settings(cfg) as fetcher:
        polled = poll(source, fetcher=fetcher, languages=accepted_languages(cfg))
    items = [
        {"label": i.label, "title": i.article.title if i.article else None,
         "url": i.article.url if i.article else None, "words": len(i.article.body.split())
         if i.article else 0, "error": i.error}
        for i in polled.items
    ]  # fmt: skip
    if as_json:
        print_json({"source": name, "items": items})
        return
    table = Table("title", "words", "url / error", title=f"{name}: {len(items)} item(s)")
    for item in items:
        table.add_row(str(item["title"] or ""), str(item["words"]),
                      str(item["error"] or item["url"] or ""))  # fmt: skip
    console.print(table)
