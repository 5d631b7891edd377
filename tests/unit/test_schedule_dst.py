"""The DST rule (Debian cron), in Europe/Riga and America/New_York, both directions.

2026 transitions used here:
- Riga springs forward on 03-29 at 03:00 EET (01:00Z) to 04:00 EEST: 03:00-03:59 never shows;
  it falls back on 10-25 at 04:00 EEST (01:00Z) to 03:00 EET: 03:00-03:59 shows twice.
- New York springs forward on 03-08 at 02:00 EST (07:00Z) to 03:00 EDT: 02:00-02:59 never shows;
  it falls back on 11-01 at 02:00 EDT (06:00Z) to 01:00 EST: 01:00-01:59 shows twice.

Fixed-time schedules: a time in the gap runs once, right after the gap; a repeated time runs once,
on its first pass. Sub-hourly and hourly-step schedules follow real time.
"""

from __future__ import annotations

import random
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from schedule_support import occurrences, utc

from jobmaster import parse_schedule

# --- fixed time, spring forward: the skipped time runs right after the gap ---------------------


@pytest.mark.parametrize("expression", ["30 3 * * *", "0 30 3 * * *", "every day at 03:30"])
def test_riga_spring_forward_fixed_time_runs_after_the_gap(expression: str) -> None:
    assert occurrences(parse_schedule(expression, tz="Europe/Riga"), "2026-03-27T12:00", 3) == [
        "03-28T01:30:00Z 03:30:00+0200",
        "03-29T01:00:00Z 04:00:00+0300",
        "03-30T00:30:00Z 03:30:00+0300",
    ]


@pytest.mark.parametrize("expression", ["30 2 * * *", "0 30 2 * * *", "every day at 2:30am"])
def test_new_york_spring_forward_fixed_time_runs_after_the_gap(expression: str) -> None:
    # cronsim alone skips 03-08 for the 6-field form; the wrapper holds the rule for both.
    assert occurrences(parse_schedule(expression, tz="America/New_York"), "2026-03-06T12:00", 3) == [
        "03-07T07:30:00Z 02:30:00-0500",
        "03-08T07:00:00Z 03:00:00-0400",
        "03-09T06:30:00Z 02:30:00-0400",
    ]


def test_several_times_in_the_gap_run_once() -> None:
    schedule = parse_schedule("0,20,40 3 * * *", tz="Europe/Riga")
    assert occurrences(schedule, "2026-03-28T12:00", 2) == [
        "03-29T01:00:00Z 04:00:00+0300",
        "03-30T00:00:00Z 03:00:00+0300",
    ]


def test_a_time_in_the_gap_and_the_time_after_it_are_one_occurrence() -> None:
    # 03:00 is skipped and runs at 04:00, which is also an occurrence: one instant, one occurrence.
    schedule = parse_schedule("0 3,4 * * *", tz="Europe/Riga")
    assert occurrences(schedule, "2026-03-28T12:00", 2) == [
        "03-29T01:00:00Z 04:00:00+0300",
        "03-30T00:00:00Z 03:00:00+0300",
    ]


def test_a_day_with_no_midnight_runs_at_the_end_of_the_gap() -> None:
    # Chile springs forward at 00:00 on 2026-09-06: the day starts at 01:00.
    schedule = parse_schedule("@daily", tz="America/Santiago")
    assert occurrences(schedule, "2026-09-04T12:00", 3) == [
        "09-05T04:00:00Z 00:00:00-0400",
        "09-06T04:00:00Z 01:00:00-0300",
        "09-07T03:00:00Z 00:00:00-0300",
    ]


def test_a_skipped_calendar_day_runs_once_after_it() -> None:
    # Samoa skipped 2011-12-30 entirely: its noon runs when the 31st begins.
    assert occurrences(parse_schedule("0 12 * * *", tz="Pacific/Apia"), "2011-12-28T12:00", 4) == [
        "12-28T22:00:00Z 12:00:00-1000",
        "12-29T22:00:00Z 12:00:00-1000",
        "12-30T10:00:00Z 00:00:00+1400",
        "12-30T22:00:00Z 12:00:00+1400",
    ]


# --- fixed time, fall back: a repeated time runs once, on its first pass ------------------------


@pytest.mark.parametrize("expression", ["30 3 * * *", "0 30 3 * * *", "every sunday at 03:30"])
def test_riga_fall_back_fixed_time_runs_once(expression: str) -> None:
    found = occurrences(parse_schedule(expression, tz="Europe/Riga"), "2026-10-24T12:00", 2)
    assert found[0] == "10-25T00:30:00Z 03:30:00+0300"
    assert not found[1].startswith("10-25")


