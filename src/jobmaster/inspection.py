"""What operators and tools may see and do of a running cluster, beyond single jobs.

`jm.inspect` is the one way in for the CLI (`jobmaster status`, `jobmaster agents drain`) and the
dashboard: workers, their buckets, what each bucket's agent holds, and the drain of dead workers'
buckets. Neither reaches into `jm.runtime`, so the runtime can change without breaking them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from jobmaster.cluster.model import Bucket, WorkerRecord, WorkerStatus
from jobmaster.runtime.drain import drain_orphaned_buckets

if TYPE_CHECKING:
    from jobmaster.app import JobMaster


class Inspector:
    """Read-mostly views of the cluster through an open `JobMaster`."""

    def __init__(self, app: JobMaster) -> None:
        self._app = app

    async def workers(self, *, include_stopped: bool = False) -> list[WorkerRecord]:
        """Registered workers, newest heartbeat first; stopped ones too with `include_stopped`."""
        workers = await self._app.runtime.master.list_workers()
        return [w for w in workers if include_stopped or w.status is not WorkerStatus.Stopped]

    async def buckets(self) -> list[Bucket]:
        return await self._app.runtime.master.list_buckets()

    async def agent_counts(self, buckets: Sequence[Bucket]) -> dict[str, int | None]:
        """Messages waiting in each bucket's agent; None for an agent this process cannot reach."""
        agents = self._app.runtime.agents
        counts: dict[str, int | None] = {}
        for bucket in buckets:
            agent = agents.get(bucket.agent)
            counts[bucket.id] = None if agent is None else await agent.count(bucket.id)
        return counts

    async def drain_orphans(self, agent: str | None = None) -> dict[str, int]:
        """Move the jobs of dead or stopped workers' buckets back to the master (only those on
        `agent` if given); returns the jobs moved per bucket drained."""
        runtime = self._app.runtime
        return await drain_orphaned_buckets(
            runtime.master, runtime.intakes(), self._app.config.worker_timeout, agent
        )
