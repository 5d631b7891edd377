"""Recurring schedules: expressions (cron, readable, intervals), time zones and DST.

`parse_schedule` validates an expression and returns a `Schedule`, whose `next_after` gives the
next occurrence in UTC and whose `explain` says it in plain words (docs/schedules.md).
"""

from jobmaster.errors import ScheduleError
from jobmaster.schedules.expressions import Schedule, parse_schedule

__all__ = ["Schedule", "ScheduleError", "parse_schedule"]
