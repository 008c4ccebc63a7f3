"""Ingest runs: files, or every due source, into the store.

Files (``store_items``): each article in its own transaction; a bad file or record is reported
with one line and the run goes on. Sources (``ingest_sources``): each source is polled, then
all its articles and its health are written in one transaction, so a source that fails midway
leaves no partial articles and records its error on its row. Both link near-duplicates: an
article that repeats one first seen in the last two weeks gets ``duplicate_of_id``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from digest.db import session_scope
from digest.errors import DigestError
from digest.ingest.boilerplate import BoilerplateMemory, forget_learned
from digest.ingest.extract import Extracted
from digest.ingest.fetch import Fetcher
from digest.ingest.files import ALL_SUFFIXES, Item, expand, items_in
from digest.ingest.neardup import NearDupIndex, lead_text, signature
from digest.models import Article, Source
from digest.settings import Settings
from digest.store import articles as article_store
from digest.store import sources as source_store
from digest.store.articles import ArticleData, UpsertOutcome, upsert_article
from digest.store.boilerplate import load_memory, save_memory

__all__ = [
    "ALL_SUFFIXES", "IngestReport", "Item", "default_source", "expand", "ingest_sources",
    "items_in", "store_items", "to_article_data",
]  # fmt: skip

# How far back a new article looks for the earlier telling of the same story.
NEAR_DUP_WINDOW = timedelta(days=14)


@dataclass
class IngestReport:
    new: int = 0
    updated: int = 0
    duplicates: int = 0  # seen before, unchanged
    linked: int = 0  # new or updated articles linked to an earlier near-duplicate
    sources: int = 0  # sources polled
    not_modified: int = 0  # feeds that answered 304
    failed: list[tuple[str, str]] = field(default_factory=list)
    left: int = 0  # sources not polled because a stop was requested (they stay due)

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
        self.linked += other.linked
        self.sources += other.sources
        self.not_modified += other.not_modified
        self.failed.extend(other.failed)

    def summary(self) -> str:
        """One line for logs and job results."""
        text = (
            f"{self.sources} source(s) polled ({self.not_modified} unchanged), {self.new} new, "
            f"{self.updated} updated, {self.duplicates} duplicate(s), {self.linked} linked"
        )
        if self.failed:
            text += f"; {len(self.failed)} failed: " + "; ".join(
                f"{label}: {reason}" for label, reason in self.failed[:5]
            )
        if self.left:
            text += f"; stopped on request with {self.left} source(s) left for the next run"
        return text


def to_article_data(
    article: Extracted, *, source_name: str, source_id: int | None = None,
    section: str | None = None,
) -> ArticleData:  # fmt: skip
    """What the store keeps of a cleaned article: its key, text, metadata and signature."""
    from digest.ingest.canonical import article_key, canonical_url

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
        signature=signature(lead_text(title=article.title, body=article.body)),
    )


def _recent_index(engine: Engine, *, now: datetime) -> NearDupIndex:
    index = NearDupIndex()
    with session_scope(engine) as session:
        for article_id, sig in article_store.signatures_since(session, since=now - NEAR_DUP_WINDOW):
            index.add(article_id, sig)
    return index


class LearnedBoilerplate:
    """Each source's learned boilerplate for one run: loaded on first use, saved with every
    article in the article's own transaction."""

    def __init__(self) -> None:
        self._memories: dict[str, BoilerplateMemory] = {}

    def clean(self, session: Session, article: Extracted, *, source_name: str) -> Extracted:
        memory = self._memories.get(source_name)
        if memory is None:
            memory = self._memories[source_name] = load_memory(session, source_name=source_name)
        try:
            return forget_learned(article, memory)
        finally:
            save_memory(session, memory)


def _store(
    session: Session, data: ArticleData, *, index: NearDupIndex, now: datetime
) -> tuple[Article, UpsertOutcome, bool]:
    """Upsert one article and link it to the earlier article it repeats, if any. Returns the
    row, the outcome, and whether it was linked."""
    row, outcome = upsert_article(session, data, now=now)
    linked = False
    if outcome is not UpsertOutcome.UNCHANGED and data.signature and row.id is not None:
        earlier = index.find(data.signature, exclude=row.id)
        earlier_id = earlier if isinstance(earlier, int) and earlier < row.id else None
        linked = earlier_id is not None
        if row.duplicate_of_id != earlier_id:
            row.duplicate_of_id = earlier_id
            session.add(row)
    return row, outcome, linked


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
    index = _recent_index(engine, now=now)
    learned = LearnedBoilerplate()
    for item in items:
        if item.article is None:
            report.failed.append((item.label, item.error or "unreadable"))
        else:
            try:
                name = source_for(item)
                with session_scope(engine) as session:
                    article = learned.clean(session, item.article, source_name=name)
                    data = to_article_data(article, source_name=name)
                    row, outcome, linked = _store(session, data, index=index, now=now)
                    row_id = row.id
                report.count(outcome)
                report.linked += linked
                if row_id is not None and data.signature:
                    index.add(row_id, data.signature)  # only once committed
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


