"""A cached view of the active buckets, shared by the publisher and the coordinator.

Publishers pick a bucket on every YES-path call, so reading the bucket table each time would put the
master on the hot path; a short-lived cache, refreshed at once when buckets change (notification or
local change), keeps the choice fresh without that cost.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

from jobmaster.cluster.model import Bucket, BucketStatus, WorkerStatus
from jobmaster.jobs.model import Priority
from jobmaster.master.base import MasterStore, Route


class ClusterView:
    def __init__(self, master: MasterStore, ttl: float, worker_timeout: float) -> None:
        self._master = master
        self._ttl = ttl
        self._worker_timeout = worker_timeout
        self._loaded_at = 0.0
        self._routes: dict[Route, list[Bucket]] = {}
        self._by_id: dict[str, Bucket] = {}
        self._lock = asyncio.Lock()
        self._turn = 0

    def invalidate(self) -> None:
        self._loaded_at = 0.0

    async def routes(self) -> dict[Route, list[Bucket]]:
        """Active buckets whose owner is alive, by (lane, priority)."""
        if time.monotonic() - self._loaded_at < self._ttl:
            return self._routes
        async with self._lock:
            if time.monotonic() - self._loaded_at >= self._ttl:
                await self._load()
        return self._routes

    async def _load(self) -> None:
        now = time.time()
        live = {
            w.id
            for w in await self._master.list_workers()
            if w.status is WorkerStatus.Running and now - w.heartbeat_at < self._worker_timeout
        }
        routes: dict[Route, list[Bucket]] = defaultdict(list)
        for bucket in await self._master.list_buckets(BucketStatus.Active):
            if bucket.worker_id in live:
                routes[(bucket.lane, bucket.priority)].append(bucket)
        self._routes = dict(routes)
        self._by_id = {b.id: b for buckets in routes.values() for b in buckets}
        self._loaded_at = time.monotonic()

    def bucket(self, bucket_id: str) -> Bucket | None:
        """A bucket from the last load (the coordinator only assigns to buckets it just saw)."""
        return self._by_id.get(bucket_id)

    async def spread(self, lane: str, priority: Priority, agents: set[str], count: int) -> list[Bucket]:
        """`count` buckets for as many jobs, round-robin over the route's buckets on agents this
        process can reach, going on from where the last call left off; none if there are none."""
        candidates = [b for b in (await self.routes()).get((lane, priority), []) if b.agent in agents]
        if not candidates:
            return []
        first, self._turn = self._turn, self._turn + count
        return [candidates[(first + i) % len(candidates)] for i in range(count)]
