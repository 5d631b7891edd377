"""Schedule expressions: parsing, errors, next-occurrence maths (DST included) and explain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jobmaster import Schedule, ScheduleError, parse_schedule


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def occurrences(schedule: Schedule, after: datetime, count: int) -> list[str]:
    """The next `count` occurrences after `after`, as `YYYY-MM-DDTHH:MM:SS` UTC strings."""
    found = []
    for _ in range(count):
        after = schedule.next_after(after)
        found.append(after.strftime("%Y-%m-%dT%H:%M:%S"))
    return found


def test_five_field_cron_in_a_zone() -> None:
    schedule = parse_schedule("0 9 * * MON-FRI", tz="Europe/Riga")
    # Friday 2026-03-06 09:00 Riga (UTC+2) is 07:00Z; the weekend is skipped.
    assert occurrences(schedule, utc("2026-03-06T06:00:00"), 2) == [
        "2026-03-06T07:00:00",
        "2026-03-09T07:00:00",
    ]


def test_next_after_is_strictly_after_and_utc() -> None:
    schedule = parse_schedule("*/15 * * * *")
    found = schedule.next_after(utc("2026-01-01T10:15:00"))
    assert found == utc("2026-01-01T10:30:00")
    assert found.tzinfo is UTC


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        parse_schedule("@daily").next_after(datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("0 9 * *", "5 fields"),
        ("61 9 * * *", "bad minute field '61'"),
        ("0 9 * * FUNDAY", "bad day-of-week field 'FUNDAY'"),
        ("@reboot", "unknown nickname"),
    ],
)
def test_bad_cron_names_the_expression_and_the_problem(expression: str, problem: str) -> None:
    with pytest.raises(ScheduleError, match=problem) as caught:
        parse_schedule(expression)
    assert repr(expression) in str(caught.value)


def test_unknown_time_zone() -> None:
    with pytest.raises(ScheduleError, match="unknown time zone 'Mars/Olympus'"):
        parse_schedule("@daily", tz="Mars/Olympus")


def test_interval_is_anchored_to_the_epoch_and_round_trips() -> None:
    schedule = parse_schedule(every=timedelta(minutes=90))
    assert schedule.expression == "every 5400 seconds"
    assert schedule == Schedule("every 5400 seconds")
    assert occurrences(schedule, utc("2026-03-07T12:00:00"), 2) == [
        "2026-03-07T13:30:00",
        "2026-03-07T15:00:00",
    ]


@pytest.mark.parametrize("every", [timedelta(0), timedelta(seconds=-5), timedelta(milliseconds=1500)])
def test_bad_interval(every: timedelta) -> None:
    with pytest.raises(ScheduleError, match="whole number of seconds"):
        parse_schedule(every=every)