def accepted_languages(settings: Settings) -> list[str]:
    """INGEST_LANGUAGES, else the language of LOCALE ("en_GB" → "en")."""
    return settings.ingest_languages or [settings.locale.split("_")[0].lower()]


def ingest_sources(
    engine: Engine,
    *,
    settings: Settings,
    now: datetime,
    names: Sequence[str] | None = None,
    fetcher: Fetcher | None = None,
    on_source: Callable[[Source, IngestReport], None] | None = None,
    stop: threading.Event | None = None,
) -> IngestReport:
    """Poll the named sources (all that are due when ``names`` is None) and store their
    articles, one transaction per source. Raises NotFound for an unknown name; every other
    failure is recorded on the source and in the report. Once ``stop`` is set no further
    source is started; the ones left stay due (``report.left``)."""
    from digest.store.schedule import sources_due

    with session_scope(engine) as session:
        if names is None:
            chosen = sources_due(session, now=now, default_minutes=settings.ingest_every_minutes)
        else:
            chosen = [source_store.get_source(session, name) for name in names]
        session.expunge_all()
    report = IngestReport()
    index = _recent_index(engine, now=now)
    own_fetcher = fetcher is None
    fetch = fetcher or Fetcher.from_settings(settings)
    try:
        for position, source in enumerate(chosen):
            if stop is not None and stop.is_set():
                report.left = len(chosen) - position
                break
            part = _ingest_source(engine, source, fetcher=fetch, index=index, now=now,
                                  languages=accepted_languages(settings))  # fmt: skip
            report.merge(part)
            if on_source is not None:
                on_source(source, part)
    finally:
        if own_fetcher:
            fetch.close()
    return report


def _ingest_source(
    engine: Engine,
    source: Source,
    *,
    fetcher: Fetcher,
    index: NearDupIndex,
    now: datetime,
    languages: Sequence[str],
) -> IngestReport:
    from digest.ingest.poll import poll

    report = IngestReport(sources=1)
    assert source.id is not None
    try:
        polled = poll(source, fetcher=fetcher, languages=languages)
        pending: list[tuple[int, list[int]]] = []
        learned = LearnedBoilerplate()
        with session_scope(engine) as session:
            for item in polled.items:
                if item.article is None:
                    report.failed.append((item.label, item.error or "unreadable"))
                    continue
                try:
                    article = learned.clean(session, item.article, source_name=source.name)
                except DigestError as exc:
                    report.failed.append((item.label, str(exc)))
                    continue
                data = to_article_data(
                    article, source_name=source.name, source_id=source.id,
                    section=source.section,
                )  # fmt: skip
                row, outcome, linked = _store(session, data, index=index, now=now)
                report.count(outcome)
                report.linked += linked
                if row.id is not None and data.signature:
                    pending.append((row.id, data.signature))
            row_source = session.get(Source, source.id)
            if row_source is not None:
                source_store.record_fetch(
                    session, row_source, now=now, error=None,
                    etag=polled.etag, last_modified=polled.last_modified,
                )  # fmt: skip
        for article_id, sig in pending:  # the transaction committed: the rows exist
            index.add(article_id, sig)
        report.not_modified += polled.not_modified
    except (DigestError, SQLAlchemyError) as exc:
        reason = _one_line(exc)
        failed = IngestReport(sources=1, failed=[(source.name, reason)])
        with session_scope(engine) as session:
            row_source = session.get(Source, source.id)
            if row_source is not None:
                source_store.record_fetch(session, row_source, now=now, error=reason)
        return failed
    return report


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, SQLAlchemyError):
        # A database refusal is reported, not raised: the other sources still run.
        return f"could not store: {str(exc.orig if hasattr(exc, 'orig') else exc).splitlines()[0]}"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
