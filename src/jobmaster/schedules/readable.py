"""Readable expressions, as in the JobMaster product (`every 15 minutes`, `every day at 09:00`).

Every form compiles to cron lines (one `CronRule`, or several when one line cannot say it) or to an
epoch-anchored interval, so the DST rule, `next_after` and `explain` are shared with cron. The forms
(docs/schedules.md "Expressions" has them with examples):

- steps: `every [N] second(s) | minute(s) | hour(s) [between HH:MM and HH:MM] [on DAYS]`. Steps
  count from 00:00 local time (so N must divide 60 seconds, 60 minutes or 24 hours), or from the
  window's start each day when a window or days are given; without either, a step that does not
  divide its unit is an interval anchored to the Unix epoch (`every 90 minutes`), as is
  `every N days`. Steps follow real time across DST changes;
- days: `every day | weekday | weekend | DAYS [between DAY and DAY] [at TIMES]` (midnight when no
  time is given), e.g. `every monday and thursday at 08:30, 17:00`;
- months: `on the last day | last weekday | 1st [and 15th] | first monday | last friday of the
  month [at TIMES]`, also written `every month on the ...`;
- years: `every year on december 25 [at TIMES]` (or `on 25 december`).

Times are `HH:MM`, `HH:MM:SS`, `9am`, `5:30pm`, `noon` or `midnight`; days are names (`monday`,
`mon`, `mondays`), `weekdays`, `weekends`, lists (`mon, wed and fri`) and ranges (`mon-fri`,
`monday to friday`). Day, month and year forms are fixed times of the local clock.
"""

from __future__ import annotations

import re
from itertools import pairwise
from zoneinfo import ZoneInfo

from jobmaster.errors import ScheduleError
from jobmaster.schedules.cron import CronRule
from jobmaster.schedules.interval import IntervalRule, describe_seconds
from jobmaster.schedules.rules import AnyOf, Rule

_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_UNIT_SPAN = {"second": 60, "minute": 3600, "hour": 86400}
_DAY_NAMES = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_MONTH_NAMES = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_ORDINALS = ("first", "second", "third", "fourth", "fifth")
_DAY_GROUPS = {"day": tuple(range(7)), "weekday": (1, 2, 3, 4, 5), "weekend": (0, 6)}
_FORMS = (
    "every [N] seconds|minutes|hours [between HH:MM and HH:MM] [on DAYS]; "
    "every day|weekday|weekend|DAYS [at HH:MM]; "
    "on the last day|last weekday|1st|first monday of the month [at HH:MM]; "
    "every year on december 25 [at HH:MM]"
)
_STEP = re.compile(r"every(?: (\d+))? (second|minute|hour|day)s?")
_TIME = re.compile(r"(\d{1,2})(?::(\d{2}))?(?::(\d{2}))?(am|pm)?")
_NTH = re.compile(r"(\d{1,2})(?:st|nd|rd|th)?")
_SECONDS_PER_DAY = 86400


class _Refused(Exception):
    """A part of the expression is wrong; `compile_readable` adds the expression to the message."""


def is_readable(expression: str) -> bool:
    """Whether `expression` is meant as a readable one (it starts with a word we read)."""
    return expression.split(maxsplit=1)[0].lower() in ("every", "on")


def compile_readable(expression: str, zone: ZoneInfo) -> Rule:
    """The rule of a readable `expression`; a `ScheduleError` naming it and the wrong part."""
    try:
        return _compile(_normalise(expression), zone)
    except _Refused as exc:
        raise ScheduleError(f"schedule {expression!r}: {exc}") from None


def _normalise(expression: str) -> str:
    text = " ".join(expression.lower().replace(",", " , ").split())
    text = re.sub(r"(\d) (am|pm)\b", r"\1\2", text)
    return text.replace(" ,", ",")