@pytest.mark.parametrize("expression", ["30 1 * * *", "0 30 1 * * *", "every day at 01:30"])
def test_new_york_fall_back_fixed_time_runs_once(expression: str) -> None:
    assert occurrences(parse_schedule(expression, tz="America/New_York"), "2026-10-31T00:00", 3) == [
        "10-31T05:30:00Z 01:30:00-0400",
        "11-01T05:30:00Z 01:30:00-0400",
        "11-02T06:30:00Z 01:30:00-0500",
    ]


def test_asking_from_the_second_pass_does_not_repeat_the_first() -> None:
    # 01:15Z on 10-25 is 03:15 EET, the second pass of 03:15 in Riga.
    assert occurrences(parse_schedule("30 3 * * *", tz="Europe/Riga"), "2026-10-25T01:15", 1) == [
        "10-26T01:30:00Z 03:30:00+0200"
    ]


def test_hours_around_a_repeated_hour_keep_their_order() -> None:
    # Debian's (and cronsim's) reference case: 02:00, 03:00 (first pass only), 04:00, 05:00.
    schedule = parse_schedule("0 1,2,3,4,5 * * *", tz="Europe/Riga")
    assert occurrences(schedule, "2026-10-24T21:00", 5) == [
        "10-24T22:00:00Z 01:00:00+0300",
        "10-24T23:00:00Z 02:00:00+0300",
        "10-25T00:00:00Z 03:00:00+0300",
        "10-25T02:00:00Z 04:00:00+0200",
        "10-25T03:00:00Z 05:00:00+0200",
    ]


# --- sub-hourly and hourly steps: real time ----------------------------------------------------


@pytest.mark.parametrize("expression", ["*/30 * * * *", "every 30 minutes"])
def test_new_york_spring_forward_sub_hourly_follows_real_time(expression: str) -> None:
    assert occurrences(parse_schedule(expression, tz="America/New_York"), "2026-03-08T06:00", 3) == [
        "03-08T06:30:00Z 01:30:00-0500",
        "03-08T07:00:00Z 03:00:00-0400",
        "03-08T07:30:00Z 03:30:00-0400",
    ]


@pytest.mark.parametrize("expression", ["*/30 * * * *", "every 30 minutes"])
def test_new_york_fall_back_sub_hourly_runs_in_both_passes(expression: str) -> None:
    assert occurrences(parse_schedule(expression, tz="America/New_York"), "2026-11-01T04:45", 5) == [
        "11-01T05:00:00Z 01:00:00-0400",
        "11-01T05:30:00Z 01:30:00-0400",
        "11-01T06:00:00Z 01:00:00-0500",
        "11-01T06:30:00Z 01:30:00-0500",
        "11-01T07:00:00Z 02:00:00-0500",
    ]


@pytest.mark.parametrize("expression", ["*/20 * * * *", "every 20 minutes"])
def test_riga_spring_forward_sub_hourly_follows_real_time(expression: str) -> None:
    assert occurrences(parse_schedule(expression, tz="Europe/Riga"), "2026-03-29T00:30", 3) == [
        "03-29T00:40:00Z 02:40:00+0200",
        "03-29T01:00:00Z 04:00:00+0300",
        "03-29T01:20:00Z 04:20:00+0300",
    ]


@pytest.mark.parametrize("expression", ["*/20 * * * *", "every 20 minutes"])
def test_riga_fall_back_sub_hourly_runs_in_both_passes(expression: str) -> None:
    assert occurrences(parse_schedule(expression, tz="Europe/Riga"), "2026-10-24T23:50", 7) == [
        "10-25T00:00:00Z 03:00:00+0300",
        "10-25T00:20:00Z 03:20:00+0300",
        "10-25T00:40:00Z 03:40:00+0300",
        "10-25T01:00:00Z 03:00:00+0200",
        "10-25T01:20:00Z 03:20:00+0200",
        "10-25T01:40:00Z 03:40:00+0200",
        "10-25T02:00:00Z 04:00:00+0200",
    ]


@pytest.mark.parametrize(
    "expression", ["0 */2 * * *", "every 2 hours", "every 2 hours between 00:00 and 06:00"]
)
def test_hourly_steps_have_no_occurrence_in_a_gap(expression: str) -> None:
    assert occurrences(parse_schedule(expression, tz="America/New_York"), "2026-03-08T04:00", 3) == [
        "03-08T05:00:00Z 00:00:00-0500",
        "03-08T08:00:00Z 04:00:00-0400",
        "03-08T10:00:00Z 06:00:00-0400",
    ]


