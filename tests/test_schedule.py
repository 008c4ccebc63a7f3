"""The schedule's pure parts: triggers in the newsletter's zone across DST, week arithmetic,
start-up catch-up, and `digest jobs list`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from digest.errors import ConfigError, InputError
from digest.settings import Settings
from jobs.calendar import (
    build_time,
    missed_within,
    parse_when,
    send_time,
    week_key,
    week_to_build,
    weekly,
)
from jobs.schedule import JOBS, job_named, next_runs

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {"data_dir": tmp_path / "data", "timezone": "Europe/London"}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def test_the_one_list_names_every_job_once_with_help() -> None:
    ids = [job.id for job in JOBS]
    assert ids == [
        "ingest",
        "build",
        "send",
        "send-scheduled",
        "bounces",
        "expire-pending",
        "prune",
    ]
    assert all(job.help.strip() for job in JOBS)
    assert job_named("send").id == "send"
    with pytest.raises(ConfigError, match="no job named 'sned'; jobs are: ingest, build"):
        job_named("sned")


def test_the_send_stays_at_eight_local_across_the_spring_clock_change(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    trigger = weekly("fri 08:00", settings=settings, field="send_at")
    fired, when = [], datetime(2017, 3, 13, tzinfo=UTC)
    for _ in range(4):
        when = trigger.get_next_fire_time(None, when + timedelta(seconds=1))
        fired.append(when)
    assert [f.astimezone(LONDON).strftime("%a %d %H:%M") for f in fired] == [
        "Fri 17 08:00", "Fri 24 08:00", "Fri 31 08:00", "Fri 07 08:00",
    ]  # fmt: skip
    # In UTC the send moves an hour earlier once British Summer Time starts (26 March 2017).
    assert [f.astimezone(UTC).hour for f in fired] == [8, 8, 7, 7]


def test_the_build_stays_at_six_local_across_the_autumn_clock_change(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, timezone="America/New_York")
    trigger = weekly("fri 06:00", settings=settings, field="build_at")
    first = trigger.get_next_fire_time(None, datetime(2026, 10, 26, tzinfo=UTC))
    second = trigger.get_next_fire_time(first, first + timedelta(seconds=1))
    assert (first.astimezone(NEW_YORK).hour, second.astimezone(NEW_YORK).hour) == (6, 6)
    assert (first.astimezone(UTC).hour, second.astimezone(UTC).hour) == (10, 11)  # EDT, EST


@pytest.mark.parametrize("spec", ["friday 8", "fri 8am", "fri 25:00", "fro 08:00", ""])
def test_a_malformed_time_names_the_setting(tmp_path: Path, spec: str) -> None:
    with pytest.raises(ConfigError, match=r"setting SEND_AT=.*e\.g\. \"fri 08:00\""):
        weekly(spec, settings=make_settings(tmp_path), field="send_at")


def test_weeks_are_keyed_by_the_local_calendar(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, timezone="Pacific/Auckland")
    # Sunday 12:30 UTC is already Monday in Auckland: the next ISO week.
    sunday_utc = datetime(2017, 3, 19, 12, 30, tzinfo=UTC)
    assert week_key(sunday_utc, settings=settings) == "2017-W12"
    assert week_key(sunday_utc, settings=make_settings(tmp_path)) == "2017-W11"


def test_a_week_builds_before_it_sends_even_when_the_build_is_the_day_before(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, build_at="sun 20:00", send_at="mon 07:00")
    assert send_time("2017-W13", settings=settings) == datetime(2017, 3, 27, 7, tzinfo=LONDON)
    assert build_time("2017-W13", settings=settings) == datetime(2017, 3, 26, 20, tzinfo=LONDON)


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        (datetime(2017, 3, 24, 5, 59), None),  # before Friday's build
        (datetime(2017, 3, 24, 6, 0), ("2017-W12", False)),  # build time: on time
        (datetime(2017, 3, 24, 9, 0), ("2017-W12", True)),  # after the send time: late
        (datetime(2017, 3, 25, 7, 59), ("2017-W12", True)),  # still inside the 24 h deadline
        (datetime(2017, 3, 25, 8, 1), None),  # past the deadline: nothing to build
        (datetime(2017, 3, 31, 6, 0), ("2017-W13", False)),  # summer time, still 06:00 local
    ],
)
def test_the_week_to_build_follows_build_time_and_deadline(
    tmp_path: Path, local: datetime, expected: tuple[str, bool] | None
) -> None:
    settings = make_settings(tmp_path)
    assert week_to_build(local.replace(tzinfo=LONDON), settings=settings) == expected


def test_a_run_missed_within_the_grace_is_made_up_and_an_older_one_is_not(tmp_path: Path) -> None:
    trigger = weekly("daily 03:00", settings=make_settings(tmp_path), field="x")
    grace = timedelta(minutes=60)
    at_0330 = datetime(2017, 3, 24, 3, 30, tzinfo=LONDON)
    at_0430 = datetime(2017, 3, 24, 4, 30, tzinfo=LONDON)
    assert missed_within(trigger, now=at_0330, grace=grace) == datetime(
        2017, 3, 24, 3, tzinfo=LONDON
    )
    assert missed_within(trigger, now=at_0430, grace=grace) is None


def test_times_given_by_a_person_are_local_unless_they_say_otherwise(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    now = datetime(2017, 3, 29, 12, tzinfo=UTC)  # a Wednesday in summer time
    assert parse_when("now", now=now, settings=settings) == now
    assert parse_when("2017-03-31T08:00", now=now, settings=settings) == datetime(
        2017, 3, 31, 7, tzinfo=UTC
    )
    assert parse_when("2017-03-31T08:00+00:00", now=now, settings=settings).hour == 8
    assert parse_when("fri 08:00", now=now, settings=settings) == datetime(
        2017, 3, 31, 8, tzinfo=LONDON
    )
    with pytest.raises(InputError, match="--at 'tomorrow-ish': use now, an ISO time"):
        parse_when("tomorrow-ish", now=now, settings=settings)


def test_next_runs_are_in_the_newsletter_zone_with_their_offset(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, timezone="America/New_York")
    runs = {r.id: r for r in next_runs(settings, now=datetime(2026, 11, 25, 17, 10, tzinfo=UTC))}
    assert runs["build"].next_run.isoformat() == "2026-11-27T06:00:00-05:00"
    assert runs["send"].next_run.isoformat() == "2026-11-27T08:00:00-05:00"
    assert runs["ingest"].next_run.isoformat() == "2026-11-25T13:00:00-05:00"  # on the hour
    assert runs["send"].trigger == "fri 08:00"
    assert runs["ingest"].trigger == "every 60 min"


def test_jobs_list_json_follows_digest_timezone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digest.cli import app

    monkeypatch.setenv("DIGEST_TIMEZONE", "Asia/Kolkata")
    monkeypatch.setenv("DIGEST_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DIGEST_CONFIG", str(tmp_path / "absent.toml"))
    result = CliRunner().invoke(app, ["jobs", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [set(r) for r in rows] == [{"id", "trigger", "next_run"}] * len(JOBS)
    send = next(r for r in rows if r["id"] == "send")
    when = datetime.fromisoformat(send["next_run"])
    assert send["next_run"].endswith("+05:30")
    assert (when.strftime("%a %H:%M"), send["trigger"]) == ("Fri 08:00", "fri 08:00")


def test_jobs_list_table_shows_local_and_utc_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digest.cli import app

    monkeypatch.setenv("DIGEST_TIMEZONE", "America/New_York")
    monkeypatch.setenv("DIGEST_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DIGEST_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("COLUMNS", "160")
    result = CliRunner().invoke(app, ["jobs", "list"])
    assert result.exit_code == 0, result.output
    send_row = next(line for line in result.stdout.splitlines() if "│ send " in line)
    # 08:00 in New York is 13:00 UTC in winter, 12:00 UTC in summer.
    assert "08:00 E" in send_row and ("13:00" in send_row or "12:00" in send_row)
