"""The small interface every compiled schedule meets, so the cron library behind it can be replaced.

A rule answers two questions: when is the next occurrence strictly after an instant, and how do
plain words describe it. Cron expressions, readable expressions and intervals all compile to rules;
`Schedule` only ever talks to this protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol


class Rule(Protocol):
    """A compiled recurrence: pure, deterministic, safe to share between threads."""

    def next_after(self, after: datetime) -> datetime:
        """The first occurrence strictly after `after` (aware, UTC), as an aware UTC datetime."""
        ...

    def explain(self) -> str:
        """The recurrence in plain words, without the time zone (the schedule adds it)."""
        ...


@dataclass(frozen=True)
class AnyOf:
    """Occurrences of any of several rules (a readable window that one cron line cannot express);
    an instant two rules share is one occurrence."""

    rules: tuple[Rule, ...]
    words: str

    def next_after(self, after: datetime) -> datetime:
        return min(rule.next_after(after) for rule in self.rules)

    def explain(self) -> str:
        return self.words


def as_utc(moment: datetime) -> datetime:
    """`moment` in UTC; a naive datetime is refused because its instant is unknown."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got the naive {moment.isoformat()}")
    return moment.astimezone(UTC)
