"""The standalone agent of a master that hosts bucket queues: the job table is the queue.

Standalone means the agent is the master's own database, so an agent table there only adds writes:
each job would be inserted into it, claimed, deleted, and inserted into the master as well. Here a
job scheduled on the YES path is written once, as an AssignedToBucket row of the bucket, and the
bucket's owner takes it in the same statement that claims it: straight into Processing when the
owner has a free slot, Queued (leased, in its buffer) when the job is due a little later. Nothing is
ever held only here, so there is nothing to save, acknowledge or look up.

The runtime uses this instead of the URL's own agent backend when the agent URL is the master's and
the master implements `QueueHost`. It has no `SCHEMES`: it is never chosen by URL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from functools import partial

from jobmaster.agents.base import AgentMessage, BucketGoneError, BucketQueue
from jobmaster.jobs import codec
from jobmaster.jobs.model import Job
from jobmaster.master.base import BUCKET_TOPIC, MasterStore, QueueHost
from jobmaster.master.flush import FlushBarrier

#: Jobs sent back to the master per statement when a bucket is drained.
DRAIN_BATCH = 5000


class MasterQueue(BucketQueue):
    def __init__(self, master: MasterStore, name: str) -> None:
        if not isinstance(master, QueueHost):
            raise TypeError(f"{type(master).__name__} does not host bucket queues")
        super().__init__(master.url, master.cluster_id, name)
        self.master: QueueHost = master
        self._notify = master.notify
        self.supports_notify = master.supports_notify
        #: Per worker, shared by its buckets (`started_on_disk`).
        self._barriers: dict[str, FlushBarrier] = {}

    # The master opens, migrates and listens for both: bucket wake-ups arrive as master topics.
    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def migrate(self) -> None:
        return None

    async def create_bucket(self, bucket_id: str) -> None:
        """Nothing to create: the bucket is the master's own row, which the worker adds."""
        return None

    async def destroy_bucket(self, bucket_id: str) -> bool:
        return await self.master.remove_empty_bucket(bucket_id)

    async def push(self, bucket_id: str, messages: Sequence[AgentMessage]) -> None:
        fresh = [codec.job_from_bytes(m.payload) for m in messages if m.version == 0]
        await self._queue(bucket_id, fresh, assigned=len(fresh) < len(messages))

    async def push_jobs(self, bucket_id: str, jobs: Sequence[Job]) -> None:
        fresh = [j for j in jobs if j.version == 0]
        await self._queue(bucket_id, fresh, assigned=len(fresh) < len(jobs))

    async def _queue(self, bucket_id: str, fresh: list[Job], *, assigned: bool) -> None:
        """Insert new jobs; jobs a coordinator assigned are already AssignedToBucket rows."""
        if fresh and not await self.master.queue_jobs(bucket_id, fresh):
            raise BucketGoneError(f"bucket {bucket_id} no longer exists")
        if assigned:
            await self._notify(f"{BUCKET_TOPIC}{bucket_id}")

    async def take(
        self,
        bucket_id: str,
        worker_id: str,
        lease_until: float,
        *,
        now: float,
        start: int,
        due_before: float,
        limit: int,
    ) -> list[Job]:
        """Claim and adopt in one write: due jobs come back Processing, later ones Queued."""
        return await self.master.take_queued(
            bucket_id, worker_id, lease_until, now=now, start=start, due_before=due_before, limit=limit
        )

    def started_on_disk(self, worker_id: str) -> asyncio.Future[bool] | None:
        """For the jobs a take of `worker_id` just started (asked with `durable_starts` only): True
        once that take is on disk, False if that is unknown (they must not run); None if takes commit
        durably, so they may run at once."""
        if not self.master.takes_skip_flush:
            return None
        barrier = self._barriers.get(worker_id)
        if barrier is None:
            barrier = self._barriers[worker_id] = FlushBarrier(partial(self.master.flush_takes, worker_id))
        return barrier.after_now()

    async def drain(self, bucket_id: str) -> int:
        """Send every job waiting in the bucket back to the master as HeldOnMaster."""
        moved = 0
        while count := await self.master.release_queued(bucket_id, DRAIN_BATCH):
            moved += count
        return moved

    async def next_due_at(self, bucket_id: str, now: float) -> float | None:
        return await self.master.next_queued_due(bucket_id)

    async def count(self, bucket_id: str) -> int:
        return await self.master.queued_count(bucket_id)

    async def find(self, job_id: str) -> AgentMessage | None:
        """None: no job lives only here; the master shows and cancels them all."""
        return None