def _compile(text: str, zone: ZoneInfo) -> Rule:
    text, times = _take_times(text)
    if text.startswith("on the "):
        day_of_month, day_of_week = _month_days(_of_the_month(text.removeprefix("on the ")))
        return _at_times(times, day_of_month, "*", day_of_week, zone)
    if text.startswith("every month on the "):
        day_of_month, day_of_week = _month_days(text.removeprefix("every month on the "))
        return _at_times(times, day_of_month, "*", day_of_week, zone)
    if text.startswith("every year on "):
        day_of_month, month = _year_day(text.removeprefix("every year on "))
        return _at_times(times, day_of_month, month, "*", zone)
    text, between = _take_between(text)
    text, on_days = _take_on_days(text)
    step = _STEP.fullmatch(text)
    if step is None:
        return _weekly(text, times, between, on_days, zone)
    count, unit = int(step.group(1) or 1), step.group(2)
    if count == 0:
        raise _Refused("the interval is zero; use a positive number")
    if unit != "day":
        if times is not None:
            raise _Refused("a step has no `at` time; use `between HH:MM and HH:MM` to bound it")
        return _step(count, unit, between, on_days, zone)
    if count == 1:
        return _weekly("every day", times, between, on_days, zone)
    if times is not None or between is not None or on_days is not None:
        raise _Refused("`every N days` is an interval of real time and takes no time or days")
    return IntervalRule(count * _UNIT_SECONDS["day"])


def _weekly(
    text: str,
    times: tuple[int, ...] | None,
    between: tuple[str, str] | None,
    on_days: tuple[int, ...] | None,
    zone: ZoneInfo,
) -> Rule:
    """`every DAYS [between DAY and DAY] [at TIMES]`: fixed times on days of the week."""
    if not text.startswith("every "):
        raise _Refused(f"not a readable expression; the forms are: {_FORMS}")
    try:
        days = _days(text.removeprefix("every "))
    except _Refused as exc:
        raise _Refused(f"{exc}; the forms are: {_FORMS}") from None
    if on_days is not None:
        raise _Refused("give the days once, after `every`")
    if between is not None:
        days = _day_range(between, days)
    return _at_times(times, "*", "*", _cron_days(days), zone)


def _take_times(text: str) -> tuple[str, tuple[int, ...] | None]:
    head, found, tail = text.rpartition(" at ")
    if not found:
        return text, None
    return head, tuple(sorted({_time(part) for part in _items(tail)}))


def _take_between(text: str) -> tuple[str, tuple[str, str] | None]:
    match = re.search(r" between (\S+) and (\S+)(?= on |$)", text)
    if match is None:
        return text, None
    return text[: match.start()] + text[match.end() :], (match.group(1), match.group(2))


def _take_on_days(text: str) -> tuple[str, tuple[int, ...] | None]:
    head, found, tail = text.partition(" on ")
    return (head, _days(tail)) if found else (text, None)


def _step(
    count: int, unit: str, between: tuple[str, str] | None, on_days: tuple[int, ...] | None, zone: ZoneInfo
) -> Rule:
    seconds = count * _UNIT_SECONDS[unit]
    if between is None and on_days is None:
        if _UNIT_SPAN[unit] % seconds or seconds == _UNIT_SPAN[unit]:
            return IntervalRule(seconds)
        return CronRule.compile(_step_line(count, unit), zone, wall_clock=False)
    start, end = (_time(between[0]), _time(between[1])) if between else (0, _SECONDS_PER_DAY - 1)
    if end <= start:
        raise _Refused("the window ends before it starts (a window cannot cross midnight)")
    if seconds > _SECONDS_PER_DAY:
        raise _Refused("a step within a day is at most 24 hours")
    days = on_days if on_days is not None else _DAY_GROUPS["day"]
    points = range(start, end + 1, seconds)
    words = (
        f"Every {describe_seconds(seconds)} from {_clock(points[0])} through {_clock(points[-1])}, "
        f"{_describe_days(days)}"
    )
    rule = _lines(points, "*", "*", _cron_days(days), zone, wall_clock=False)
    return AnyOf((rule,), words)


_STEP_LINES = {"second": "{} * * * * *", "minute": "0 {} * * * *", "hour": "0 0 {} * * *"}


def _step_line(count: int, unit: str) -> str:
    """The 6-field cron line of a step that divides its unit, counted from 00:00 local time."""
    return _STEP_LINES[unit].format("*" if count == 1 else f"*/{count}")


