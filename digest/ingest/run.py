"""Ingest files (text dumps, HTML pages, feed XML, JSONL/CSV dumps) into the store.

Each article is stored in its own transaction: a bad file or row is reported with one line
and the run goes on; nothing half-written stays behind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from digest.db import session_scope
from digest.errors import DigestError
from digest.ingest.extract import Extracted, extract
from digest.store.articles import ArticleData, UpsertOutcome, upsert_article

PAGE_SUFFIXES = {".html", ".htm"}
FEED_SUFFIXES = {".xml", ".rss", ".atom"}
RECORD_SUFFIXES = {".jsonl", ".csv"}
TEXT_SUFFIXES = {".txt"}
ALL_SUFFIXES = PAGE_SUFFIXES | FEED_SUFFIXES | RECORD_SUFFIXES | TEXT_SUFFIXES


@dataclass
class IngestReport:
    new: int = 0
    updated: int = 0
    duplicates: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)

    def count(self, outcome: UpsertOutcome) -> None:
        if outcome is UpsertOutcome.NEW:
            self.new += 1
        elif outcome is UpsertOutcome.UPDATED:
            self.updated += 1
        else:
            self.duplicates += 1

    def merge(self, other: IngestReport) -> None:
        self.new += other.new
        self.updated += other.updated
        self.duplicates += other.duplicates
        self.failed.extend(other.failed)


@dataclass(frozen=True, slots=True)
class Item:
    """One article from a file, or the reason it could not be read."""

    label: str
    article: Extracted | None = None
    error: str | None = None
    source: str | None = None  # the outlet a dump record names, if any


def expand(paths: Iterable[Path]) -> list[Path]:
    """Files to ingest: the given files, and the known kinds of file inside given folders."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in ALL_SUFFIXES))
        else:
            out.append(path)
    return out


def items_in(path: Path) -> Iterator[Item]:
    """Read one file into articles. Never raises for bad input: errors become Items."""
    label = str(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        yield Item(label, error="no such file (give a file or folder that exists)")
        return
    try:
        if suffix in RECORD_SUFFIXES:
            yield from _records(path)
            return
        try:
            data = path.read_bytes()
        except OSError as exc:
            yield Item(label, error=f"cannot read: {exc.strerror or exc}")
            return
        if suffix in FEED_SUFFIXES:
            yield from _feed(path, data)
        else:
            kind = "html" if suffix in PAGE_SUFFIXES else ("text" if suffix in TEXT_SUFFIXES else None)
            yield Item(label, article=extract(data, kind=kind))
    except DigestError as exc:
        yield Item(label, error=str(exc))


def _records(path: Path) -> Iterator[Item]:
    from digest.ingest.dumps import read_dump

    for record in read_dump(path):
        label = f"{path}:{record.line}"
        if record.error is not None:
            yield Item(label, error=record.error.removeprefix(f"{label}: "))
        else:
            yield Item(label, article=record.article, source=record.source)


def _feed(path: Path, data: bytes) -> Iterator[Item]:
    from digest.ingest.feeds import entry_article, parse_feed

    feed = parse_feed(data, url=path.resolve().as_uri())
    for entry in feed.entries:
        yield Item(f"{path}: {entry.title[:60]}", article=entry_article(entry))


def to_article_data(article: Extracted, *, source_name: str, source_id: int | None = None,
                    section: str | None = None) -> ArticleData:
    from digest.ingest.canonical import article_key, canonical_url
    from digest.ingest.neardup import signature

    url = canonical_url(article.url) if article.url else None
    return ArticleData(
        key=article_key(url=url, title=article.title, body=article.body),
        title=article.title,
        body=article.body,
        source_name=source_name,
        source_id=source_id,
        url=url,
        summary=article.summary,
        credit=article.credit,
        author=article.author,
        section=section,
        language=article.language,
        image_url=article.image_url,
        image_alt=article.image_alt,
        published_at=article.published,
        signature=signature(f"{article.title}\n{article.body[:2000]}"),
    )


def store_items(
    engine: Engine,
    items: Iterable[Item],
    *,
    source_for: Callable[[Item], str],
    now: datetime,
    on_item: Callable[[Item], None] | None = None,
) -> IngestReport:
    """Store each article in its own transaction; collect failures instead of stopping."""
    report = IngestReport()
    for item in items:
        if item.article is None:
            report.failed.append((item.label, item.error or "unreadable"))
        else:
            try:
                data = to_article_data(item.article, source_name=source_for(item))
                with session_scope(engine) as session:
                    _, outcome = upsert_article(session, data, now=now)
                report.count(outcome)
            except DigestError as exc:
                report.failed.append((item.label, str(exc)))
        if on_item is not None:
            on_item(item)
    return report


def default_source(item: Item) -> str:
    """The source a record names, else the article URL's host, else "local files"."""
    from urllib.parse import urlsplit

    if item.source:
        return item.source
    host = urlsplit(item.article.url if item.article and item.article.url else "").hostname
    return host.removeprefix("www.") if host else "local files"
