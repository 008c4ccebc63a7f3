"""Articles: upsert by identity key, and the week's candidates."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlmodel import Session, col, select

from digest.models import Article


class UpsertOutcome(StrEnum):
    NEW = "new"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class ArticleData:
    """What ingestion hands to the store: a cleaned article plus where it came from."""

    key: str
    title: str
    body: str
    source_name: str
    source_id: int | None = None
    url: str | None = None
    summary: str | None = None
    credit: str | None = None
    author: str | None = None
    section: str | None = None
    language: str | None = None
    image_url: str | None = None
    image_alt: str | None = None
    published_at: datetime | None = None
    signature: list[int] | None = None

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(f"{self.title}\n{self.body}".encode()).hexdigest()


_COPIED = (
    "title", "body", "source_name", "source_id", "url", "summary", "credit", "author",
    "section", "language", "image_url", "image_alt", "published_at", "signature",
)  # fmt: skip


def upsert_article(
    session: Session, data: ArticleData, *, now: datetime
) -> tuple[Article, UpsertOutcome]:
    """Insert the article, or update the row with the same key when its content changed."""
    existing = session.exec(select(Article).where(Article.key == data.key)).first()
    digest_ = data.content_hash
    if existing is not None and existing.content_hash == digest_:
        return existing, UpsertOutcome.UNCHANGED
    row = existing or Article(key=data.key, title="", body="", content_hash="", first_seen_at=now)
    for name in _COPIED:
        setattr(row, name, getattr(data, name))
    row.content_hash = digest_
    row.word_count = len(data.body.split())
    row.updated_at = now
    session.add(row)
    session.flush()
    return row, (UpsertOutcome.UPDATED if existing is not None else UpsertOutcome.NEW)


def published_between(session: Session, *, start: datetime, end: datetime) -> list[Article]:
    """Articles published in [start, end), plus undated ones first seen in it (the week's
    candidates). Ordered by id so selection sees the same input every time."""
    dated = (col(Article.published_at) >= start) & (col(Article.published_at) < end)
    undated = (
        col(Article.published_at).is_(None)
        & (col(Article.first_seen_at) >= start)
        & (col(Article.first_seen_at) < end)
    )
    return list(session.exec(select(Article).where(dated | undated).order_by(col(Article.id))))


def count_articles(session: Session) -> int:
    from sqlalchemy import func

    return int(session.exec(select(func.count()).select_from(Article)).one())


def signatures_since(session: Session, *, since: datetime) -> list[tuple[int, list[int]]]:
    """(id, near-duplicate signature) of articles first seen since ``since``, oldest first:
    what a new article is compared with to find the earlier telling it repeats."""
    rows = session.exec(
        select(Article.id, Article.signature)
        .where(col(Article.first_seen_at) >= since, col(Article.signature).is_not(None))
        .order_by(col(Article.id))
    ).all()
    return [(int(i), list(sig)) for i, sig in rows if i is not None and sig]
