"""Readable expressions: each form, what it compiles to (its occurrences and words), its errors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from schedule_support import occurrences, utc

from jobmaster import Schedule, ScheduleError, parse_schedule

# Saturday 2026-03-07 12:00Z: far from any DST change.
NOON = "2026-03-07T12:00"


def _assert_compiles(expression: str, expected: list[str], words: str) -> None:
    """The expression's next occurrences after NOON, as precise as `expected` writes them, and its
    words."""
    schedule = parse_schedule(expression)
    found = occurrences(schedule, NOON, len(expected))
    assert [text[: len(expected[0])] for text in found] == expected
    assert schedule.explain() == words


@pytest.mark.parametrize(
    ("expression", "first", "words"),
    [
        ("every second", ["12:00:01", "12:00:02"], "Every second"),
        ("every 10 seconds", ["12:00:10", "12:00:20"], "Every 10th second of every minute"),
        ("every minute", ["12:01:00", "12:02:00"], "Every minute"),
        ("every 15 minutes", ["12:15:00", "12:30:00"], "Every 15th minute of every hour"),
        ("Every  15 Minutes", ["12:15:00", "12:30:00"], "Every 15th minute of every hour"),
        ("every hour", ["13:00:00", "14:00:00"], "At the start of every hour"),
        ("every 1 hour", ["13:00:00", "14:00:00"], "At the start of every hour"),
        ("every 6 hours", ["18:00:00", "00:00:00"], "At minute 0 past every sixth hour"),
    ],
)
def test_steps_that_divide_their_unit_count_from_midnight(
    expression: str, first: list[str], words: str
) -> None:
    schedule = parse_schedule(expression)
    assert [found[6:14] for found in occurrences(schedule, NOON, 2)] == first
    assert schedule.explain() == words


@pytest.mark.parametrize(
    ("expression", "seconds", "words"),
    [
        ("every 90 minutes", 5400, "Every 90 minutes, counted from 1970-01-01 00:00 UTC"),
        ("every 7 minutes", 420, "Every 7 minutes, counted from 1970-01-01 00:00 UTC"),
        ("every 5 hours", 18000, "Every 5 hours, counted from 1970-01-01 00:00 UTC"),
        ("every 2 days", 172800, "Every 2 days, counted from 1970-01-01 00:00 UTC"),
        ("every 90 seconds", 90, "Every 90 seconds, counted from 1970-01-01 00:00 UTC"),
        ("every 60 minutes", 3600, "Every hour, counted from 1970-01-01 00:00 UTC"),
    ],
)
def test_other_steps_are_epoch_intervals(expression: str, seconds: int, words: str) -> None:
    schedule = parse_schedule(expression, tz="Asia/Kathmandu")
    after = utc(NOON)
    found = schedule.next_after(after)
    assert int(found.timestamp()) % seconds == 0
    assert 0 < (found - after).total_seconds() <= seconds
    assert schedule.explain() == words


def test_readable_forms_of_the_issue() -> None:
    riga = "Europe/Riga"  # UTC+2 in March
    assert occurrences(parse_schedule("every day at 09:00", tz=riga), NOON, 2) == [
        "03-08T07:00:00Z 09:00:00+0200",
        "03-09T07:00:00Z 09:00:00+0200",
    ]
    assert occurrences(parse_schedule("every monday at 08:30", tz=riga), NOON, 2) == [
        "03-09T06:30:00Z 08:30:00+0200",
        "03-16T06:30:00Z 08:30:00+0200",
    ]
    assert occurrences(parse_schedule("every 2 hours between 08:00 and 18:00", tz=riga), NOON, 8) == [
        "03-07T14:00:00Z 16:00:00+0200",
        "03-07T16:00:00Z 18:00:00+0200",
        "03-08T06:00:00Z 08:00:00+0200",
        "03-08T08:00:00Z 10:00:00+0200",
        "03-08T10:00:00Z 12:00:00+0200",
        "03-08T12:00:00Z 14:00:00+0200",
        "03-08T14:00:00Z 16:00:00+0200",
        "03-08T16:00:00Z 18:00:00+0200",
    ]
    assert occurrences(parse_schedule("on the last day of the month at 23:00", tz=riga), NOON, 2) == [
        "03-31T20:00:00Z 23:00:00+0300",
        "04-30T20:00:00Z 23:00:00+0300",
    ]


@pytest.mark.parametrize(
    ("expression", "expected", "words"),
    [
        ("every day", ["03-08T00:00", "03-09T00:00"], "At 00:00 every day"),
        ("every 1 day at 06:00", ["03-08T06:00", "03-09T06:00"], "At 06:00 every day"),
        ("every day at noon", ["03-08T12:00", "03-09T12:00"], "At 12:00 every day"),
        ("every day at midnight", ["03-08T00:00", "03-09T00:00"], "At 00:00 every day"),
        ("every day at 09:00:30", ["03-08T09:00:30", "03-09T09:00:30"], "At 09:00:30 every day"),
        ("every weekday at 9am", ["03-09T09:00", "03-10T09:00"], "At 09:00 on Monday through Friday"),
        ("every weekend at 5:30 pm", ["03-07T17:30", "03-08T17:30"], "At 17:30 on Sunday and Saturday"),
        ("every weekend day at 10:00", ["03-08T10:00", "03-14T10:00"], "At 10:00 on Sunday and Saturday"),
        ("every mondays at 08:30", ["03-09T08:30", "03-16T08:30"], "At 08:30 on Monday"),
        (
            "every mon, wed and fri at 07:00",
            ["03-09T07:00", "03-11T07:00"],
            "At 07:00 on Monday, Wednesday, and Friday",
        ),
        ("every tue-thu at 07:00", ["03-10T07:00", "03-11T07:00"], "At 07:00 on Tuesday through Thursday"),
        (
            "every friday to monday at 07:00",
            ["03-08T07:00", "03-09T07:00"],
            "At 07:00 on Sunday, Monday, Friday, and Saturday",
        ),
        (
            "every day between mon and fri at 18:00",
            ["03-09T18:00", "03-10T18:00"],
            "At 18:00 on Monday through Friday",
        ),
        (
            "every monday and thursday at 08:30, 17:00",
            ["03-09T08:30", "03-09T17:00"],
            "At 08:30 on Monday and Thursday; at 17:00 on Monday and Thursday",
        ),
        ("every day at 08:00 and 20:00", ["03-07T20:00", "03-08T08:00"], "At 08:00 and 20:00 every day"),
        (
            "on the last weekday of the month at 17:00",
            ["03-31T17:00", "04-30T17:00"],
            "At 17:00 on the last weekday of every month",
        ),
        (
            "on the first monday of the month at 10:00",
            ["04-06T10:00", "05-04T10:00"],
            "At 10:00 on the first Monday of the month",
        ),
        (
            "on the third wednesday of every month at 10:00",
            ["03-18T10:00", "04-15T10:00"],
            "At 10:00 on the third Wednesday of the month",
        ),
        (
            "on the last friday of the month at 16:00",
            ["03-27T16:00", "04-24T16:00"],
            "At 16:00 on the last Friday of the month",
        ),
        (
            "on the 1st and 15th of the month at 09:00",
            ["03-15T09:00", "04-01T09:00"],
            "At 09:00 on the first and the 15th day of month",
        ),
        (
            "on the 10th of each month",
            ["03-10T00:00", "04-10T00:00"],
            "At 00:00 on the 10th day of every month",
        ),
        (
            "every month on the 10th at 08:00",
            ["03-10T08:00", "04-10T08:00"],
            "At 08:00 on the 10th day of every month",
        ),
        (
            "every month on the last day",
            ["03-31T00:00", "04-30T00:00"],
            "At 00:00 on the last day of every month",
        ),
        ("every year on december 25 at 07:00", ["12-25T07:00", "12-25T07:00"], "At 07:00 on December 25"),
        ("every year on 29 feb", ["02-29T00:00", "02-29T00:00"], "At 00:00 on February 29"),
        ("every year on jan 1st", ["01-01T00:00", "01-01T00:00"], "At 00:00 on January 1"),
    ],
)
def test_day_forms_are_fixed_times(expression: str, expected: list[str], words: str) -> None:
    _assert_compiles(expression, expected, words)


def test_a_leap_day_waits_for_a_leap_year() -> None:
    found = parse_schedule("every year on 29 feb").next_after(utc(NOON))
    assert found == utc("2028-02-29T00:00")


@pytest.mark.parametrize(
    ("expression", "expected", "words"),
    [
        (
            "every 15 minutes between 09:10 and 10:00",
            ["03-08T09:10", "03-08T09:25", "03-08T09:40", "03-08T09:55", "03-09T09:10"],
            "Every 15 minutes from 09:10 through 09:55, every day",
        ),
        (
            "every 45 minutes between 08:00 and 10:00",
            ["03-08T08:00", "03-08T08:45", "03-08T09:30", "03-09T08:00", "03-09T08:45"],
            "Every 45 minutes from 08:00 through 09:30, every day",
        ),
        (
            "every 15 minutes between 16:30 and 17:00 on weekdays",
            ["03-09T16:30", "03-09T16:45", "03-09T17:00", "03-10T16:30", "03-10T16:45"],
            "Every 15 minutes from 16:30 through 17:00, Monday through Friday",
        ),
        (
            "every 20 seconds between 12:00 and 12:01",
            ["03-07T12:00:20", "03-07T12:00:40", "03-07T12:01:00", "03-08T12:00:00", "03-08T12:00:20"],
            "Every 20 seconds from 12:00 through 12:01, every day",
        ),
        (
            "every 7 hours on sundays",
            ["03-08T00:00", "03-08T07:00", "03-08T14:00", "03-08T21:00", "03-15T00:00"],
            "Every 7 hours from 00:00 through 21:00, Sunday",
        ),
        (
            "every 30 minutes on sat and sun",
            ["03-07T12:30", "03-07T13:00", "03-07T13:30", "03-07T14:00", "03-07T14:30"],
            "Every 30 minutes from 00:00 through 23:30, Saturday and Sunday",
        ),
    ],
)
def test_windowed_steps_count_from_the_window_start(expression: str, expected: list[str], words: str) -> None:
    _assert_compiles(expression, expected, words)


def test_readable_schedules_round_trip_through_their_text() -> None:
    schedule = parse_schedule("every  Monday at 08:30", tz="America/New_York")
    assert schedule.expression == "every Monday at 08:30"
    assert Schedule(schedule.expression, schedule.tz) == schedule


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("every 0 minutes", "the interval is zero"),
        ("every 0 days", "the interval is zero"),
        ("every 0 seconds between 09:00 and 10:00", "the interval is zero"),
        ("every 15 minutes at 09:00", "a step has no `at` time"),
        ("every day at 25:00", "bad time '25:00': past 23:59:59"),
        ("every day at 09:60", "bad time '09:60'"),
        ("every day at 9", "bad time '9' \\(use HH:MM"),
        ("every day at 13pm", "the hour of an am/pm time is 1-12"),
        ("every day at 09:00 and", "bad time"),
        ("every funday at 09:00", "unknown day 'funday'.*the forms are"),
        ("every fortnight", "unknown day 'fortnight'.*the forms are"),
        ("every mo at 09:00", "unknown day 'mo'"),
        ("on the 32nd of the month", "bad day of the month '32nd'"),
        ("on the 0th of the month", "bad day of the month '0th'"),
        ("on the last day", "a monthly form ends with `of the month`"),
        ("on the last day of the year", "a monthly form ends with `of the month`"),
        ("on the first blursday of the month", "unknown day 'blursday'"),
        ("every year on feb 30", "february has no day 30"),
        ("every year on smarch 3", "unknown month 'smarch'"),
        ("every year on december", "bad date 'december'"),
        ("every 2 days at 09:00", "`every N days` is an interval"),
        ("every 15 minutes between 18:00 and 09:00", "the window ends before it starts"),
        ("every 25 hours between 01:00 and 02:00", "a step within a day is at most 24 hours"),
        ("every monday on fridays", "give the days once"),
        ("every monday between tue and fri", "narrows `every day`"),
        ("every 5 minutes between 09:00 and lunch", "bad time 'lunch'"),
    ],
)
def test_bad_readable_expressions(expression: str, problem: str) -> None:
    with pytest.raises(ScheduleError, match=problem) as caught:
        parse_schedule(expression)
    assert str(caught.value).startswith(f"schedule {expression!r}: ")


@pytest.mark.parametrize(
    ("expression", "start", "end", "step"),
    [
        ("every 13 minutes between 00:00 and 23:59", 0, 86340, 780),
        ("every 7 seconds between 10:00 and 10:10", 36000, 36600, 7),
        ("every 20 seconds between 12:00 and 12:01", 43200, 43260, 20),
        ("every 45 minutes between 08:15 and 20:00", 29700, 72000, 2700),
        ("every second between 23:59:50 and 23:59:59", 86390, 86399, 1),
    ],
)
def test_windowed_steps_occur_at_exactly_their_points(
    expression: str, start: int, end: int, step: int
) -> None:
    """A window compiled to several cron lines occurs at start + k * step up to its end, no more."""
    schedule = parse_schedule(expression)
    midnight = utc("2026-05-05T00:00")
    moment, found = midnight - timedelta(seconds=1), []
    while (moment := schedule.next_after(moment)) < midnight + timedelta(days=1):
        found.append(int((moment - midnight).total_seconds()))
    assert found == list(range(start, end + 1, step))
