"""The duties every cluster has: claiming, recovery, pruning, draining."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from jobmaster.cluster.model import WorkerMode
from jobmaster.events import JobsRecovered
from jobmaster.runtime.drain import drain_orphaned_buckets
from jobmaster.runtime.duties import Duty, PeriodicDuty

if TYPE_CHECKING:
    from jobmaster.runtime.worker import Worker

COORDINATING = frozenset({WorkerMode.full, WorkerMode.coordinator})
DRAINING = frozenset({WorkerMode.full, WorkerMode.drain})
#: Pruning cadence: old final jobs leave in batches, and once an hour keeps up with any retention.
PRUNE_EVERY = 3600.0
#: Records of workers silent this long (and owning no bucket) are deleted; until then `jobmaster
#: status --all` still shows them, which is what an operator looking into a crash wants.
FORGET_WORKERS_AFTER = 86400.0
#: Rows per recovery or pruning statement.
PASS_BATCH = 1000


class Claiming:
    """The coordinator's claim loop (`runtime/coordinator.py`): HeldOnMaster jobs to buckets."""

    name = "coordinator"

    def wanted(self, mode: WorkerMode) -> bool:
        return mode in COORDINATING

    async def run(self, worker: Worker) -> None:
        if worker.coordinator is not None:
            await worker.coordinator.run()


class Recovery(PeriodicDuty):
    """Gives back the jobs of dead workers (leases lapsed), a thousand at a time."""

    name = "recovery"
    modes = COORDINATING

    async def tick(self, worker: Worker) -> None:
        now = time.time()
        while True:
            count = await worker.master.recover_expired(now, PASS_BATCH, worker.retry)
            if count and worker.events.wants(JobsRecovered):
                worker.events.emit(JobsRecovered(worker.id, count))
            if count < PASS_BATCH:
                return


class Pruning(PeriodicDuty):
    """Deletes final jobs older than `data_retention`, and long-silent worker records, hourly."""

    name = "pruning"
    modes = COORDINATING

    def interval(self, worker: Worker) -> float:
        return PRUNE_EVERY

    async def tick(self, worker: Worker) -> None:
        now = time.time()
        while await worker.master.prune(now - worker.cluster.data_retention, PASS_BATCH) == PASS_BATCH:
            pass
        await worker.master.forget_workers(now - FORGET_WORKERS_AFTER)


class Draining(PeriodicDuty):
    """Adopts the buckets of dead workers on this worker's agent and empties them into the master."""

    name = "drain"
    modes = DRAINING

    async def tick(self, worker: Worker) -> None:
        runtime = worker.runtime
        await drain_orphaned_buckets(
            worker.master,
            runtime.intakes(),
            worker.cluster.worker_timeout,
            worker.config.agent,
            drainer_id=worker.id,
        )


def builtin_duties() -> list[Duty]:
    return [Claiming(), Recovery(), Pruning(), Draining()]
