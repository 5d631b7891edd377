"""Retry policy: exponential back-off with jitter, in seconds.

Jitter spreads the retries of jobs that failed together (an outage of a downstream service) so they do
not all hit that service again at the same instant.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from jobmaster.durations import parse_duration
from jobmaster.errors import ConfigError


def retry_delay(
    failures: int,
    base: float,
    cap: float,
    jitter: float,
    rng: random.Random | None = None,
) -> float:
    """Delay before the next attempt after `failures` failed runs (1 for the first failure).

    base * 2^(failures-1), capped at `cap`, then scaled by a random factor in [1-jitter, 1+jitter]
    and capped again so the cap is a true upper bound.
    """
    if failures < 1:
        raise ValueError(f"failures must be >= 1, got {failures}")
    exponent = min(failures - 1, 62)
    delay = min(cap, base * (2.0**exponent))
    spread = (rng or random).uniform(1.0 - jitter, 1.0 + jitter)
    return min(cap, delay * spread)


@dataclass(slots=True, frozen=True, init=False)
class RetryPolicy:
    """How long a failed job waits before its next run: `base` x 2^(failures - 1), at most `cap`,
    spread by +-`jitter`. The cluster's `retry_backoff_base`, `retry_backoff_cap` and `retry_jitter`
    make the default; `@jm.handler(retry=RetryPolicy(...))` sets one for a handler."""

    base: float
    cap: float
    jitter: float

    def __init__(
        self, base: float | str | timedelta = 1.0, cap: float | str | timedelta = 300.0, jitter: float = 0.2
    ) -> None:
        try:
            base_s, cap_s = parse_duration(base), parse_duration(cap)
        except ValueError as exc:
            raise ConfigError(f"RetryPolicy: {exc}") from None
        if not 0 < base_s <= cap_s:
            raise ConfigError(f"RetryPolicy: need 0 < base <= cap, got base={base!r}, cap={cap!r}")
        if isinstance(jitter, bool) or not 0.0 <= jitter <= 1.0:
            raise ConfigError(f"RetryPolicy: jitter must be in 0..1, got {jitter!r}")
        object.__setattr__(self, "base", base_s)
        object.__setattr__(self, "cap", cap_s)
        object.__setattr__(self, "jitter", float(jitter))

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after the `failures`-th failed run."""
        return retry_delay(failures, self.base, self.cap, self.jitter, rng)

    def retry_at(self, now: float, failures: int, rng: random.Random | None = None) -> float:
        """Due time of the next run after `failures` runs that did not succeed (1 for the first)."""
        return now + self.delay(failures, rng)


#: The cluster settings' defaults (`ClusterConfig.retry_policy` gives a cluster's own).
DEFAULT_RETRY = RetryPolicy()
