"""Intake: how a bucket's executor gets its jobs, chosen once per agent when the runtime opens it.

- `ReadAdoptAck`, for an agent transport (a table of messages, a NATS stream): read what is due,
  make it ours in the master (adopting and, for free slots, starting in one write), then acknowledge
  it; persist SavePending jobs that are not due soon so the master can see and cancel them.
- `TakeFromJobTable`, for the standalone queue of a master that hosts its buckets in the job table
  (`agents/master_queue.py`): one write claims jobs and makes them ours, and nothing is acknowledged.

Each also knows how to empty a bucket back into the master (`drain_batch`), which the drain uses, so
neither the executor nor the drain asks which kind of queue it holds.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from jobmaster.agents.base import AgentMessage, AgentTransport, BucketQueue, ReadCursor
from jobmaster.agents.master_queue import MasterQueue
from jobmaster.errors import JobMasterError
from jobmaster.jobs import codec
from jobmaster.jobs.model import JobStatus
from jobmaster.logs.outages import MASTER, agent_service
from jobmaster.master.base import MasterStore, StartNow
from jobmaster.runtime.drain import move_batch
from jobmaster.runtime.poison import decode_messages

if TYPE_CHECKING:
    from jobmaster.runtime.executor.bucket import BucketExecutor

T = TypeVar("T")

#: How many unsaved (SavePending) messages one pass persists to the master, and how often.
SAVE_BATCH = 500
SAVE_INTERVAL = 0.25
#: Longest an owner with a backlog reads on from its cursor before it reads its bucket from the
#: start again (see `ReadAdoptAck._read_due`).
FULL_READ_INTERVAL = 1.0


@dataclass(slots=True)
class ReadPosition:
    """Where a bucket owner's next read starts: from a cursor while reads come back full (a
    backlog), from the start after a short read or `FULL_READ_INTERVAL` (see
    `ReadAdoptAck._read_due`)."""

    after: ReadCursor | None = None
    full_read_at: float = 0.0

    def start(self, now: float) -> ReadCursor | None:
        if self.after is None or now - self.full_read_at >= FULL_READ_INTERVAL:
            self.after, self.full_read_at = None, now
        return self.after

    def advance(self, read: list[AgentMessage], limit: int) -> None:
        self.after = max(m.read_key for m in read) if len(read) == limit else None


class AgentCallError(JobMasterError):
    """A call to the agent (not to the master) failed: `service` and what it was `doing` name it for
    the outage log; the cause is the original error."""

    def __init__(self, service: str, doing: str) -> None:
        super().__init__(f"{service} failed while {doing}")
        self.service = service
        self.doing = doing


class Intake(abc.ABC):
    """One bucket's way in (an instance per executor: it may keep a read position)."""

    #: Who answers its calls, as the outage log names it.
    service = MASTER

    def __init__(self, queue: BucketQueue) -> None:
        self.queue = queue

    @abc.abstractmethod
    async def fetch(self, ex: BucketExecutor, now: float) -> bool:
        """Start or buffer what is due soon in `ex`; True if a full batch came (more may wait)."""

    @abc.abstractmethod
    async def drain_batch(self, master: MasterStore, bucket_id: str) -> int:
        """Send jobs of the bucket back to the master as HeldOnMaster; how many (0: none left)."""


