"""One worker: its buckets, its executors, its coordinator, its heartbeat.

A worker is bound to one agent connection and one lane; its mode decides which duties run. Every
duty runs in the worker's task group, so a stop cancels them together and nothing outlives the worker.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Coroutine
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from jobmaster.agents.base import BucketQueue
from jobmaster.cluster.model import Bucket, BucketStatus, WorkerRecord, WorkerStatus
from jobmaster.config.settings import ClusterConfig, WorkerConfig
from jobmaster.events import EventBus
from jobmaster.jobs.model import Priority
from jobmaster.jobs.retry import RetryPolicy
from jobmaster.logs.outages import MASTER
from jobmaster.master.base import MasterStore
from jobmaster.runtime.coordinator import Coordinator
from jobmaster.runtime.drain import STOP_REFUSALS, drain_bucket
from jobmaster.runtime.duties import Duty
from jobmaster.runtime.executor import BucketExecutor
from jobmaster.runtime.hub import BUCKETS, wait_for
from jobmaster.runtime.services import AppServices
from jobmaster.runtime.startup import StartWait

if TYPE_CHECKING:
    from jobmaster.runtime.runtime import Runtime

log = logging.getLogger("jobmaster.worker")


class Worker:
    def __init__(self, runtime: Runtime, config: WorkerConfig) -> None:
        self.runtime = runtime
        self.services: AppServices = runtime.services
        self.cluster: ClusterConfig = runtime.cluster
        self.master: MasterStore = runtime.master
        self.config: WorkerConfig = config
        self.events: EventBus = runtime.events
        #: For handlers that set none of their own.
        self.retry: RetryPolicy = runtime.cluster.retry_policy
        self.agent: BucketQueue = runtime.agents[config.agent]
        self.id: str = f"{config.name}-{uuid.uuid4().hex[:12]}"
        self.executors: dict[str, BucketExecutor] = {}
        self.coordinator: Coordinator | None = Coordinator(self) if config.mode.coordinates else None
        #: Set when the worker is asked to stop: duties end their loops on it.
        self.stopping: asyncio.Event = asyncio.Event()
        self.duties: list[Duty] = [d for d in runtime.duties if d.wanted(config.mode)]
        self._ready = asyncio.Event()
        self._heartbeat_stop = False
        self._repairs = 0

    @property
    def record(self) -> WorkerRecord:
        now = time.time()
        return WorkerRecord(
            id=self.id,
            name=self.config.name,
            mode=self.config.mode,
            lane=self.config.lane,
            agent=self.config.agent,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=now,
            heartbeat_at=now,
        )

    async def _register(self, waiting: StartWait) -> None:
        """Register this worker and its buckets, each step through the start-up's wait (a master
        restarting, a JetStream cluster electing the stream's leader)."""
        await waiting.step(*self.runtime.service(), partial(self.master.register_worker, self.record))
        if not self.config.mode.executes:
            return
        now = time.time()
        buckets = [
            Bucket(
                id=f"{self.id}.{priority.name}.{i}",
                agent=self.config.agent,
                lane=self.config.lane,
                priority=priority,
                worker_id=self.id,
                created_at=now,
            )
            for priority in Priority
            for i in range(self.config.bucket_count(priority))
        ]
        agent = self.runtime.service(self.config.agent)
        for bucket in buckets:
            await waiting.step(*agent, partial(self.agent.create_bucket, bucket.id))
            executor = BucketExecutor(self, bucket, self.runtime.intake(self.config.agent), self.config)
            self.executors[bucket.id] = executor
            self.runtime.hub.register_bucket(bucket.id, executor.wake)
        master = self.runtime.service()
        await waiting.step(*master, partial(self.master.add_buckets, buckets))
        await waiting.step(*master, partial(self.master.notify, BUCKETS))
        self.runtime.view.invalidate()

    async def run(self, waiting: StartWait) -> None:
        """Register, run every duty until `stop()`, then leave cleanly."""
        await self._register(waiting)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._heartbeat_loop(), name=f"{self.id}:heartbeat")
                for executor in self.executors.values():
                    group.create_task(executor.intake_loop(), name=f"{executor.bucket.id}:intake")
                    group.create_task(executor.dispatch_loop(), name=f"{executor.bucket.id}:dispatch")
                for duty in self.duties:
                    group.create_task(duty.run(self), name=f"{self.id}:{duty.name}")
                self._ready.set()
                await self.stopping.wait()
                await self._shutdown()
        finally:
            for bucket_id in self.executors:
                self.runtime.hub.unregister_bucket(bucket_id)

    async def ready(self) -> None:
        await self._ready.wait()

    def stop(self) -> None:
        self.stopping.set()

    async def _shutdown(self) -> None:
        """Graceful stop: no new work, buffered jobs back to the master, running ones finish."""
        await self.master.set_worker_status(self.id, WorkerStatus.Stopping)
        bucket_ids = list(self.executors)
        if bucket_ids:
            await self.master.set_bucket_status(bucket_ids, BucketStatus.Completing)
            await self.master.notify(BUCKETS)
            self.runtime.view.invalidate()
        if self.coordinator is not None:
            self.coordinator.stop()
        await asyncio.gather(*(ex.stop(self.cluster.shutdown_grace) for ex in self.executors.values()))
        await self.runtime.completions.drained()
        drained = []
        intake = self.runtime.intake(self.config.agent)
        for bucket_id in bucket_ids:
            try:
                await drain_bucket(self.master, intake, bucket_id, STOP_REFUSALS)
                drained.append(bucket_id)
            except Exception:
                # left for a drainer: once this worker is Stopped its buckets count as dead
                log.exception("worker %s: could not drain bucket %s while stopping", self.id, bucket_id)
        if drained:
            await self.master.delete_buckets(drained)
            await self.master.notify(BUCKETS)
        self.runtime.hub.coordinator.set()
        await self.master.set_worker_status(self.id, WorkerStatus.Stopped)
        self._heartbeat_stop = True
        self.runtime.hub.cancel.set()

    async def _heartbeat_loop(self) -> None:
        """Renew job leases and learn of cancel requests; keep going through master outages.

        Past `job_lease` without a successful renewal, other workers may already be re-running this
        worker's jobs, so it interrupts its own runs rather than finish duplicates it cannot fence.
        Back after more than `worker_timeout` of silence, its buckets may have been adopted as lost:
        it checks and replaces any that are gone.
        """
        interval = self.cluster.heartbeat_interval
        hub, outages = self.runtime.hub, self.runtime.outages
        last_ok = time.time()
        beats = 0
        repair = False
        while not self._heartbeat_stop:
            now = time.time()
            try:
                held = [job_id for ex in self.executors.values() for job_id in ex.held_ids()]
                renewal = self.master.renew(self.id, now, now + self.cluster.job_lease, held)
                cancels = await self._renewed(renewal, last_ok)
            except Exception as exc:
                outages.failed(MASTER, exc, f"renewing the leases of worker {self.id}")
                if time.time() - last_ok > self.cluster.job_lease:
                    self._lease_lost()
                await wait_for(hub.cancel, interval)
                continue
            outages.ok(MASTER)
            if self._heartbeat_stop:
                return
            beats += 1
            # Silence runs from the last renewal to this answer: a renewal can hang as long as a
            # partition lasts. The heartbeat it wrote is then as old as the call, and a drainer would
            # take replacement buckets for a dead worker's too: they wait for a fresh heartbeat.
            answered = time.time()
            repair = repair or answered - last_ok > self.cluster.worker_timeout or beats % 10 == 0
            last_ok = now
            if self.executors and repair and answered - now < self.cluster.worker_timeout:
                repair = False
                try:
                    await self._repair_buckets()
                except Exception as exc:
                    outages.failed(MASTER, exc, f"checking the buckets of worker {self.id}")
            for job_id in cancels:
                for executor in self.executors.values():
                    executor.cancel(job_id, "cancelled by request")
            await wait_for(hub.cancel, interval)

    async def _renewed(self, renewal: Coroutine[Any, Any, list[str]], last_ok: float) -> list[str]:
        """The renewal's answer, the cancel requests; the runs are interrupted once the lease is gone.

        A master that does not answer at all (a network partition: no reset, no refusal, found by
        tests/e2e/test_faults.py) holds the call for minutes, and the lease must not outlive its
        lapse in this worker while the master hands its jobs to others.
        """
        answer = asyncio.ensure_future(renewal)
        left = last_ok + self.cluster.job_lease - time.time()
        try:
            if left > 0:
                done, _ = await asyncio.wait({answer}, timeout=left)
                if not done:
                    self._lease_lost()
            return await answer
        finally:
            answer.cancel()

    def _lease_lost(self) -> None:
        dropped = sum(executor.abandon() for executor in self.executors.values())
        if dropped:
            log.error(
                "worker %s: no heartbeat for longer than job_lease; dropped %d buffered or running "
                "job(s), which the master gives to other workers",
                self.id,
                dropped,
            )

    async def _repair_buckets(self) -> None:
        """Replace buckets a drainer adopted while this worker looked dead (a long pause, a partition)."""
        if self.stopping.is_set():
            return
        mine = {b.id for b in await self.master.list_buckets() if b.worker_id == self.id}
        missing = [ex for ex in self.executors.values() if ex.bucket.id not in mine]
        if not missing:
            return
        self._repairs += 1
        replacements = []
        for executor in missing:
            old = executor.bucket
            bucket = replace(old, id=f"{old.id}.r{self._repairs}", status=BucketStatus.Active)
            await self.agent.create_bucket(bucket.id)
            self.runtime.hub.unregister_bucket(old.id)
            del self.executors[old.id]
            executor.bucket = bucket
            self.executors[bucket.id] = executor
            self.runtime.hub.register_bucket(bucket.id, executor.wake)
            replacements.append(bucket)
        await self.master.add_buckets(replacements)
        await self.master.notify(BUCKETS)
        self.runtime.view.invalidate()
        log.warning("worker %s: %d bucket(s) had been adopted as lost; replaced", self.id, len(missing))
