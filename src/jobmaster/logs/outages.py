"""A server going down and coming back, logged once per change, not once per retry.

Every loop that talks to the master or an agent (heartbeat, claims, intake, completions, duties)
retries with back-off through an outage; each reports its failures and successes here, by the
service it talks to. The first failure of a service that was up is a WARNING, the first success of
one that was down is an INFO with how long it was down; the rest go to DEBUG with their tracebacks.

Right after a server comes back, each pooled connection that the outage broke fails once when it is
next used (asyncpg and asyncmy find out only then), while fresh ones already work: for
`SETTLE_S` after a service answers again, failures are kept at DEBUG unless they last, so a restart
reads as one line down and one line up.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from jobmaster.config.urls import describe

log = logging.getLogger("jobmaster.connection")

#: The service name of the master in these lines; an agent's is `agent 'name'`.
MASTER = "the master"
#: How long after a service answers again its failures count as stale connections being replaced.
SETTLE_S = 10.0


def agent_service(name: str) -> str:
    return f"agent {name!r}"


@dataclass(slots=True)
class _Down:
    since: float
    failures: int
    #: Still settling after a recovery: logged only if it lasts past `SETTLE_S`.
    quiet: bool


class Outages:
    def __init__(self) -> None:
        self._down: dict[str, _Down] = {}
        self._up_at: dict[str, float] = {}

    def failed(self, service: str, exc: BaseException, doing: str) -> None:
        """A call to `service` failed while `doing` something; it will be retried."""
        now = time.monotonic()
        down = self._down.get(service)
        if down is None:
            settling = now - self._up_at.get(service, -SETTLE_S) < SETTLE_S
            self._down[service] = _Down(now, 1, settling)
            if not settling:
                self._went_down(service, exc, doing)
            return
        down.failures += 1
        if down.quiet and now - down.since >= SETTLE_S:
            down.quiet = False
            self._went_down(service, exc, doing)
            return
        log.debug("%s still failing while %s: %s", service, doing, describe(exc), exc_info=exc)

    @staticmethod
    def _went_down(service: str, exc: BaseException, doing: str) -> None:
        log.warning("%s failed while %s: %s; retrying until it answers", service, doing, describe(exc))
        log.debug("%s: the failure in full", service, exc_info=exc)

    def ok(self, service: str) -> None:
        """A call to `service` went through. Cheap when nothing is down: one test of a dict."""
        if not self._down:
            return
        down = self._down.pop(service, None)
        if down is None:
            return
        if not down.quiet:
            self._up_at[service] = time.monotonic()
            log.info(
                "%s answers again after %.1fs (%d failed call(s) retried)",
                service,
                time.monotonic() - down.since,
                down.failures,
            )

    def is_down(self, service: str) -> bool:
        return service in self._down and not self._down[service].quiet
