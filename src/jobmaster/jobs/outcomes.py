"""What a handler may say about its job besides returning or raising an ordinary error.

`raise Discard("reason")` (or `return Discard(...)`) ends the job Failed at once, with no retry left
to spend: for input that can never succeed (a deleted account, a malformed document), where retrying
only delays the alert and loads the fleet.

`raise Snooze("30s")` (or `return Snooze(...)`) runs the job again after the delay without spending
a retry: for a resource that is not ready yet (a rate limit, a file still uploading). The run is
recorded as "snoozed" and the job's `attempt_limit` grows by one, as Oban's `{:snooze, s}` does, so
its history keeps every run.
"""

from __future__ import annotations

from datetime import timedelta

from jobmaster.durations import duration_within
from jobmaster.errors import ConfigError

#: The longest a job may snooze: longer waits belong to a scheduled job of their own.
MAX_SNOOZE_S = 366 * 86400.0


class Discard(Exception):
    """Fail the job now, without retrying it; `reason` becomes its error."""

    def __init__(self, reason: str = "discarded by the handler") -> None:
        super().__init__(reason)
        self.reason = reason


class Snooze(Exception):
    """Run the job again after `delay` (seconds, a `timedelta` or "30s"), without spending a retry."""

    def __init__(self, delay: float | str | timedelta) -> None:
        try:
            seconds = duration_within(delay, MAX_SNOOZE_S, "366 days", "Snooze: the delay")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        super().__init__(f"snoozed for {seconds:g}s")
        self.seconds = seconds
