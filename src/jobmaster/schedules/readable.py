"""Readable expressions, as in the JobMaster product (`every 15 minutes`, `every day at 09:00`).

Each form compiles to the rules cron expressions use, so one DST rule and one `explain` serve all:
- `every [N] second(s) | minute(s) | hour(s)`: a clock-aligned cron step when N divides the next
  unit (60 seconds, 60 minutes, 24 hours), real time like any sub-hourly cron; otherwise an interval
  of N units anchored to the Unix epoch (interval.py);
- `every [N] day(s)`: `every day` is midnight local time; N days is an epoch-anchored interval.
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from jobmaster.errors import ScheduleError
from jobmaster.schedules.cron import CronRule
from jobmaster.schedules.interval import IntervalRule
from jobmaster.schedules.rules import Rule

_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_STEP = re.compile(r"^every(?: (\d+))? (second|minute|hour|day)s?$")


def is_readable(expression: str) -> bool:
    """Whether `expression` is meant as a readable one (it starts with a word we read)."""
    return expression.split(maxsplit=1)[0].lower() in ("every", "on")


def compile_readable(expression: str, zone: ZoneInfo) -> Rule:
    """The rule of a readable `expression`; a `ScheduleError` saying which part is wrong."""
    text = " ".join(expression.lower().split())
    step = _STEP.match(text)
    if step is None:
        raise ScheduleError(f"schedule {expression!r}: not a readable expression this version understands")
    count = int(step.group(1) or 1)
    unit = step.group(2)
    if count == 0:
        raise ScheduleError(f"schedule {expression!r}: the interval is zero; use a positive number")
    return _step_rule(count, unit, zone)


def _step_rule(count: int, unit: str, zone: ZoneInfo) -> Rule:
    if unit == "second" and 60 % count == 0 and count < 60:
        return CronRule.compile(f"*/{count} * * * * *", zone)
    if unit == "minute" and 60 % count == 0 and count < 60:
        return CronRule.compile(f"*/{count} * * * *", zone)
    if unit == "hour" and 24 % count == 0 and count < 24:
        return CronRule.compile(f"0 */{count} * * *", zone)
    if unit == "day" and count == 1:
        return CronRule.compile("0 0 * * *", zone)
    return IntervalRule(count * _UNIT_SECONDS[unit])
