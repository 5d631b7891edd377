"""Schedule expressions: cron and intervals, their errors, jitter, identity, and explain."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from schedule_support import occurrences, utc

from jobmaster import Schedule, ScheduleError, parse_schedule


def test_five_field_cron_in_a_zone() -> None:
    # Friday 2026-03-06 09:00 in Riga (UTC+2) is 07:00Z; the weekend is skipped.
    assert occurrences(parse_schedule("0 9 * * MON-FRI", tz="Europe/Riga"), "2026-03-06T06:00", 2) == [
        "03-06T07:00:00Z 09:00:00+0200",
        "03-09T07:00:00Z 09:00:00+0200",
    ]


def test_six_field_cron_has_seconds_first() -> None:
    assert occurrences(parse_schedule("*/20 * * * * *"), "2026-01-01T10:00:00", 3) == [
        "01-01T10:00:20Z 10:00:20+0000",
        "01-01T10:00:40Z 10:00:40+0000",
        "01-01T10:01:00Z 10:01:00+0000",
    ]


def test_next_after_is_strictly_after_and_ignores_fractions() -> None:
    schedule = parse_schedule("*/15 * * * *")
    assert schedule.next_after(utc("2026-01-01T10:15:00")) == utc("2026-01-01T10:30:00")
    assert schedule.next_after(utc("2026-01-01T10:14:59.999999")) == utc("2026-01-01T10:15:00")


def test_next_after_accepts_any_aware_datetime() -> None:
    riga_morning = datetime.fromisoformat("2026-01-01T08:59:00+02:00")
    assert parse_schedule("0 9 * * *", tz="Europe/Riga").next_after(riga_morning) == utc("2026-01-01T07:00")


@pytest.mark.parametrize(
    ("nickname", "after", "expected"),
    [
        ("@hourly", "2026-05-05T10:20", "2026-05-05T11:00"),
        ("@daily", "2026-05-05T10:20", "2026-05-06T00:00"),
        ("@midnight", "2026-05-05T10:20", "2026-05-06T00:00"),
        ("@weekly", "2026-05-05T10:20", "2026-05-10T00:00"),  # Sunday
        ("@monthly", "2026-05-05T10:20", "2026-06-01T00:00"),
        ("@yearly", "2026-05-05T10:20", "2027-01-01T00:00"),
        ("@annually", "2026-05-05T10:20", "2027-01-01T00:00"),
    ],
)
def test_nicknames(nickname: str, after: str, expected: str) -> None:
    assert parse_schedule(nickname).next_after(utc(after)) == utc(expected)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("0 23 L * *", "2026-02-10T00:00", ["2026-02-28T23:00", "2026-03-31T23:00"]),
        ("0 17 LW * *", "2026-05-01T00:00", ["2026-05-29T17:00", "2026-06-30T17:00"]),  # May 31 is Sunday
        ("0 16 * * 5L", "2026-05-01T00:00", ["2026-05-29T16:00", "2026-06-26T16:00"]),
        ("0 10 * * MON#1", "2026-05-01T00:00", ["2026-05-04T10:00", "2026-06-01T10:00"]),
        ("0 0 29 2 *", "2026-01-01T00:00", ["2028-02-29T00:00", "2032-02-29T00:00"]),
        ("0 9 1 * MON", "2026-06-01T10:00", ["2026-06-08T09:00", "2026-06-15T09:00"]),  # day OR weekday
    ],
)
def test_cron_extensions(expression: str, after: str, expected: list[str]) -> None:
    schedule = parse_schedule(expression)
    first = schedule.next_after(utc(after))
    assert [first, schedule.next_after(first)] == [utc(text) for text in expected]


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("0 9 * *", "has 5 fields .* or 6 with seconds first, got 4"),
        ("0 0 9 * * * *", "got 7"),
        ("61 9 * * *", "bad minute field '61' \\(allowed: 0-59\\)"),
        ("0 24 * * *", "bad hour field '24'"),
        ("0 9 32 * *", "bad day-of-month field '32'"),
        ("0 9 * 13 *", "bad month field '13'"),
        ("0 9 * * FUNDAY", "bad day-of-week field 'FUNDAY'"),
        ("0 9 * * MON#6", "bad day-of-week field 'MON#6'"),
        ("*/0 * * * *", "bad minute field '\\*/0'"),
        ("0 9 31 2 *", "bad day-of-month field '31'"),
        ("@reboot", "unknown nickname; use one of @yearly"),
    ],
)
def test_bad_cron_names_the_expression_and_the_problem(expression: str, problem: str) -> None:
    with pytest.raises(ScheduleError, match=problem) as caught:
        parse_schedule(expression)
    assert repr(expression) in str(caught.value)


def test_empty_expression() -> None:
    with pytest.raises(ScheduleError, match="the expression is empty"):
        parse_schedule("   ")
    with pytest.raises(ScheduleError, match="a schedule expression is a string, got int"):
        Schedule(15)  # type: ignore[arg-type]
    with pytest.raises(ScheduleError, match="a schedule expression is a string, got int"):
        parse_schedule(15)  # type: ignore[arg-type]


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "../etc/passwd", "utc+2"])
def test_unknown_time_zone_is_refused(zone: str) -> None:
    with pytest.raises(ScheduleError, match=re.escape(f"'0 9 * * *': unknown time zone {zone!r}")):
        parse_schedule("0 9 * * *", tz=zone)


def test_expression_and_every_are_exclusive() -> None:
    with pytest.raises(ScheduleError, match="either an expression or every="):
        parse_schedule("@daily", every=timedelta(hours=1))
    with pytest.raises(ScheduleError, match="either an expression or every="):
        parse_schedule()


def test_interval_is_anchored_to_the_epoch_and_stored_as_text() -> None:
    schedule = parse_schedule(every=timedelta(minutes=90), tz="America/New_York")
    assert schedule.expression == "every 5400 seconds"
    assert schedule == Schedule("every 5400 seconds", "America/New_York")
    # 2026-03-07T12:00Z is 164 * 90 minutes past a whole day; the next step is 13:30Z.
    assert occurrences(schedule, "2026-03-07T12:00", 2) == [
        "03-07T13:30:00Z 08:30:00-0500",
        "03-07T15:00:00Z 10:00:00-0500",
    ]


def test_interval_keeps_real_time_across_dst() -> None:
    schedule = parse_schedule(every=timedelta(hours=1), tz="America/New_York")
    assert occurrences(schedule, "2026-03-08T05:30", 3) == [
        "03-08T06:00:00Z 01:00:00-0500",
        "03-08T07:00:00Z 03:00:00-0400",
        "03-08T08:00:00Z 04:00:00-0400",
    ]


@pytest.mark.parametrize(
    "every", [timedelta(0), timedelta(seconds=-5), timedelta(milliseconds=1500), timedelta(microseconds=1)]
)
def test_bad_interval(every: timedelta) -> None:
    with pytest.raises(ScheduleError, match="whole number of seconds, at least 1"):
        parse_schedule(every=every)


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        parse_schedule("@daily").next_after(datetime(2026, 1, 1))


def test_schedules_are_values() -> None:
    spaced = parse_schedule("  0   9 * * MON-FRI ", tz="Europe/Riga")
    assert spaced == parse_schedule("0 9 * * MON-FRI", tz="Europe/Riga")
    assert spaced.expression == "0 9 * * MON-FRI"
    assert len({spaced, parse_schedule("0 9 * * MON-FRI", tz="Europe/Riga")}) == 1
    assert spaced != parse_schedule("0 9 * * MON-FRI", tz="UTC")
    with pytest.raises(AttributeError):
        spaced.tz = "UTC"  # type: ignore[misc]


def test_constructing_a_schedule_validates_it() -> None:
    with pytest.raises(ScheduleError, match="bad hour field '25'"):
        Schedule("0 25 * * *")


def test_jitter_is_deterministic_per_key_and_bounded() -> None:
    schedule = parse_schedule("@hourly", jitter=timedelta(minutes=5))
    occurrence = utc("2026-06-01T10:00")
    delays = {key: schedule.jittered(occurrence, key) - occurrence for key in ("a", "b", "c", "d")}
    assert all(timedelta(0) <= delay < timedelta(minutes=5) for delay in delays.values())
    assert len(set(delays.values())) == 4
    assert schedule.jittered(occurrence, "a") == occurrence + delays["a"]
    assert parse_schedule("@hourly", jitter=timedelta(minutes=5)).jittered(occurrence, "a").tzinfo is UTC
    # The next occurrence of the same key gets its own share.
    later = utc("2026-06-01T11:00")
    assert schedule.jittered(later, "a") - later != delays["a"]


def test_no_jitter_leaves_the_occurrence() -> None:
    occurrence = datetime.fromisoformat("2026-06-01T13:00:00+03:00")
    assert parse_schedule("@hourly").jittered(occurrence, "a") == utc("2026-06-01T10:00")


@pytest.mark.parametrize("jitter", [timedelta(0), timedelta(seconds=-1), 30])
def test_bad_jitter(jitter: object) -> None:
    with pytest.raises(ScheduleError, match="jitter must be a positive timedelta"):
        parse_schedule("@hourly", jitter=jitter)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("schedule", "words"),
    [
        (
            parse_schedule("0 9 * * MON-FRI", tz="Europe/Riga"),
            "At 09:00 on Monday through Friday (Europe/Riga time)",
        ),
        (parse_schedule("*/15 * * * *"), "Every 15th minute of every hour"),
        (parse_schedule("30 0 23 L * *"), "At 23:00:30 on the last day of every month"),
        (parse_schedule("@weekly"), "At 00:00 on Sunday"),
        (parse_schedule("0 16 * * 5L"), "At 16:00 on the last Friday of the month"),
        (
            parse_schedule(every=timedelta(minutes=90), tz="Asia/Tokyo"),
            "Every 90 minutes, counted from 1970-01-01 00:00 UTC",
        ),
        (
            parse_schedule("@hourly", jitter=timedelta(seconds=30)),
            "At the start of every hour, each run delayed by up to 30 seconds of jitter",
        ),
        (
            parse_schedule("@daily", jitter=timedelta(milliseconds=1500)),
            "At 00:00 every day, each run delayed by up to 1.5 seconds of jitter",
        ),
    ],
)
def test_explain(schedule: Schedule, words: str) -> None:
    assert schedule.explain() == words
