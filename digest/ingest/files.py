"""Files into articles: text dumps, saved pages, feed files, and JSONL/CSV dumps of many.

Never raises for bad input: a file or record that yields no article becomes an ``Item`` with
the reason, so a run reports it in one line and goes on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from digest.errors import DigestError
from digest.ingest.extract import Extracted, extract

PAGE_SUFFIXES = {".html", ".htm"}
FEED_SUFFIXES = {".xml", ".rss", ".atom"}
RECORD_SUFFIXES = {".jsonl", ".csv"}
TEXT_SUFFIXES = {".txt"}
ALL_SUFFIXES = PAGE_SUFFIXES | FEED_SUFFIXES | RECORD_SUFFIXES | TEXT_SUFFIXES


@dataclass(frozen=True, slots=True)
class Item:
    """One article from a file or source, or the reason it could not be read."""

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
            kind = (
                "html" if suffix in PAGE_SUFFIXES else ("text" if suffix in TEXT_SUFFIXES else None)
            )
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
        label = f"{path}: {entry.title[:60]}"
        try:
            yield Item(label, article=entry_article(entry))
        except DigestError as exc:
            yield Item(label, error=str(exc))
