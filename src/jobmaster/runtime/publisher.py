"""Scheduling: the SavePending decision between the YES path and the NO path.

YES path: a job due within `transient_threshold` goes straight into a live bucket of its lane and
priority on an agent this process can reach; the bucket's owner persists it to the master in batches.
NO path: otherwise (due later, no such bucket, no agent, agent unreachable, or the call joins the
caller's transaction) it is written to the master as HeldOnMaster for a coordinator to claim.
Either way the job is durable before the call returns.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from jobmaster.config.urls import redact
from jobmaster.errors import ClusterArchivedError, ScheduleError
from jobmaster.jobs.model import Job, JobStatus
from jobmaster.master.base import Route

if TYPE_CHECKING:
    from jobmaster.runtime.runtime import Runtime

log = logging.getLogger("jobmaster.publisher")


class Publisher:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.cluster = runtime.cluster
        self._agents = set(runtime.agents)

    async def publish(self, jobs: Sequence[Job], connection: Any = None) -> None:
        if self.cluster.mode == "Archived":
            raise ClusterArchivedError(
                f"cluster {self.cluster.cluster_id!r} is Archived: scheduling is disabled"
            )
        if connection is not None and not self.runtime.master.joins_transactions:
            raise ScheduleError(
                f"connection=: the master at {redact(self.cluster.master)} cannot join a caller's"
                " transaction (PostgreSQL and MySQL/MariaDB masters can)"
            )
        held: list[Job] = []
        by_route: dict[Route, list[Job]] = defaultdict(list)
        if connection is None and self.cluster.mode == "Active":
            horizon = time.time() + self.cluster.transient_threshold
            for job in jobs:
                if job.scheduled_at <= horizon:
                    by_route[(job.lane, job.priority)].append(job)
                else:
                    held.append(job)
        else:
            held.extend(jobs)
        routed: dict[str, list[Job]] = defaultdict(list)
        bucket_agent: dict[str, str] = {}
        for (lane, priority), group in by_route.items():
            buckets = await self.runtime.view.spread(lane, priority, self._agents, len(group))
            if not buckets:
                held.extend(group)
                continue
            for job, bucket in zip(group, buckets, strict=True):
                routed[bucket.id].append(job)
                bucket_agent[bucket.id] = bucket.agent
        for bucket_id, batch in routed.items():
            if not await self._push(bucket_agent[bucket_id], bucket_id, batch):
                held.extend(batch)
        if held:
            await self._hold(held, connection)

    async def _push(self, agent_name: str, bucket_id: str, jobs: list[Job]) -> bool:
        agent = self.runtime.agents[agent_name]
        try:
            await agent.push_jobs(bucket_id, jobs)
        except Exception as exc:
            log.warning(
                "YES path to bucket %s on agent %s failed (%s); using the master instead",
                bucket_id,
                agent_name,
                exc,
            )
            self.runtime.view.invalidate()
            return False
        self.runtime.hub.wake_bucket(bucket_id)
        return True

    async def _hold(self, jobs: list[Job], connection: Any) -> None:
        held = [j.copy(status=JobStatus.HeldOnMaster) for j in jobs]
        await self.runtime.master.insert_jobs(held, connection=connection)
        self.runtime.hub.coordinator.set()
