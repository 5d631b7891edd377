"""Which occurrences of a due schedule become jobs: pure arithmetic over the schedule's timing, its
catch-up policy and the clock, so every rule is testable without a database.

A schedule row holds `next_at`, the first occurrence no scheduler has dealt with yet. A pass at `now`
looks at every occurrence from `next_at` up to `now`:

- an occurrence reached within `ON_TIME_S` of its time is on time; one reached later was missed
  while no scheduler ran (a deploy, an outage);
- `skip` runs the latest due occurrence only if the first one was reached on time (no scheduler was
  away when it came due), `latest` runs the latest occurrence within the catch-up window, `all`
  runs every occurrence within the window, the latest `limit` of them;
- every due occurrence not run is counted as missed, and `next_at` moves past `now`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime

from jobmaster.schedules.declarations import CatchUpPolicy
from jobmaster.schedules.expressions import Schedule

#: An occurrence a scheduler reaches this many seconds late or less is on time (a pass of thousands
#: of schedules, or a scheduler starting up, takes a moment); a later one was missed.
ON_TIME_S = 10.0
#: The most occurrences one pass of one schedule walks one by one. A longer gap (an every-second
#: schedule after a day down) is jumped over to the start of the catch-up window; the occurrences
#: jumped over count as missed only as far as they were walked, so `missed` is then a lower bound.
SCAN_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class Plan:
    """The outcome of one pass over one due schedule."""

    #: Occurrences to insert a job for, oldest first (UTC epoch seconds).
    runs: tuple[float, ...]
    #: Due occurrences not run.
    missed: int
    #: The latest due occurrence: the last scheduled one, run or not.
    last_at: float
    #: The first occurrence after `now`.
    next_at: float


def at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


@functools.lru_cache(maxsize=1024)
def iso(ts: float) -> str:
    """An occurrence in ISO 8601 UTC, as jobs carry it (the schedules due at once share it)."""
    return at(ts).isoformat()


@functools.lru_cache(maxsize=65536)
def first_after(timing: Schedule, ts: float) -> float:
    """The first occurrence strictly after `ts`; cached, since the schedules of one expression due
    at one time all ask the same question in a pass."""
    return timing.next_after(at(ts)).timestamp()


def plan(timing: Schedule, policy: CatchUpPolicy, next_at: float, now: float) -> Plan | None:
    """What to do with a schedule whose next occurrence is `next_at`; None if it is not due."""
    if next_at > now:
        return None
    window_start = now - policy.window_s
    due: list[float] = []
    walked = 0
    last = occurrence = next_at
    while occurrence <= now:
        walked += 1
        last = occurrence
        if occurrence >= window_start:
            due.append(occurrence)
            occurrence = first_after(timing, occurrence)
        elif walked >= SCAN_LIMIT:
            occurrence = first_after(timing, max(occurrence, window_start - 1e-6))
        else:
            occurrence = first_after(timing, occurrence)
    runs = _chosen(due, policy, now - next_at > ON_TIME_S)
    return Plan(tuple(runs), walked - len(runs), last, occurrence)


def _chosen(due: list[float], policy: CatchUpPolicy, late: bool) -> list[float]:
    if not due or (late and policy.mode == "skip"):
        return []
    return due[-policy.limit :] if policy.mode == "all" else due[-1:]
