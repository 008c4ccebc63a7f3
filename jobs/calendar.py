"""The newsletter's calendar: triggers and week arithmetic in its own time zone. Pure functions.

A week is an ISO week of the newsletter's local calendar, keyed ``"2017-W11"`` (the issue's unique
key). Its build time is the first ``build_at`` moment in that week; its send time is the first
``send_at`` moment at or after the build time, so "build sun 20:00, send mon 07:00" works too.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from digest.errors import ConfigError
from digest.settings import Settings

# Interval jobs are anchored at a fixed local midnight, so that the scheduler and `digest jobs
# list` (another process) agree on the next run: hourly ingest fires on the hour, not 60 minutes
# after whenever the scheduler happened to start.
_INTERVAL_ANCHOR = date(2000, 1, 3)  # a Monday

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKLY = re.compile(r"^\s*(?P<days>[a-z*,\-]+)\s+(?P<hour>\d{1,2}):(?P<minute>\d{2})\s*$")
_WEEK_KEY = re.compile(r"^(?P<year>\d{4})-W(?P<week>\d{2})$")


def weekly(spec: str, *, settings: Settings, field: str) -> CronTrigger:
    """A cron trigger in the newsletter's zone from ``"fri 06:00"`` (days: mon..sun, lists
    ``mon,thu``, ranges ``mon-fri``, ``daily`` or ``*``).

    Raises ConfigError naming the setting when the text is not of that form.
    """
    match = _WEEKLY.match(spec.lower())
    hint = f'setting {field.upper()}={spec!r}: use "DAY HH:MM" in local time, e.g. "fri 08:00"'
    if match is None:
        raise ConfigError(hint)
    days = match["days"]
    if days in {"daily", "*"}:
        days = "*"
    elif any(part not in _DAYS for part in re.split(r"[,\-]", days)):
        raise ConfigError(hint)
    hour, minute = int(match["hour"]), int(match["minute"])
    if hour > 23 or minute > 59:
        raise ConfigError(hint)
    return CronTrigger(day_of_week=days, hour=hour, minute=minute, timezone=settings.zone)


def every(minutes: int, *, settings: Settings) -> IntervalTrigger:
    """An interval trigger in the newsletter's zone, anchored at a fixed local midnight."""
    anchor = datetime.combine(_INTERVAL_ANCHOR, time(), tzinfo=settings.zone)
    return IntervalTrigger(minutes=minutes, start_date=anchor, timezone=settings.zone)


def build_trigger(settings: Settings) -> CronTrigger:
    return weekly(settings.build_at, settings=settings, field="build_at")


def send_trigger(settings: Settings) -> CronTrigger:
    return weekly(settings.send_at, settings=settings, field="send_at")


def describe(trigger: BaseTrigger) -> str:
    """A short human text for a trigger: ``fri 08:00``, ``daily 03:00`` or ``every 60 min``."""
    if isinstance(trigger, IntervalTrigger):
        return f"every {int(trigger.interval_length // 60)} min"
    if isinstance(trigger, CronTrigger):
        fields = {f.name: str(f) for f in trigger.fields}
        days = "daily" if fields["day_of_week"] == "*" else fields["day_of_week"]
        return f"{days} {int(fields['hour']):02d}:{int(fields['minute']):02d}"
    return str(trigger)


def next_fire(trigger: BaseTrigger, *, after: datetime) -> datetime:
    """The first fire time at or after ``after`` (aware)."""
    when: datetime | None = trigger.get_next_fire_time(None, after)
    if when is None:  # our triggers have no end date; a trigger that ends is a bug
        raise AssertionError(f"trigger {trigger} has no fire time after {after}")
    return when


def missed_within(trigger: BaseTrigger, *, now: datetime, grace: timedelta) -> datetime | None:
    """The latest fire time in ``[now - grace, now]``, if any: a run the scheduler missed
    recently enough to make up for on start-up."""
    missed = None
    when = trigger.get_next_fire_time(None, now - grace)
    while when is not None and when <= now:
        missed = when
        when = trigger.get_next_fire_time(when, now + timedelta(microseconds=1))
    return missed


# --- weeks ----------------------------------------------------------------------------------


def last_fire(trigger: BaseTrigger, *, at_or_before: datetime) -> datetime:
    """The latest fire time at or before ``at_or_before`` (our triggers fire at least weekly)."""
    last: datetime | None = None
    when: datetime | None = trigger.get_next_fire_time(None, at_or_before - timedelta(days=8))
    while when is not None and when <= at_or_before:
        last = when
        when = trigger.get_next_fire_time(when, at_or_before + timedelta(microseconds=1))
    if last is None:
        raise AssertionError(f"trigger {trigger} does not fire weekly")
    return last


def week_key(moment: datetime, *, settings: Settings) -> str:
    """The ISO week key (``"2017-W11"``) of an aware moment, on the newsletter's local calendar."""
    year, week, _ = moment.astimezone(settings.zone).isocalendar()
    return f"{year}-W{week:02d}"


def week_start(week: str, *, settings: Settings) -> datetime:
    """Local Monday 00:00 of a week key; raises ConfigError for a malformed key."""
    match = _WEEK_KEY.match(week)
    if match is None:
        raise ConfigError(f"week {week!r} is not an ISO week key like 2017-W11")
    monday = date.fromisocalendar(int(match["year"]), int(match["week"]), 1)
    return datetime.combine(monday, time(), tzinfo=settings.zone)


def send_time(week: str, *, settings: Settings) -> datetime:
    """When the week's issue goes out: the first SEND_AT moment of that local week.

    An issue's week is the week of its send time (as ``digest issue build`` keys it)."""
    return next_fire(send_trigger(settings), after=week_start(week, settings=settings))


def build_time(week: str, *, settings: Settings) -> datetime:
    """When the week's issue is built: the last BUILD_AT moment at or before its send time
    (which may fall in the week before, e.g. build sun 20:00 for a mon 07:00 send)."""
    return last_fire(build_trigger(settings), at_or_before=send_time(week, settings=settings))


def send_deadline(scheduled_for: datetime, *, settings: Settings) -> datetime:
    """The last moment a send may start; later, the issue is marked missed instead."""
    return scheduled_for + timedelta(hours=settings.send_deadline_hours)


def week_to_build(now: datetime, *, settings: Settings) -> tuple[str, bool] | None:
    """Which week's issue the build job should have at ``now``, if any, and whether it is late.

    The coming week once its build time has passed (on time); else the week whose send time
    has passed but whose send deadline has not (late: build and send at once); else none.
    """
    coming = next_fire(send_trigger(settings), after=now)
    week = week_key(coming, settings=settings)
    if now >= build_time(week, settings=settings):
        return week, False
    previous = last_fire(send_trigger(settings), at_or_before=now)
    if now <= send_deadline(previous, settings=settings):
        return week_key(previous, settings=settings), True
    return None


def parse_when(text: str, *, now: datetime, settings: Settings) -> datetime:
    """A moment given by a person: ``now``, ISO 8601 (``2026-11-27T08:00``; without an offset
    it is local time), or ``"fri 08:00"`` (the next such local moment).

    Raises InputError naming the text and the accepted forms.
    """
    from digest.errors import InputError

    value = text.strip()
    if value.lower() == "now":
        return now
    if _WEEKLY.match(value.lower()):
        return next_fire(weekly(value, settings=settings, field="--at"), after=now)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(
            f"--at {text!r}: use now, an ISO time like 2026-11-27T08:00, or a day and time "
            'like "fri 08:00" (local time)'
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=settings.zone)
    return moment
