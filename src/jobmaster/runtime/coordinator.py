"""The coordinator: HeldOnMaster -> AssignedToBucket (or straight to Queued in a local bucket).

It claims due jobs within `transient_threshold` in batches of `transfer_batch_size`, one round trip
per batch, spreads them over live buckets of the job's lane and priority (least loaded first), and
pushes them to the bucket's agent. Jobs for a bucket of this very process that are due within the
buffer lead time skip the agent and go straight into the executor's buffer.
Claims lock rows with SKIP LOCKED, so any number of coordinators can run at once without handing a
job out twice; if one dies, the others simply keep claiming.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from typing import TYPE_CHECKING

from jobmaster.cluster.model import Bucket
from jobmaster.events import JobsClaimed
from jobmaster.jobs.model import Job, JobStatus
from jobmaster.logs.outages import MASTER
from jobmaster.master.base import Assignment, Fence, Route
from jobmaster.runtime.hub import wait_for

if TYPE_CHECKING:
    from jobmaster.runtime.executor import BucketExecutor
    from jobmaster.runtime.worker import Worker

log = logging.getLogger("jobmaster.coordinator")

#: Longest idle wait when the master notifies (PostgreSQL); a safety net, not the wake-up path.
NOTIFY_IDLE = 5.0


class Coordinator:
    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.cluster = worker.cluster
        self._batch = worker.config.transfer_batch_size
        self._stopping = False

    def stop(self) -> None:
        self._stopping = True
        self.worker.runtime.hub.coordinator.set()

    async def run(self) -> None:
        hub = self.worker.runtime.hub
        polled = not self.worker.master.supports_notify
        failures = 0
        while not self._stopping:
            try:
                routes = await self.worker.runtime.view.routes()
                claimed = await self._claim_once(routes)
                failures = 0
                self.worker.runtime.outages.ok(MASTER)
            except Exception as exc:
                failures += 1
                delay = min(10.0, 0.2 * 2**failures)
                self.worker.runtime.outages.failed(MASTER, exc, "claiming due jobs")
                await asyncio.sleep(delay)
                continue
            if claimed == self._batch:
                continue
            timeout = self.cluster.idle_poll_interval if polled else await self._until_due(routes)
            await wait_for(hub.coordinator, timeout)

    async def _until_due(self, routes: dict[Route, list[Bucket]]) -> float:
        due = await self.worker.master.next_due_at(list(routes))
        if due is None:
            return NOTIFY_IDLE
        return min(NOTIFY_IDLE, max(0.0, due - self.cluster.transient_threshold - time.time()))

    async def _claim_once(self, routes: dict[Route, list[Bucket]]) -> int:
        if not routes:
            return 0
        now = time.time()
        local = self.worker.runtime.local_executors()
        assigner = _Assigner(
            routes, local, now, self.cluster.job_lease, self.worker.config.bucket_buffer_lead_time
        )
        jobs = await self.worker.master.claim_due(
            now + self.cluster.transient_threshold, list(routes), self._batch, assigner
        )
        if not jobs:
            return 0
        await self._deliver(jobs, local)
        events = self.worker.events
        if events.wants(JobsClaimed):
            events.emit(JobsClaimed(self.worker.id, len(jobs)))
        return len(jobs)

    async def _deliver(self, jobs: list[Job], local: dict[str, BucketExecutor]) -> None:
        remote: dict[str, list[Job]] = defaultdict(list)
        for job in jobs:
            assert job.bucket_id is not None
            if job.status is JobStatus.Queued:
                local[job.bucket_id].offer([job])
            else:
                remote[job.bucket_id].append(job)
        for bucket_id, batch in remote.items():
            await self._push(bucket_id, batch)

    async def _push(self, bucket_id: str, jobs: list[Job]) -> None:
        agent = self.worker.runtime.agent_of_bucket(bucket_id)
        try:
            if agent is None:
                raise LookupError(f"bucket {bucket_id} is on an agent this process cannot reach")
            await agent.push_jobs(bucket_id, jobs)
        except Exception:
            # Give the jobs back, then fail the pass so the claim loop backs off: retrying at once
            # would reclaim and re-push the same jobs in a tight loop while the agent is down.
            await self.worker.master.release([Fence(j.id, j.version) for j in jobs])
            self.worker.runtime.view.invalidate()
            await self.worker.runtime.wake_coordinators()
            raise
        self.worker.runtime.hub.wake_bucket(bucket_id)


class _Assigner:
    """Pure assignment run inside the claim transaction (no I/O, no awaits)."""

    def __init__(
        self,
        routes: dict[Route, list[Bucket]],
        local: dict[str, BucketExecutor],
        now: float,
        lease: float,
        lead_time: float,
    ) -> None:
        self._routes = routes
        self._local = local
        self._now = now
        self._lease = lease
        self._lead_time = lead_time
        self._room = {bucket_id: ex.room for bucket_id, ex in local.items()}
        self._load: dict[str, int] = {
            b.id: (local[b.id].load if b.id in local else 0) for buckets in routes.values() for b in buckets
        }

    def __call__(self, jobs: list[Job]) -> list[Assignment]:
        assignments = []
        for job in jobs:
            buckets = self._routes.get((job.lane, job.priority))
            if not buckets:
                continue
            assignments.append(self._assign(job, buckets))
        return assignments

    def _assign(self, job: Job, buckets: list[Bucket]) -> Assignment:
        soon = job.scheduled_at <= self._now + self._lead_time
        if soon:
            local = [b for b in buckets if self._room.get(b.id, 0) > 0]
            if local:
                bucket = min(local, key=lambda b: self._load[b.id])
                self._room[bucket.id] -= 1
                self._load[bucket.id] += 1
                return Assignment(
                    job.id, bucket.id, bucket.worker_id, JobStatus.Queued, self._now + self._lease
                )
        bucket = min(buckets, key=lambda b: self._load[b.id])
        self._load[bucket.id] += 1
        lease_until = max(job.scheduled_at, self._now) + self._lease
        return Assignment(job.id, bucket.id, bucket.worker_id, JobStatus.AssignedToBucket, lease_until)
