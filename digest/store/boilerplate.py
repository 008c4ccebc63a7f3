"""Learned boilerplate: load and save a source's per-line article counts (``seen_blocks``)."""

from __future__ import annotations

from sqlmodel import Session, col, select

from digest.ingest.boilerplate import DEFAULT_THRESHOLD, BoilerplateMemory
from digest.models import SeenBlock, utcnow

_CHUNK = 500  # keys per IN (...) query, well under every backend's parameter limit


def load_memory(
    session: Session, *, source_name: str, threshold: int = DEFAULT_THRESHOLD
) -> BoilerplateMemory:
    """Return the source's memory with every count stored for it (empty for a new source)."""
    rows = session.exec(select(SeenBlock).where(SeenBlock.source_name == source_name)).all()
    return BoilerplateMemory(
        source_name=source_name,
        threshold=threshold,
        counts={row.block_hash: row.articles for row in rows},
    )


def save_memory(session: Session, memory: BoilerplateMemory) -> int:
    """Write the counts that changed since loading; return how many rows were written.

    Counts are written as absolute values, so saving the same memory twice is harmless. The
    caller's session scope commits.
    """
    keys = sorted(memory.changed)
    if not keys:
        return 0
    existing: dict[str, SeenBlock] = {}
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        query = select(SeenBlock).where(
            SeenBlock.source_name == memory.source_name, col(SeenBlock.block_hash).in_(chunk)
        )
        existing.update((row.block_hash, row) for row in session.exec(query).all())
    now = utcnow()
    for key in keys:
        row = existing.get(key) or SeenBlock(source_name=memory.source_name, block_hash=key)
        row.articles = memory.counts[key]
        row.last_seen_at = now
        session.add(row)
    session.flush()
    memory.changed.clear()
    return len(keys)