def _at_times(
    times: tuple[int, ...] | None, day_of_month: str, month: str, day_of_week: str, zone: ZoneInfo
) -> Rule:
    return _lines(times or (0,), day_of_month, month, day_of_week, zone, wall_clock=True)


def _lines(
    points: range | tuple[int, ...],
    day_of_month: str,
    month: str,
    day_of_week: str,
    zone: ZoneInfo,
    *,
    wall_clock: bool,
) -> Rule:
    """Cron lines whose union is the times of day `points` (seconds after midnight), factored
    seconds, then minutes, then hours, so that common cases stay one line."""
    seconds_at: dict[tuple[int, int], list[int]] = {}
    for point in points:
        hour, rest = divmod(point, 3600)
        minute, second = divmod(rest, 60)
        seconds_at.setdefault((hour, minute), []).append(second)
    minutes_at: dict[tuple[int, tuple[int, ...]], list[int]] = {}
    for (hour, minute), second_list in seconds_at.items():
        minutes_at.setdefault((hour, tuple(second_list)), []).append(minute)
    hours_at: dict[tuple[tuple[int, ...], tuple[int, ...]], list[int]] = {}
    for (hour, seconds), minutes in minutes_at.items():
        hours_at.setdefault((tuple(minutes), seconds), []).append(hour)
    rules = tuple(
        CronRule.compile(
            f"{_cron_list(seconds)} {_cron_list(minutes)} {_cron_list(hours)} "
            f"{day_of_month} {month} {day_of_week}",
            zone,
            wall_clock=wall_clock,
        )
        for (minutes, seconds), hours in hours_at.items()
    )
    if len(rules) == 1:
        return rules[0]
    explained = [rule.explain() for rule in rules]
    return AnyOf(rules, "; ".join([explained[0], *(part[0].lower() + part[1:] for part in explained[1:])]))


def _cron_list(values: list[int] | tuple[int, ...], *, steps: bool = True) -> str:
    """`[8, 10, 12]` as `8-12/2` (unless not `steps`), `[1, 2, 3, 7]` as `1-3,7`: short cron field
    text, which cronsim's explanation then reads well."""
    ordered = sorted(set(values))
    if steps and len(ordered) >= 3 and len({b - a for a, b in pairwise(ordered)}) == 1:
        step = ordered[1] - ordered[0]
        return f"{ordered[0]}-{ordered[-1]}" + ("" if step == 1 else f"/{step}")
    runs: list[list[int]] = []
    for value in ordered:
        if runs and value == runs[-1][-1] + 1:
            runs[-1].append(value)
        else:
            runs.append([value])
    return ",".join(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}" for run in runs)


def _cron_days(days: tuple[int, ...]) -> str:
    return "*" if len(days) == 7 else _cron_list(days, steps=False)


def _clock(point: int) -> str:
    """Seconds after midnight as `HH:MM`, or `HH:MM:SS` when the seconds matter."""
    hours, rest = divmod(point, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours:02}:{minutes:02}" + (f":{seconds:02}" if seconds else "")


def _describe_days(days: tuple[int, ...]) -> str:
    if len(days) == 7:
        return "every day"
    names = [_DAY_NAMES[day].capitalize() for day in sorted(days, key=lambda day: (day - 1) % 7)]
    if len(names) > 2 and days == tuple(range(days[0], days[-1] + 1)):
        return f"{names[0]} through {names[-1]}"
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]


def _items(text: str) -> list[str]:
    """`a, b and c` as `[a, b, c]`."""
    parts = [part.strip() for part in re.split(r",| and ", text)]
    if not all(parts):
        raise _Refused(f"an empty item in {text!r}")
    return parts


def _time(text: str) -> int:
    """Seconds after midnight of `09:30`, `09:30:15`, `9am`, `5:30pm`, `noon`, `midnight`."""
    named = {"noon": 12 * 3600, "midnight": 0}
    if text in named:
        return named[text]
    match = _TIME.fullmatch(text)
    if match is None or (match.group(2) is None and match.group(4) is None):
        raise _Refused(f"bad time {text!r} (use HH:MM, HH:MM:SS, 9am or 5:30pm)")
    hour, minute, second = (int(match.group(i) or 0) for i in (1, 2, 3))
    if match.group(4):
        if not 1 <= hour <= 12:
            raise _Refused(f"bad time {text!r}: the hour of an am/pm time is 1-12")
        hour = hour % 12 + (12 if match.group(4) == "pm" else 0)
    if hour > 23 or minute > 59 or second > 59:
        raise _Refused(f"bad time {text!r}: past 23:59:59")
    return hour * 3600 + minute * 60 + second


