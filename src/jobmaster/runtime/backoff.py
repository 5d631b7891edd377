"""Retry delays: exponential back-off with jitter, in seconds.

Jitter spreads the retries of jobs that failed together (an outage of a downstream service) so they do
not all hit that service again at the same instant.
"""

from __future__ import annotations

import random


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
