"""Sources: where articles come from, and how well fetching them has been going."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from digest.errors import InputError, NotFound
from digest.models import Article, Source, SourceKind


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """A source with the numbers ``digest sources list`` shows."""

    source: Source
    articles_this_week: int


def add_source(
    session: Session,
    *,
    name: str,
    kind: SourceKind,
    location: str,
    section: str | None = None,
    weight: float = 1.0,
    interval_minutes: int | None = None,
    fetch_full: bool = False,
    now: datetime,
) -> Source:
    """Create a source. Raises InputError when the name is taken."""
    if session.exec(select(Source).where(Source.name == name)).first() is not None:
        raise InputError(f"a source named {name!r} exists already (remove it or pick another name)")
    source = Source(
        name=name,
        kind=kind,
        location=location,
        section=section,
        weight=weight,
        interval_minutes=interval_minutes,
        fetch_full=fetch_full,
        created_at=now,
    )
    session.add(source)
    session.flush()
    return source


def get_source(session: Session, name: str) -> Source:
    """The source called ``name``; raises NotFound naming it."""
    source = session.exec(select(Source).where(Source.name == name)).first()
    if source is None:
        raise NotFound(f"no source named {name!r} (see `digest sources list`)")
    return source


def all_sources(session: Session) -> list[Source]:
    return list(session.exec(select(Source).order_by(col(Source.name))))


def source_health(session: Session, *, now: datetime) -> list[SourceHealth]:
    """Every source by name, with its articles first seen in the last seven days."""
    since = now - timedelta(days=7)
    counts = dict(
        session.exec(
            select(Article.source_id, func.count())
            .where(col(Article.first_seen_at) >= since, col(Article.source_id).is_not(None))
            .group_by(col(Article.source_id))
        ).all()
    )
    return [SourceHealth(s, int(counts.get(s.id, 0))) for s in all_sources(session)]


def remove_source(session: Session, name: str) -> int:
    """Delete the source; its articles stay (they keep the source's name but lose the link).
    Returns how many articles were unlinked. Raises NotFound."""
    source = get_source(session, name)
    unlinked = session.execute(
        sa.update(Article).where(col(Article.source_id) == source.id).values(source_id=None)
    )
    session.delete(source)
    session.flush()
    return int(getattr(unlinked, "rowcount", 0) or 0)


def record_fetch(
    session: Session,
    source: Source,
    *,
    now: datetime,
    error: str | None,
    etag: str | None = None,
    last_modified: str | None = None,
) -> None:
    """Note one fetch of ``source``: success resets the failure count and keeps the validators
    for the next conditional GET; an error is kept (one line) and counted."""
    source.last_checked_at = now
    if error is None:
        source.last_success_at = now
        source.last_error = None
        source.consecutive_failures = 0
        if etag is not None or last_modified is not None:
            source.etag = etag[:500] if etag else None
            source.last_modified = last_modified[:200] if last_modified else None
    else:
        source.last_error = error.splitlines()[0][:2000] if error else "failed"
        source.last_error_at = now
        source.consecutive_failures = (source.consecutive_failures or 0) + 1
    session.add(source)
    session.flush()
