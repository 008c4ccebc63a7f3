"""Poll one source: fetch or read it and turn it into articles, without touching the store.

A feed or a page by URL is fetched conditionally (ETag / Last-Modified: an unchanged one is one
304 and no items); teaser entries of a feed with ``fetch_full`` are completed from their linked
page, and a page is cleaned. Anything kept as files (dumps, saved pages, feed files) is read
from disk. Source-level failures raise ``DigestError``; a single bad entry becomes an ``Item``
with an error, and the rest of the source goes on.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from digest.errors import DigestError, SourceError
from digest.ingest.extract import Extracted
from digest.ingest.feeds import FeedEntry, entry_article, parse_feed
from digest.ingest.fetch import Fetched, Fetcher
from digest.ingest.files import Item, expand, items_in
from digest.ingest.pages import clean_page
from digest.models import Source, SourceKind

FEED_ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.8"


@dataclass
class Polled:
    """What one poll produced: items, and the validators to keep for the next conditional GET."""

    items: list[Item] = field(default_factory=list)
    not_modified: bool = False
    etag: str | None = None
    last_modified: str | None = None


def is_url(location: str) -> bool:
    return urlsplit(location).scheme in {"http", "https"}


def poll(
    source: Source,
    *,
    fetcher: Fetcher,
    languages: Collection[str] = (),
) -> Polled:
    """Fetch or read ``source``. Raises DigestError (one line) when the source as a whole
    cannot be read: unreachable, not a feed, a page without an article, a missing path."""
    location = source.location
    if is_url(location):
        page = source.kind == SourceKind.PAGE  # a StrEnum: equal to the stored text too
        got = fetcher.get(
            location, etag=source.etag, last_modified=source.last_modified,
            accept=None if page else FEED_ACCEPT,
        )  # fmt: skip
        if got.not_modified:  # an unchanged feed or page costs one 304
            return Polled(not_modified=True, etag=got.etag or source.etag,
                          last_modified=got.last_modified or source.last_modified)  # fmt: skip
        if page:
            article = clean_page(
                got.content, url=got.url, charset=got.charset, max_bytes=fetcher.max_bytes,
                languages=languages,
            )  # fmt: skip
            items = [Item(f"{source.name}: {article.title[:60]}", article=article)]
        else:
            items = list(_feed_items(source, got, fetcher=fetcher, languages=languages))
        return Polled(items=items, etag=got.etag, last_modified=got.last_modified)
    path = Path(location).expanduser()
    if not path.exists():
        raise SourceError(f"{location} does not exist (fix the source's location)")
    return Polled(items=[item for file in expand([path]) for item in items_in(file)])


def _feed_items(
    source: Source, got: Fetched, *, fetcher: Fetcher, languages: Collection[str]
) -> Iterator[Item]:
    feed = parse_feed(got.content, url=source.location, content_type=got.content_type)
    for entry in feed.entries:
        label = f"{source.name}: {(entry.title or entry.url or '?')[:60]}"
        try:
            page = _full_page(entry, fetcher=fetcher, languages=languages) if (
                source.fetch_full and entry.is_teaser and entry.url
            ) else None  # fmt: skip
            yield Item(label, article=entry_article(entry, page=page))
        except DigestError as exc:
            yield Item(label, error=str(exc))


def _full_page(
    entry: FeedEntry, *, fetcher: Fetcher, languages: Collection[str]
) -> Extracted | None:
    assert entry.url is not None
    got = fetcher.get(entry.url)
    return clean_page(
        got.content, url=got.url, charset=got.charset, max_bytes=fetcher.max_bytes,
        languages=languages,
    )  # fmt: skip
