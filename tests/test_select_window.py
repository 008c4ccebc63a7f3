"""The newsletter's week is counted in local wall-clock days, across DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.select import Candidate, week_window, within

LONDON = ZoneInfo("Europe/London")


def _candidate(article_id: int, *, published: datetime | None, first_seen: datetime) -> Candidate:
    return Candidate(
        article_id=article_id,
        title="t",
        body="b",
        url="u",
        source="s",
        published=published,
        first_seen=first_seen,
    )


def test_an_ordinary_week_is_seven_times_24_hours() -> None:
    send = datetime(2017, 3, 10, 8, 0, tzinfo=LONDON)
    start, end = week_window(send_at=send, zone=LONDON)
    assert end == datetime(2017, 3, 10, 8, 0, tzinfo=UTC)
    assert start == datetime(2017, 3, 3, 8, 0, tzinfo=UTC)
    assert start.tzinfo is UTC and end.tzinfo is UTC


def test_a_week_with_the_spring_change_is_an_hour_shorter_and_starts_at_local_eight() -> None:
    # Clocks went forward in London on 26 March 2017.
    send = datetime(2017, 3, 31, 8, 0, tzinfo=LONDON)
    start, end = week_window(send_at=send, zone=LONDON)
    assert end - start == timedelta(hours=167)
    assert start.astimezone(LONDON).hour == 8
    assert end == datetime(2017, 3, 31, 7, 0, tzinfo=UTC)


def test_a_week_with_the_autumn_change_is_an_hour_longer() -> None:
    send = datetime(2017, 11, 3, 8, 0, tzinfo=LONDON)  # clocks went back on 29 October
    start, end = week_window(send_at=send, zone=LONDON)
    assert end - start == timedelta(hours=169)
    assert start.astimezone(LONDON).hour == 8


def test_a_start_inside_the_spring_gap_moves_past_it() -> None:
    send = datetime(2017, 4, 2, 1, 30, tzinfo=LONDON)  # a week back is 01:30 on 26 March: skipped
    start, _ = week_window(send_at=send, zone=LONDON)
    assert start == datetime(2017, 3, 26, 1, 30, tzinfo=UTC)
    assert start.astimezone(LONDON).hour == 2


def test_a_send_time_given_in_another_zone_is_read_in_the_newsletters_zone() -> None:
    send = datetime(2017, 3, 10, 8, 0, tzinfo=UTC)
    start, end = week_window(send_at=send, zone=ZoneInfo("America/New_York"), days=1)
    assert (start, end) == (send - timedelta(days=1), send)


def test_a_naive_send_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        week_window(send_at=datetime(2017, 3, 10, 8), zone=LONDON)


def test_undated_articles_count_by_when_they_were_first_seen() -> None:
    start = datetime(2017, 3, 3, tzinfo=UTC)
    end = datetime(2017, 3, 10, tzinfo=UTC)
    inside = datetime(2017, 3, 5, tzinfo=UTC)
    outside = datetime(2017, 2, 1, tzinfo=UTC)
    kept = within(
        [
            _candidate(1, published=inside, first_seen=outside),
            _candidate(2, published=None, first_seen=inside),
            _candidate(3, published=outside, first_seen=inside),
            _candidate(4, published=None, first_seen=outside),
            _candidate(5, published=end, first_seen=end),
        ],
        start=start,
        end=end,
    )
    assert [c.article_id for c in kept] == [1, 2]


ZONES = ["Europe/London", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "UTC"]


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1)),
    st.sampled_from(ZONES),
    st.integers(min_value=1, max_value=14),
)
def test_a_window_spans_whole_local_days_give_or_take_one_dst_hour(
    moment: datetime, zone_name: str, days: int
) -> None:
    zone = ZoneInfo(zone_name)
    send = moment.replace(tzinfo=UTC)
    start, end = week_window(send_at=send, zone=zone, days=days)
    assert end == send
    assert abs((end - start) - timedelta(days=days)) <= timedelta(hours=1)
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    wanted = local_end.replace(tzinfo=None) - timedelta(days=days)
    if local_start.time() == local_end.time():
        assert local_start.replace(tzinfo=None) == wanted
    else:  # the wanted wall time was skipped by a spring change: the first instant after it
        assert timedelta(0) < local_start.replace(tzinfo=None) - wanted <= timedelta(hours=1)
