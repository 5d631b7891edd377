"""Fixed intervals of real time, anchored to the Unix epoch.

The anchor is what lets every process agree on the occurrences without sharing any state: an
interval of `every` seconds occurs at 1970-01-01T00:00:00Z + k * every, for every whole k. So
`every=timedelta(hours=1)` occurs on the hour in UTC whatever the time zone, and never moves with
a restart, a deploy or daylight saving (docs/schedules.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNITS = ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second"))


@dataclass(frozen=True)
class IntervalRule:
    """Every `seconds` seconds of real time from the epoch."""

    seconds: int

    def next_after(self, after: datetime) -> datetime:
        step = timedelta(seconds=self.seconds)
        return EPOCH + ((after - EPOCH) // step + 1) * step

    def explain(self) -> str:
        return f"Every {describe_seconds(self.seconds)}, counted from 1970-01-01 00:00 UTC"


def describe_seconds(seconds: int) -> str:
    """`5400` as `90 minutes`, `86400` as `day`: the largest unit that divides it exactly."""
    size, unit = next((size, unit) for size, unit in _UNITS if seconds % size == 0)
    count = seconds // size
    return unit if count == 1 else f"{count} {unit}s"
