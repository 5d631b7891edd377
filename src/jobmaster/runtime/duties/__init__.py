"""Duties: the background loops a worker runs besides its buckets, behind one small protocol.

A worker's mode selects its duties (`Duty.wanted`): a coordinator claims due jobs and gives back the
jobs of dead workers, and prunes old ones; a drain worker empties the buckets of dead workers. A
feature with a loop of its own (the recurring scheduler) is one more duty, registered with
`jm.add_duty(...)`, not an edit of the worker. Each duty runs in the worker's task group, so a stop
ends them together and nothing outlives the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Protocol

from jobmaster.cluster.model import WorkerMode
from jobmaster.logs.outages import MASTER

if TYPE_CHECKING:
    from jobmaster.runtime.worker import Worker

log = logging.getLogger("jobmaster.duties")


class Duty(Protocol):
    """One background loop of a worker."""

    #: Short, for task names and logs.
    name: str

    def wanted(self, mode: WorkerMode) -> bool:
        """Whether a worker of `mode` runs this duty."""
        ...

    async def run(self, worker: Worker) -> None:
        """Run until `worker.stopping` is set; an error ends the worker, so catch what may recur."""
        ...


class PeriodicDuty:
    """A duty that does one pass every `interval(worker)` seconds until the worker stops; a failed
    pass is logged and tried again at the next one (a master outage must not end the worker)."""

    name = "periodic"
    modes: frozenset[WorkerMode] = frozenset(WorkerMode)

    def wanted(self, mode: WorkerMode) -> bool:
        return mode in self.modes

    def interval(self, worker: Worker) -> float:
        return worker.cluster.heartbeat_interval

    async def tick(self, worker: Worker) -> None:
        raise NotImplementedError

    async def run(self, worker: Worker) -> None:
        while not worker.stopping.is_set():
            try:
                await self.tick(worker)
                worker.runtime.outages.ok(MASTER)
            except Exception as exc:
                worker.runtime.outages.failed(MASTER, exc, f"the {self.name} pass of worker {worker.id}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(worker.stopping.wait(), self.interval(worker))
