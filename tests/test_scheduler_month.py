"""A simulated month across the autumn clock change, driven through the real triggers with a
controlled clock: one issue per week, built and sent at the configured local times, once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from conftest import SmtpSink
from scheduler_support import (  # noqa: F401 (the autouse fixture)
    READERS,
    Clock,
    add_subscribers,
    add_week_of_articles,
    at,
    context,
    dispose_pipeline_engines,
    issues,
    received,
)
from sqlalchemy.engine import Engine

from digest.demo import demo_settings
from digest.models import IssueStatus
from digest.settings import Settings
from jobs import tasks
from jobs.calendar import build_trigger, send_trigger, week_key


def test_a_month_across_the_clock_change_sends_one_issue_a_week_at_local_times(
    settings: Settings, engine: Engine, smtp_sink: SmtpSink
) -> None:
    s = settings.model_copy(
        update={"smtp_port": smtp_sink.port, "min_stories": 3, "smtp_connections": 2}
    )
    s = demo_settings(s)  # signed: the pre-send check refuses unsigned mail
    start = datetime(2026, 9, 28, tzinfo=UTC)  # Monday of ISO week 40
    end = datetime(2026, 11, 2, tzinfo=UTC)  # after Friday 30 October (GMT again since the 25th)
    clock = Clock(start)
    ctx, notifier = context(s, clock=clock, engine=engine)
    with at(clock, start):
        add_subscribers(s, READERS, now=start)

    # Every fire of the real build and send triggers in the month, each fired twice (a job that
    # fires again must change nothing), plus the five-minute sweep right after each send.
    events: list[tuple[datetime, str]] = []
    for job, trigger in (("build", build_trigger(s)), ("send", send_trigger(s))):
        when = trigger.get_next_fire_time(None, start)
        while when < end:
            events += [(when, job), (when + timedelta(seconds=30), job)]
            when = trigger.get_next_fire_time(when, when + timedelta(seconds=1))
    events += [(w + timedelta(minutes=5), "send") for w, j in list(events) if j == "send"]
    weeks = sorted({week_key(w, settings=s) for w, _ in events})
    for week in weeks:  # each week's news arrives early in the week
        with at(clock, start):
            add_week_of_articles(s, week=week, now=start)

    outcomes = []
    for when, job in sorted(events):
        with at(clock, when):
            outcomes.append((when, job, getattr(tasks, job)(ctx)))

    built = issues(ctx.engine)
    assert [i.week for i in built] == ["2026-W40", "2026-W41", "2026-W42", "2026-W43", "2026-W44"]
    assert all(i.status == IssueStatus.SENT for i in built), outcomes
    # The second firing of each job, and the sweep after each send, found nothing to do.
    repeats = [text for when, _job, text in outcomes if when.second == 30 or when.minute == 5]
    assert all(("already" in t) or t == "nothing due to send" for t in repeats), repeats
    local = [
        (i.built_at.astimezone(s.zone), i.send_started_at.astimezone(s.zone))  # type: ignore[union-attr]
        for i in built
    ]
    assert {(b.strftime("%a %H:%M"), t.strftime("%a %H:%M")) for b, t in local} == {
        ("Fri 06:00", "Fri 08:00")
    }
    # The same local 08:00 is 07:00 UTC in British Summer Time and 08:00 UTC after it ends.
    utc_sends = [i.send_started_at.astimezone(UTC).hour for i in built]  # type: ignore[union-attr]
    assert utc_sends == [7, 7, 7, 7, 8]
    # Every reader got every issue exactly once.
    counts = received(smtp_sink.messages)
    assert len(counts) == len(READERS) * len(built)
    assert set(counts.values()) == {1}
    assert notifier.told == []