class ReadAdoptAck(Intake):
    def __init__(self, agent: AgentTransport) -> None:
        super().__init__(agent)
        self.agent = agent
        self.service = agent_service(agent.name)
        self._position = ReadPosition()
        self._saved_at = 0.0

    async def _agent(self, call: Awaitable[T], doing: str) -> T:
        """An agent call, its failure told apart from the master's (`AgentCallError`)."""
        try:
            return await call
        except Exception as exc:
            raise AgentCallError(self.service, doing) from exc

    async def drain_batch(self, master: MasterStore, bucket_id: str) -> int:
        return await move_batch(master, self.agent, bucket_id)

    async def fetch(self, ex: BucketExecutor, now: float) -> bool:
        """Fetch what is due soon, persist what is not."""
        visible_at = now + ex.worker.cluster.job_lease
        lead_until = now + ex.config.bucket_buffer_lead_time
        more = await self._read_due(ex, ex.room, now, lead_until, visible_at)
        if now - self._saved_at < SAVE_INTERVAL:
            return more
        self._saved_at = now
        unsaved = await self._agent(
            self.agent.claim_unsaved(ex.bucket.id, SAVE_BATCH, lead_until, now, visible_at),
            "reading jobs to save",
        )
        if unsaved:
            await self._save(ex, unsaved)
        return more or len(unsaved) == SAVE_BATCH

    async def _read_due(
        self, ex: BucketExecutor, room: int, now: float, lead_until: float, visible_at: float
    ) -> bool:
        """Take as many jobs as free slots can start, or, with every slot busy, fill the buffer.

        A due job taken into the buffer costs the master two writes (Queued, then Processing); one
        taken for a free slot costs one, since adopting it starts it. So while due jobs are left
        waiting for slots (`slot_wanted`), they wait in the agent, not in the buffer: a slot that
        frees wakes this intake, as with a job-table queue. A read for free slots also brings jobs
        due within the lead time, where the buffer has room for them all.

        While reads come back full (a backlog), each goes on from where the last one ended; a
        message that lands behind that cursor (pushed late with an earlier due time, or hidden by a
        claim for a while) is read by the next read from the start: the first one that comes back
        short, or one every `FULL_READ_INTERVAL` at the latest.
        """
        start = ex.startable(now)
        if start:
            limit, due_before = start, (lead_until if room >= start else now)
        elif room and not ex.slot_wanted:
            limit, due_before = room, lead_until
        else:
            return False
        after = self._position.start(now)
        reading = self.agent.read_due(ex.bucket.id, limit, due_before, now, visible_at, after)
        messages = await self._agent(reading, f"reading bucket {ex.bucket.id}")
        started = await self._adopt(ex, messages) if messages else 0
        self._position.advance(messages, limit)
        if start:
            ex.slot_wanted = started == start
        return len(messages) == limit or (ex.slot_wanted and ex.startable(time.time()) > 0)

    async def _adopt(self, ex: BucketExecutor, messages: list[AgentMessage]) -> int:
        """Make messages read from the agent ours; the due ones that fit free slots start in the
        same write, and every one of them is acknowledged before the next read.

        Returns how many started.
        """
        jobs, poison = decode_messages(messages)
        worker, bucket_id = ex.worker, ex.bucket.id
        if poison:
            await worker.runtime.set_aside(self.agent, bucket_id, poison)
        now = time.time()
        due = sorted((j for j in jobs if j.scheduled_at <= now), key=lambda j: j.scheduled_at)
        start = StartNow(frozenset(j.id for j in due[: ex.startable(now)]), now)
        lease = now + worker.cluster.job_lease
        with ex.reserving(len(start.ids)):
            owned = set(await worker.master.adopt(jobs, bucket_id, worker.id, lease, start))
        if ex.outlived(lease, len(owned)):
            owned = set()  # the master holds them all the same: the messages are acknowledged
        buffered, started = False, 0
        for job in jobs:
            if job.id not in owned:
                continue
            job.version += 1
            job.bucket_id = bucket_id
            job.worker_id = worker.id
            if job.id in start.ids:
                job.status = JobStatus.Processing
                job.attempts += 1
                ex.launch(job, now)
                started += 1
            else:
                job.status = JobStatus.Queued
                ex.buffer_push(job)
                buffered = True
        if buffered:
            ex.wake_dispatch()  # before the ack: its round trip is not the jobs' to wait for
        await self._agent(
            self.agent.ack(bucket_id, [j.id for j in jobs]), f"acknowledging in bucket {bucket_id}"
        )
        return started

    async def _save(self, ex: BucketExecutor, messages: list[AgentMessage]) -> None:
        """Persist SavePending jobs that are not due soon so the master can see and cancel them."""
        jobs, poison = decode_messages(messages)
        worker, bucket_id = ex.worker, ex.bucket.id
        if poison:
            await worker.runtime.set_aside(self.agent, bucket_id, poison)
        horizon = time.time() + worker.cluster.transient_threshold
        near = [j for j in jobs if j.scheduled_at <= horizon]
        far = [j.copy(status=JobStatus.HeldOnMaster) for j in jobs if j.scheduled_at > horizon]
        saved = set(await worker.master.save_pending(near, bucket_id, worker.id, worker.cluster.job_lease))
        if far:
            await worker.master.insert_jobs(far)
            worker.runtime.hub.coordinator.set()
        keep = [
            AgentMessage(j.id, j.scheduled_at, 1, codec.job_to_bytes(j.copy(version=1)))
            for j in near
            if j.id in saved
        ]
        if keep:
            await self._agent(self.agent.push(bucket_id, keep), f"pushing saved jobs to bucket {bucket_id}")
        unsaved_ids = [j.id for j in jobs if j.id not in saved]
        await self._agent(self.agent.ack(bucket_id, unsaved_ids), f"acknowledging in bucket {bucket_id}")


class TakeFromJobTable(Intake):
    def __init__(self, queue: MasterQueue) -> None:
        super().__init__(queue)
        self.jobs = queue

    async def drain_batch(self, master: MasterStore, bucket_id: str) -> int:
        return await self.jobs.drain(bucket_id)

    async def fetch(self, ex: BucketExecutor, now: float) -> bool:
        """The bucket queue is the job table: one write claims jobs and makes them ours.

        Due jobs go straight to Processing for the free slots, so they cost no separate start write
        (with `durable_starts`, they run once the take is on disk: `master/flush.py`); jobs due within
        the lead time fill the buffer.
        """
        room, start = ex.room, ex.startable(now)
        if start == 0 and room == 0:
            return False
        lease_until = now + ex.worker.cluster.job_lease
        with ex.reserving(start):
            jobs = await self.jobs.take(
                ex.bucket.id,
                ex.worker.id,
                lease_until,
                now=now,
                start=start,
                due_before=now + ex.config.bucket_buffer_lead_time,
                limit=room,
            )
        if ex.outlived(lease_until, len(jobs)):
            return False
        starting = [job for job in jobs if job.status is JobStatus.Processing]
        on_disk = (
            self.jobs.started_on_disk(ex.worker.id) if starting and ex.worker.cluster.durable_starts else None
        )
        for job in starting:
            ex.launch(job, now, on_disk)
        for job in jobs:
            if job.status is not JobStatus.Processing:
                ex.buffer_push(job)
        started = len(starting)
        if len(jobs) > started:
            ex.wake_dispatch()
        ex.slot_wanted = start > 0 and started == start
        return (ex.slot_wanted and ex.startable(time.time()) > 0) or (
            room > 0 and len(jobs) - started == room
        )
