"""The newsletter's week: a window of local days, returned as UTC instants.

The window is counted in the newsletter's own time zone, so "the seven days before Friday 08:00"
means seven calendar days of wall-clock time even when a daylight-saving change falls inside
(the window is then 167 or 169 hours long, not 168).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from digest.select import Candidate


def week_window(*, send_at: datetime, zone: ZoneInfo, days: int = 7) -> tuple[datetime, datetime]:
    """``[start, end)`` in UTC: the ``days`` local days that end at ``send_at``.

    ``send_at`` must be timezone-aware; ValueError otherwise (a naive time is a bug upstream).
    """
    if send_at.tzinfo is None:
        raise ValueError("week_window needs an aware send_at")
    if days < 1:
        raise ValueError("week_window needs days >= 1")
    local_end = send_at.astimezone(zone)
    # Step back in wall-clock time (naive arithmetic), then attach the zone again: that keeps
    # 08:00 at 08:00 across a DST change. fold=0 picks the first of an ambiguous local time.
    naive_start = local_end.replace(tzinfo=None) - timedelta(days=days)
    local_start = _resolve_local(naive_start, zone)
    return local_start.astimezone(UTC), local_end.astimezone(UTC)


def _resolve_local(naive: datetime, zone: ZoneInfo) -> datetime:
    """Attach ``zone``; a time inside a spring-forward gap moves to the first instant after it."""
    aware = naive.replace(tzinfo=zone, fold=0)
    round_trip = aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    if round_trip != naive:  # nonexistent wall time (the clocks skipped it)
        return aware.astimezone(UTC).astimezone(zone)
    return aware


def effective_time(candidate: Candidate) -> datetime:
    """When the article counts as published: its date, else when we first saw it."""
    return candidate.published if candidate.published is not None else candidate.first_seen


def within(candidates: Iterable[Candidate], *, start: datetime, end: datetime) -> list[Candidate]:
    """The candidates whose effective time falls in ``[start, end)``, in their given order."""
    return [c for c in candidates if start <= effective_time(c) < end]


def iso_week_key(moment: datetime, *, zone: ZoneInfo) -> str:
    """The ISO week of ``moment`` in ``zone``, as ``YYYY-Www`` (the issue's week key)."""
    iso = moment.astimezone(zone).isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


def undated_ids(candidates: Sequence[Candidate]) -> list[int]:
    """Ids of the candidates without a publication date (they are flagged in the issue)."""
    return [c.article_id for c in candidates if c.published is None]
