"""Django's task priority (-100..100, larger runs sooner) onto jobmaster's five priorities.

Five bands of about 40 values each, symmetric around Django's default 0 (which is Medium, as a job
scheduled without a priority is):

| Django priority | jobmaster priority |
|---|---|
| 60 .. 100 | Critical |
| 20 .. 59 | High |
| -19 .. 19 | Medium |
| -59 .. -20 | Low |
| -100 .. -60 | VeryLow |

The Django value itself travels with the job, so `get_result` gives back the exact number.
"""

from __future__ import annotations

from jobmaster.contrib.django._compat import TASK_MAX_PRIORITY, TASK_MIN_PRIORITY, InvalidTask
from jobmaster.jobs.model import Priority

#: The lowest Django priority of each band, highest band first; below the last one is VeryLow.
BANDS: tuple[tuple[int, Priority], ...] = (
    (60, Priority.Critical),
    (20, Priority.High),
    (-19, Priority.Medium),
    (-59, Priority.Low),
)


def to_priority(django_priority: int) -> Priority:
    """The jobmaster priority of a Django one; out of range (or not a whole number) is refused."""
    if (
        isinstance(django_priority, bool)
        or not isinstance(django_priority, int)
        or not TASK_MIN_PRIORITY <= django_priority <= TASK_MAX_PRIORITY
    ):
        raise InvalidTask(
            f"priority must be a whole number in {TASK_MIN_PRIORITY}..{TASK_MAX_PRIORITY}"
            f" (larger runs sooner), got {django_priority!r}"
        )
    for lowest, priority in BANDS:
        if django_priority >= lowest:
            return priority
    return Priority.VeryLow