@pytest.mark.parametrize("expression", ["@hourly", "0 * * * *", "every hour"])
def test_hourly_runs_in_both_passes_of_a_repeated_hour(expression: str) -> None:
    assert occurrences(parse_schedule(expression, tz="America/New_York"), "2026-11-01T04:30", 3) == [
        "11-01T05:00:00Z 01:00:00-0400",
        "11-01T06:00:00Z 01:00:00-0500",
        "11-01T07:00:00Z 02:00:00-0500",
    ]


def test_a_windowed_step_follows_real_time_in_a_repeated_hour() -> None:
    schedule = parse_schedule("every 20 minutes between 03:00 and 04:00", tz="Europe/Riga")
    assert occurrences(schedule, "2026-10-24T23:50", 8) == [
        "10-25T00:00:00Z 03:00:00+0300",
        "10-25T00:20:00Z 03:20:00+0300",
        "10-25T00:40:00Z 03:40:00+0300",
        "10-25T01:00:00Z 03:00:00+0200",
        "10-25T01:20:00Z 03:20:00+0200",
        "10-25T01:40:00Z 03:40:00+0200",
        "10-25T02:00:00Z 04:00:00+0200",
        "10-26T01:00:00Z 03:00:00+0200",
    ]


def test_seconds_follow_real_time_across_the_gap() -> None:
    schedule = parse_schedule("*/30 * * * * *", tz="America/New_York")
    assert occurrences(schedule, "2026-03-08T06:59:00", 3) == [
        "03-08T06:59:30Z 01:59:30-0500",
        "03-08T07:00:00Z 03:00:00-0400",
        "03-08T07:00:30Z 03:00:30-0400",
    ]


def test_intervals_ignore_the_zone() -> None:
    schedule = parse_schedule(every=timedelta(minutes=30), tz="Europe/Riga")
    assert [schedule.next_after(utc("2026-10-25T00:50"))] == [utc("2026-10-25T01:00")]


def test_a_year_of_daily_occurrences_is_one_per_local_day() -> None:
    """Across both transitions of a year, a fixed daily time occurs exactly once per local date."""
    schedule = parse_schedule("30 3 * * *", tz="Europe/Riga")
    moment, dates = utc("2025-12-31T12:00"), []
    for _ in range(365):
        moment = schedule.next_after(moment)
        dates.append(moment.astimezone(ZoneInfo("Europe/Riga")).date())
    assert len(set(dates)) == 365
    assert dates[0].isoformat() == "2026-01-01"
    assert dates[-1].isoformat() == "2026-12-31"


def test_a_half_hour_change_is_handled_like_an_hour() -> None:
    # Lord Howe Island springs forward 30 minutes, 02:00 -> 02:30, on 2026-10-04 (10-03T15:30Z).
    assert occurrences(parse_schedule("15 2 * * *", tz="Australia/Lord_Howe"), "2026-10-02T12:00", 3) == [
        "10-02T15:45:00Z 02:15:00+1030",
        "10-03T15:30:00Z 02:30:00+1100",
        "10-04T15:15:00Z 02:15:00+1100",
    ]
    assert occurrences(parse_schedule("*/15 * * * *", tz="Australia/Lord_Howe"), "2026-10-03T15:00", 3) == [
        "10-03T15:15:00Z 01:45:00+1030",
        "10-03T15:30:00Z 02:30:00+1100",
        "10-03T15:45:00Z 02:45:00+1100",
    ]


@pytest.mark.parametrize("zone", ["Europe/Riga", "America/New_York"])
@pytest.mark.parametrize(
    "expression",
    ["30 3 * * *", "0 1-4 * * *", "0,30 2,3 * * *", "*/20 * * * *", "0 */2 * * *", "*/45 1-3 * * *"],
)
def test_asking_from_any_instant_agrees_with_stepping(zone: str, expression: str) -> None:
    """Stepping occurrence to occurrence through both transitions, and asking from instants in
    between (inside gaps and on both passes of repeated hours), give the same next occurrence."""
    schedule = parse_schedule(expression, tz=zone)
    probes = random.Random(f"{zone} {expression}")
    for start in ("2026-03-07T00:00", "2026-03-28T00:00", "2026-10-24T00:00", "2026-10-31T00:00"):
        previous = schedule.next_after(utc(start))
        for _ in range(40):
            following = schedule.next_after(previous)
            assert following > previous
            gap = int((following - previous).total_seconds())
            for offset in {0, gap - 1, *(probes.randrange(gap) for _ in range(3))}:
                assert schedule.next_after(previous + timedelta(seconds=offset)) == following
            previous = following
