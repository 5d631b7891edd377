"""`Schedule`: a recurrence expression and its time zone, validated once and compiled to a `Rule`.

Three spellings compile to the one type: cron (`0 9 * * MON-FRI`, `*/10 * * * * *`, `@daily`),
readable expressions (`every 15 minutes`, `every monday at 08:30`), and intervals
(`parse_schedule(every=timedelta(minutes=90))`, stored as the readable `every 5400 seconds`).
A schedule is only its text, zone and jitter, so storing those three and parsing them again gives
an equal schedule in any process.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jobmaster.errors import ScheduleError
from jobmaster.schedules.cron import CronRule
from jobmaster.schedules.interval import IntervalRule, describe_seconds
from jobmaster.schedules.readable import compile_readable, is_readable
from jobmaster.schedules.rules import Rule, as_utc

_HASH_SPAN = 2**64


@dataclass(frozen=True)
class Schedule:
    """A validated recurrence: `expression` evaluated in the IANA zone `tz`, each occurrence
    optionally delayed by up to `jitter` (deterministically per job key, see `jittered`)."""

    expression: str
    tz: str = "UTC"
    jitter: timedelta | None = None
    _rule: Rule = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_rule", _compile(self.expression, self.tz, self.jitter))

    def next_after(self, after: datetime) -> datetime:
        """The first occurrence strictly after the aware `after`, as an aware UTC datetime (jitter
        not applied: the occurrence time is the schedule's identity for that run)."""
        return self._rule.next_after(as_utc(after))

    def jittered(self, occurrence: datetime, key: str) -> datetime:
        """When to run `occurrence`: later by a share of `jitter` fixed by `key` and the occurrence,
        so every process computes the same time and runs of one schedule spread apart."""
        moment = as_utc(occurrence)
        if self.jitter is None:
            return moment
        digest = hashlib.blake2b(f"{key}|{moment.isoformat()}".encode(), digest_size=8).digest()
        share = int.from_bytes(digest, "big") / _HASH_SPAN
        return moment + timedelta(microseconds=int(self.jitter // timedelta(microseconds=1) * share))

    def explain(self) -> str:
        """The schedule in plain words, with its zone and jitter."""
        words = self._rule.explain()
        if self.tz != "UTC" and not _is_interval(self._rule):
            words += f" ({self.tz} time)"
        if self.jitter is not None:
            words += f", each run delayed by up to {_describe(self.jitter)} of jitter"
        return words


def parse_schedule(
    expression: str | None = None,
    *,
    tz: str = "UTC",
    every: timedelta | None = None,
    jitter: timedelta | None = None,
) -> Schedule:
    """A `Schedule` from a cron or readable `expression`, or from an interval `every`; a
    `ScheduleError` naming the input and what is wrong with it otherwise."""
    if every is None and expression is not None:
        text = " ".join(expression.split()) if isinstance(expression, str) else expression
        return Schedule(text, tz, jitter)
    if every is not None and expression is None:
        return Schedule(f"every {_interval_seconds(every)} seconds", tz, jitter)
    raise ScheduleError("a schedule needs either an expression or every=, not both and not neither")


def _compile(expression: str, tz: str, jitter: timedelta | None) -> Rule:
    if not isinstance(expression, str):
        raise ScheduleError(f"a schedule expression is a string, got {type(expression).__name__}")
    if not expression.strip():
        raise ScheduleError(f"schedule {expression!r}: the expression is empty")
    zone = _zone(expression, tz)
    if jitter is not None and (not isinstance(jitter, timedelta) or jitter <= timedelta(0)):
        raise ScheduleError(f"schedule {expression!r}: jitter must be a positive timedelta, got {jitter!r}")
    if is_readable(expression):
        return compile_readable(expression, zone)
    return CronRule.compile(expression, zone)


def _zone(expression: str, tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ScheduleError(
            f"schedule {expression!r}: unknown time zone {tz!r} (use an IANA name such as Europe/Riga)"
        ) from None


def _interval_seconds(every: timedelta) -> int:
    if not isinstance(every, timedelta):
        raise ScheduleError(f"every= must be a timedelta, got {every!r}")
    if every < timedelta(seconds=1) or every % timedelta(seconds=1):
        raise ScheduleError(f"every={every!r}: an interval is a whole number of seconds, at least 1")
    return every // timedelta(seconds=1)


def _is_interval(rule: Rule) -> bool:
    return isinstance(rule, IntervalRule)


def _describe(span: timedelta) -> str:
    if span % timedelta(seconds=1):
        return f"{span.total_seconds():g} seconds"
    return describe_seconds(span // timedelta(seconds=1))