def _days(text: str) -> tuple[int, ...]:
    """Days of the week (0 = Sunday) of `monday`, `weekdays`, `mon, wed and fri`, `mon-fri`."""
    found: set[int] = set()
    for item in _items(text):
        ends = re.split(r"-| to | through ", item, maxsplit=1)
        if len(ends) == 2:
            found.update(_day_range(ends, None))
        else:
            found.update(_day_group(item))
    return tuple(sorted(found))


def _day_range(ends: tuple[str, str] | list[str], every: tuple[int, ...] | None) -> tuple[int, ...]:
    """The days from one named day to another (wrapping past Saturday), as in NaturalCron's
    `every day between mon and fri`; only `every day` may be narrowed this way."""
    if every is not None and len(every) != 7:
        raise _Refused("`between DAY and DAY` narrows `every day`; name the days once")
    first, last = (_day_number(end) for end in ends)
    return tuple((first + offset) % 7 for offset in range((last - first) % 7 + 1))


def _day_group(text: str) -> tuple[int, ...]:
    singular = text.removesuffix("s")
    if singular in _DAY_GROUPS:
        return _DAY_GROUPS[singular]
    if singular == "weekend day":
        return _DAY_GROUPS["weekend"]
    return (_day_number(text),)


def _day_number(text: str) -> int:
    number = _name_number(text.removesuffix("s") if text.endswith("days") else text, _DAY_NAMES)
    if number is None:
        raise _Refused(f"unknown day {text!r} (use monday, mon, weekdays, weekends ...)")
    return number


def _name_number(word: str, names: tuple[str, ...]) -> int | None:
    """The index of the name `word` spells in full or by its first three letters or more."""
    return next((i for i, name in enumerate(names) if len(word) >= 3 and name.startswith(word)), None)


def _of_the_month(text: str) -> str:
    """The days of `last day of the month` (also `of every month`, `of each month`)."""
    spec, found, month = text.rpartition(" of ")
    if not found or month not in ("the month", "every month", "each month"):
        raise _Refused("a monthly form ends with `of the month`, e.g. `on the last day of the month`")
    return spec


def _month_days(spec: str) -> tuple[str, str]:
    """Cron day-of-month and day-of-week fields of `last day`, `1st and 15th`, `first monday`."""
    named = {"last day": ("L", "*"), "last weekday": ("LW", "*")}
    if spec in named:
        return named[spec]
    words = spec.split()
    if len(words) == 2 and (words[0] in _ORDINALS or words[0] == "last"):
        day = _day_number(words[1])
        return "*", f"{day}L" if words[0] == "last" else f"{day}#{_ORDINALS.index(words[0]) + 1}"
    days = [_day_of_month(item) for item in _items(spec.removeprefix("the "))]
    return _cron_list(days, steps=False), "*"


def _day_of_month(text: str) -> int:
    match = _NTH.fullmatch(text.removeprefix("the ").removesuffix(" day"))
    if match is None or not 1 <= int(match.group(1)) <= 31:
        raise _Refused(f"bad day of the month {text!r} (use 1st-31st, last day, last weekday, first monday)")
    return int(match.group(1))


def _year_day(text: str) -> tuple[str, str]:
    """Cron day-of-month and month fields of `december 25`, `dec 25th` or `25 december`."""
    words = text.split()
    if len(words) != 2:
        raise _Refused(f"bad date {text!r} (use `december 25` or `25 december`)")
    month_word, day_word = words if not words[0][0].isdigit() else words[::-1]
    month = _name_number(month_word, _MONTH_NAMES)
    if month is None:
        raise _Refused(f"unknown month {month_word!r}")
    day = _day_of_month(day_word)
    if day > _MONTH_DAYS[month]:
        raise _Refused(f"{_MONTH_NAMES[month]} has no day {day}")
    return str(day), str(month + 1)
