"""Cron expressions (5 fields, or 6 with seconds first) through `cronsim`, with our DST rule on top.

cronsim parses and matches the fields (`L`, `LW`, `5L`, `MON#2`, names, ranges, steps); everything
else lives here so the library can be replaced behind `Rule`. We always hand cronsim six fields and
do the time-zone work ourselves, because cronsim applies its Debian-style DST handling to 5-field
expressions only, and for a 6-field fixed time in a spring-forward gap it silently skips the day.

The rule (Debian/Vixie cron, docs/schedules.md "Time zones and DST"):
- a *fixed-time* expression (neither the minute nor the hour field starts with `*`) is matched
  against the local wall clock: a time skipped by a spring-forward runs once, right after the gap;
  a time repeated by a fall-back runs once, on its first pass;
- any other expression (sub-hourly, `*/2` hours, `@hourly`) follows real time: it is matched
  against the local clock as the clock actually reads, so a gap has no occurrence and a repeated
  hour has its occurrences twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cronsim import CronSim, CronSimError
from cronsim.cronsim import FIELD_NAMES
from cronsim.explain import Expression

from jobmaster.errors import ScheduleError

NICKNAMES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_ALLOWED = {
    "second": "0-59",
    "minute": "0-59",
    "hour": "0-23",
    "day-of-month": "1-31, L or LW",
    "month": "1-12 or JAN-DEC",
    "day-of-week": "0-7 or SUN-SAT, 5L (last Friday), MON#2 (second Monday)",
}
# Any instant will do: validation only needs cronsim to parse and find one match.
_PROBE = datetime(2000, 1, 1)


@dataclass(frozen=True)
class CronRule:
    """One cron expression, as six fields (seconds first), evaluated in `zone`."""

    fields: tuple[str, ...]
    zone: ZoneInfo
    wall_clock: bool

    @classmethod
    def compile(cls, expression: str, zone: ZoneInfo, *, wall_clock: bool | None = None) -> CronRule:
        """Validate `expression` (a `ScheduleError` naming it and the bad field otherwise).
        `wall_clock` overrides the Debian test for readable forms, whose lines name their hours
        even when they are steps that follow real time."""
        text = NICKNAMES.get(expression.strip().lower(), expression)
        if text.startswith("@"):
            raise ScheduleError(
                f"schedule {expression!r}: unknown nickname; use one of {', '.join(NICKNAMES)}"
            )
        fields = text.upper().split()
        if len(fields) not in (5, 6):
            raise ScheduleError(
                f"schedule {expression!r}: a cron expression has 5 fields (minute hour day-of-month "
                f"month day-of-week) or 6 with seconds first, got {len(fields)}"
            )
        six = tuple(fields) if len(fields) == 6 else ("0", *fields)
        _check(expression, six)
        if wall_clock is None:
            wall_clock = not six[1].startswith("*") and not six[2].startswith("*")
        return cls(six, zone, wall_clock)

    def next_after(self, after: datetime) -> datetime:
        found = self._next_wall_clock(after) if self.wall_clock else self._next_real_time(after)
        if found is None:
            raise ScheduleError(f"schedule {' '.join(self.fields)!r}: no occurrence within 50 years")
        return found

    def explain(self) -> str:
        return Expression(list(self.fields)).explain()

    def _next_wall_clock(self, after: datetime) -> datetime | None:
        # Wall-clock times map to instants monotonically (a gap to its end, a repeated time to its
        # first pass), so starting from `after`'s own wall time misses nothing.
        start = after.astimezone(self.zone).replace(tzinfo=None)
        for wall in CronSim(" ".join(self.fields), start):
            moment = wall_to_instant(wall, self.zone)
            if moment > after:
                return moment
        return None

    def _next_real_time(self, after: datetime) -> datetime | None:
        for local in CronSim(" ".join(self.fields), after.astimezone(self.zone)):
            moment = local.astimezone(UTC)
            # A local time inside a gap (a midnight DST change) never happened: no occurrence.
            if moment > after and moment.astimezone(self.zone).replace(tzinfo=None) == local.replace(
                tzinfo=None
            ):
                return moment
        return None


def wall_to_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant (UTC) a naive local `wall` time means under the fixed-time rule: its first pass
    when the clock shows it twice, the end of the gap when the clock skips it."""
    first = wall.replace(tzinfo=zone, fold=0)
    moment = first.astimezone(UTC)
    if moment.astimezone(zone).replace(tzinfo=None) == wall:
        return moment
    return _gap_end(wall.replace(tzinfo=zone, fold=1).astimezone(UTC), moment, zone)


def _gap_end(before_gap: datetime, after_gap: datetime, zone: ZoneInfo) -> datetime:
    """The first instant with the post-transition offset, between two instants that bracket it."""
    old_offset = before_gap.astimezone(zone).utcoffset()
    low, high = before_gap, after_gap
    while high - low > timedelta(seconds=1):
        middle = low + timedelta(seconds=(high - low) // timedelta(seconds=2))
        if middle.astimezone(zone).utcoffset() == old_offset:
            low = middle
        else:
            high = middle
    return high


def _check(expression: str, six: tuple[str, ...]) -> None:
    """Let cronsim parse and match once; turn its terse error into one naming the field."""
    try:
        next(CronSim(" ".join(six), _PROBE))
    except CronSimError as exc:
        name = str(exc).removeprefix("Bad ")
        if name in FIELD_NAMES:
            text = six[FIELD_NAMES.index(name)]
            problem = f"bad {name} field {text!r} (allowed: {_ALLOWED[name]})"
        else:
            problem = str(exc)
        raise ScheduleError(f"schedule {expression!r}: {problem}") from None
    except StopIteration:
        raise ScheduleError(f"schedule {expression!r}: never occurs") from None
