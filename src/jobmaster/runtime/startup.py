"""Start-up that rides out a master or an agent that is not up yet.

A worker started with its database (a `docker compose up`, a host reboot) would otherwise exit at
once and need an orchestrator's restart loop. Each step of start-up (connect, migrations and stream
lookup, each agent, the worker's registration and its buckets) is retried while its failure is one
a later try can fix: a server not reachable, "the database system is starting up", or a JetStream
cluster electing a leader. All steps share one deadline, the start timeout. Errors no retry fixes
(a refused password, an unknown database, a bad URL, a schema newer than this code) stop start-up
at once. One line says what is awaited and why, one says when it answered.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable

from jobmaster.config.urls import describe, redact
from jobmaster.errors import StoreError, UnavailableError

log = logging.getLogger("jobmaster.connection")

#: Back-off between tries: from a quarter second, doubling, at most 10 s, each spread by jitter so a
#: fleet started together does not knock on the server in step.
FIRST_DELAY = 0.25
MAX_DELAY = 10.0


def can_wait_for(exc: BaseException) -> bool:
    """Whether a later try may succeed: the server was not reached, was not ready, or answered
    that it cannot yet (a JetStream cluster between leaders)."""
    if isinstance(exc, StoreError):
        return exc.transient
    return isinstance(exc, UnavailableError | OSError | TimeoutError)


class StartWait:
    """The start-up's time budget: 0 fails at once, None waits for as long as it takes."""

    def __init__(self, timeout: float | None) -> None:
        self.timeout = timeout
        self._deadline = None if timeout is None else time.monotonic() + timeout

    async def step(self, service: str, url: str, attempt: Callable[[], Awaitable[object]]) -> None:
        """Run `attempt` until it succeeds, waiting for `service` at `url` between tries."""
        delay, waited_since = FIRST_DELAY, None
        while True:
            try:
                await attempt()
            except Exception as exc:
                if self.timeout == 0 or not can_wait_for(exc):
                    raise
                now = time.monotonic()
                if self._deadline is not None and now >= self._deadline:
                    raise UnavailableError(
                        f"{service} at {redact(url)} did not answer within the start timeout of "
                        f"{self.timeout:g}s: {describe(exc)}"
                    ) from exc
                if waited_since is None:
                    waited_since = now
                    limit = "" if self._deadline is None else f" for up to {self.timeout:g}s"
                    log.warning(
                        "waiting for %s at %s%s: %s; retrying with back-off",
                        service,
                        redact(url),
                        limit,
                        describe(exc),
                    )
                pause = delay * random.uniform(0.5, 1.0)
                if self._deadline is not None:
                    pause = min(pause, self._deadline - now)  # one last try at the deadline itself
                await asyncio.sleep(pause)
                delay = min(MAX_DELAY, delay * 2)
                continue
            if waited_since is not None:
                log.info(
                    "%s at %s answers after %.1fs; starting",
                    service,
                    redact(url),
                    time.monotonic() - waited_since,
                )
            return
