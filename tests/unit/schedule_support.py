"""What the schedule tests share: instants written briefly and occurrences read on two clocks."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from jobmaster import Schedule


def utc(text: str) -> datetime:
    """`2026-03-08T07:00` as an aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def occurrences(schedule: Schedule, after: str, count: int) -> list[str]:
    """The next `count` occurrences after the UTC instant `after`, each as
    `MM-DDTHH:MM:SSZ local HH:MM:SS+offset`, so a test shows both the instant and the local clock."""
    zone = ZoneInfo(schedule.tz)
    moment = utc(after)
    found = []
    for _ in range(count):
        moment = schedule.next_after(moment)
        assert moment.tzinfo is UTC
        found.append(f"{moment:%m-%dT%H:%M:%S}Z {moment.astimezone(zone):%H:%M:%S%z}")
    return found
