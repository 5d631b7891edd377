"""Per-bucket execution: prefetch, buffer, run, report.

This is where a job moves AssignedToBucket/SavePending -> Queued -> Processing -> final, or straight
to Processing when it is due and a slot is free: the write that makes it ours then starts it too. The
buffer holds at most `bucket_buffer_size` jobs due within `bucket_buffer_lead_time`; at most
round(base slots x `parallelism_factor`) run at once; intake stops while the buffer is full, which is
the back-pressure the tuning guide describes.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from jobmaster.agents.base import AgentMessage, AgentTransport, ReadCursor
from jobmaster.agents.master_queue import MasterQueue
from jobmaster.cluster.model import Bucket
from jobmaster.config.settings import WorkerConfig
from jobmaster.errors import JobCancelledError, JobTimeoutError
from jobmaster.events import JobEnded, JobStarted
from jobmaster.handlers.context import JobContext
from jobmaster.handlers.registry import Handler
from jobmaster.jobs import codec
from jobmaster.jobs.model import Job, JobStatus, run_capacity
from jobmaster.jobs.outcomes import Discard
from jobmaster.jobs.retry import RetryPolicy
from jobmaster.master.base import Fence, StartNow
from jobmaster.runtime import outcome
from jobmaster.runtime.hub import wait_for
from jobmaster.runtime.invoke import invoke
from jobmaster.runtime.outcome import LEASE_LOST, SHUTDOWN, TIMED_OUT
from jobmaster.runtime.poison import Poison

if TYPE_CHECKING:
    from jobmaster.runtime.worker import Worker

log = logging.getLogger("jobmaster.executor")

#: How many unsaved (SavePending) messages one pass persists to the master, and how often.
SAVE_BATCH = 500
SAVE_INTERVAL = 0.25
#: Longest an owner with a backlog reads on from its cursor before it reads its bucket from the
#: start again (see `BucketExecutor._read_due`).
FULL_READ_INTERVAL = 1.0


@dataclass(slots=True)
class ReadPosition:
    """Where a bucket owner's next read starts: from a cursor while reads come back full (a
    backlog), from the start after a short read or `FULL_READ_INTERVAL` (see
    `BucketExecutor._read_due`)."""

    after: ReadCursor | None = None
    full_read_at: float = 0.0

    def start(self, now: float) -> ReadCursor | None:
        if self.after is None or now - self.full_read_at >= FULL_READ_INTERVAL:
            self.after, self.full_read_at = None, now
        return self.after

    def advance(self, read: list[AgentMessage], limit: int) -> None:
        self.after = max(m.read_key for m in read) if len(read) == limit else None


#: Longest wait of an intake that is waiting for buffer room or a slot: a safety net only, since the
#: executor wakes it as soon as either frees up.
BLOCKED_RECHECK = 1.0
#: Longest wait, when stopping, for an intake write in flight (its jobs must be given back or run).
INTAKE_STOP_WAIT = 5.0


@dataclass(slots=True)
class Running:
    job: Job
    #: Only for handlers that take one: most never look, and building it per job costs more than
    #: the rest of a no-op job's start.
    ctx: JobContext | None
    task: asyncio.Task[None] | None = None
    reason: str | None = None
    started_at: float = field(default_factory=time.time)
    #: Loop time by which the handler must be done (see `BucketExecutor._expire`).
    deadline: float = math.inf

    def signal_cancel(self) -> None:
        """Tell a handler that watches `ctx.cancel_event` (a sync one in a thread) to stop."""
        if self.ctx is not None:
            self.ctx.cancel_event.set()


class BucketExecutor:
    def __init__(self, worker: Worker, bucket: Bucket, agent: AgentTransport, config: WorkerConfig) -> None:
        self.worker = worker
        self.bucket = bucket
        self.agent = agent
        self.config = config
        self.capacity = run_capacity(bucket.priority, config.parallelism_factor)
        #: (due, arrival number, job): the arrival number breaks ties so jobs are never compared.
        self._buffer: list[tuple[float, int, Job]] = []
        self._arrivals = itertools.count()
        self._running: dict[str, Running] = {}
        self._starting = 0
        self._intake_wake = asyncio.Event()
        self._dispatch_wake = asyncio.Event()
        self._accepting = True
        self._saved_at = 0.0
        #: The last take filled every free slot, so more due jobs may wait for the next one.
        self._slot_wanted = False
        self._read_position = ReadPosition()
        self._intake_stopped = asyncio.Event()
        #: One timer for the earliest deadline of the running jobs, instead of one per job.
        self._deadline_timer: asyncio.TimerHandle | None = None

    # ---- views -------------------------------------------------------------------------------

    @property
    def room(self) -> int:
        return max(0, self.config.bucket_buffer_size - len(self._buffer))

    @property
    def load(self) -> int:
        return len(self._buffer) + len(self._running) + self._starting

    def held_ids(self) -> list[str]:
        """Jobs whose leases this executor must keep: buffered and running."""
        return [entry[2].id for entry in self._buffer] + list(self._running)

    def wake(self) -> None:
        self._intake_wake.set()

    def _buffer_push(self, job: Job) -> None:
        heapq.heappush(self._buffer, (job.scheduled_at, next(self._arrivals), job))

    def offer(self, jobs: list[Job]) -> None:
        """Jobs the local coordinator already marked Queued for this bucket (no agent hop)."""
        for job in jobs:
            self._buffer_push(job)
        self._dispatch_wake.set()

    # ---- intake ------------------------------------------------------------------------------

    async def intake_loop(self) -> None:
        cfg = self.worker.cluster
        polled = not self.agent.supports_notify
        failures = 0
        try:
            while self._accepting:
                try:
                    more = await self._intake_once()
                    if more or not self._accepting:
                        continue
                    if self._blocked():
                        timeout = BLOCKED_RECHECK
                    elif polled:
                        timeout = cfg.idle_poll_interval
                    else:
                        timeout = await self._until_next_due()
                    failures = 0
                except Exception:
                    failures += 1
                    delay = min(5.0, 0.1 * 2**failures)
                    log.exception("bucket %s: intake failed, retrying in %.1fs", self.bucket.id, delay)
                    await wait_for(self._intake_wake, delay)
                    continue
                await wait_for(self._intake_wake, timeout)
        finally:
            self._intake_stopped.set()

    def _blocked(self) -> bool:
        """Due jobs wait, but only this executor can make room for them: wait for it to say so.

        Without this the loop would spin on `next_due_at`, which keeps answering "now" while the
        buffer is full or every slot is busy. Dispatch wakes intake when it empties buffer places, and
        a finishing job does when due jobs were left waiting for a slot.
        """
        if self.room == 0 or self._slot_wanted:
            return self._startable(time.time()) == 0
        return False

    async def _until_next_due(self) -> float:
        """How long intake may sleep: until the next job can be fetched, at the latest.

        With the buffer full, a job can only be fetched to start in a free slot, so not before it
        is due; counting the lead time then would wake the intake at once, over and over.
        """
        now = time.time()
        due = await self.agent.next_due_at(self.bucket.id, now)
        if due is None:
            return 5.0
        lead = self.config.bucket_buffer_lead_time if self.room else 0.0
        return min(5.0, max(0.0, due - lead - now))

    async def _intake_once(self) -> bool:
        """Fetch what is due soon, persist what is not; True if a full batch came (more may wait)."""
        room = self.room
        now = time.time()
        visible_at = now + self.worker.cluster.job_lease
        lead_until = now + self.config.bucket_buffer_lead_time
        agent = self.agent
        if isinstance(agent, MasterQueue):
            return await self._take(agent, room, lead_until, visible_at)
        more = await self._read_due(agent, room, now, lead_until, visible_at)
        if now - self._saved_at < SAVE_INTERVAL:
            return more
        self._saved_at = now
        unsaved = await self.agent.claim_unsaved(self.bucket.id, SAVE_BATCH, lead_until, now, visible_at)
        if unsaved:
            await self._save(unsaved)
        return more or len(unsaved) == SAVE_BATCH

    async def _read_due(
        self, agent: AgentTransport, room: int, now: float, lead_until: float, visible_at: float
    ) -> bool:
        """Take as many jobs as free slots can start, or, with every slot busy, fill the buffer.

        A due job taken into the buffer costs the master two writes (Queued, then Processing); one
        taken for a free slot costs one, since adopting it starts it. So while due jobs are left
        waiting for slots (`_slot_wanted`), they wait in the agent, not in the buffer: a slot that
        frees wakes this intake, as with a job-table queue. A read for free slots also brings jobs
        due within the lead time, where the buffer has room for them all.

        While reads come back full (a backlog), each goes on from where the last one ended; a
        message that lands behind that cursor (pushed late with an earlier due time, or hidden by a
        claim for a while) is read by the next read from the start: the first one that comes back
        short, or one every `FULL_READ_INTERVAL` at the latest.
        """
        start = self._startable(now)
        if start:
            limit, due_before = start, (lead_until if room >= start else now)
        elif room and not self._slot_wanted:
            limit, due_before = room, lead_until
        else:
            return False
        after = self._read_position.start(now)
        messages = await agent.read_due(self.bucket.id, limit, due_before, now, visible_at, after)
        started = await self._adopt(messages) if messages else 0
        self._read_position.advance(messages, limit)
        if start:
            self._slot_wanted = started == start
        return len(messages) == limit or (self._slot_wanted and self._startable(time.time()) > 0)

    @contextlib.contextmanager
    def _reserving(self, slots: int) -> Iterator[None]:
        """Hold `slots` for the jobs a write in flight may start.

        Dispatch cannot see those slots meanwhile, so it is woken once they are given back: a due job
        that reached the buffer during the write would otherwise wait for the next wake-up.
        """
        self._starting += slots
        try:
            yield
        finally:
            self._starting -= slots
            if self._buffer:
                self._dispatch_wake.set()

    def _startable(self, now: float) -> int:
        """Slots a job taken now could start in: none while due jobs wait in the buffer."""
        if self._buffer and self._buffer[0][0] <= now:
            return 0
        return max(0, self._free_slots())

    async def _take(self, queue: MasterQueue, room: int, due_before: float, lease_until: float) -> bool:
        """The bucket queue is the job table: one write claims jobs and makes them ours.

        Due jobs go straight to Processing for the free slots, so they cost no separate start write;
        jobs due within the lead time fill the buffer.
        """
        now = time.time()
        start = self._startable(now)
        if start == 0 and room == 0:
            return False
        with self._reserving(start):
            jobs = await queue.take(
                self.bucket.id,
                self.worker.id,
                lease_until,
                now=now,
                start=start,
                due_before=due_before,
                limit=room,
            )
        started = 0
        for job in jobs:
            if job.status is JobStatus.Processing:
                self._launch(job, now)
                started += 1
            else:
                self._buffer_push(job)
        if len(jobs) > started:
            self._dispatch_wake.set()
        self._slot_wanted = start > 0 and started == start
        return (self._slot_wanted and self._startable(time.time()) > 0) or (
            room > 0 and len(jobs) - started == room
        )

    def _decode(self, messages: list[AgentMessage]) -> tuple[list[Job], list[Poison]]:
        jobs, poison = [], []
        for message in messages:
            try:
                job = codec.job_from_bytes(message.payload)
            except ValueError as exc:
                poison.append((message, str(exc)))
                continue
            job.version = message.version
            jobs.append(job)
        return jobs, poison

    async def _adopt(self, messages: list[AgentMessage]) -> int:
        """Make messages read from the agent ours; the due ones that fit free slots start in the
        same write, and every one of them is acknowledged before the next read.

        Returns how many started.
        """
        jobs, poison = self._decode(messages)
        if poison:
            await self.worker.runtime.set_aside(self.agent, self.bucket.id, poison)
        now = time.time()
        due = sorted((j for j in jobs if j.scheduled_at <= now), key=lambda j: j.scheduled_at)
        start = StartNow(frozenset(j.id for j in due[: self._startable(now)]), now)
        lease = now + self.worker.cluster.job_lease
        with self._reserving(len(start.ids)):
            owned = set(await self.worker.master.adopt(jobs, self.bucket.id, self.worker.id, lease, start))
        buffered, started = False, 0
        for job in jobs:
            if job.id not in owned:
                continue
            job.version += 1
            job.bucket_id = self.bucket.id
            job.worker_id = self.worker.id
            if job.id in start.ids:
                job.status = JobStatus.Processing
                job.attempts += 1
                self._launch(job, now)
                started += 1
            else:
                job.status = JobStatus.Queued
                self._buffer_push(job)
                buffered = True
        if buffered:
            self._dispatch_wake.set()  # before the ack: its round trip is not the jobs' to wait for
        await self.agent.ack(self.bucket.id, [j.id for j in jobs])
        return started

    async def _save(self, messages: list[AgentMessage]) -> None:
        """Persist SavePending jobs that are not due soon so the master can see and cancel them."""
        jobs, poison = self._decode(messages)
        if poison:
            await self.worker.runtime.set_aside(self.agent, self.bucket.id, poison)
        horizon = time.time() + self.worker.cluster.transient_threshold
        near = [j for j in jobs if j.scheduled_at <= horizon]
        far = [j.copy(status=JobStatus.HeldOnMaster) for j in jobs if j.scheduled_at > horizon]
        saved = set(
            await self.worker.master.save_pending(
                near, self.bucket.id, self.worker.id, self.worker.cluster.job_lease
            )
        )
        if far:
            await self.worker.master.insert_jobs(far)
            self.worker.runtime.hub.coordinator.set()
        keep = [
            AgentMessage(j.id, j.scheduled_at, 1, codec.job_to_bytes(j.copy(version=1)))
            for j in near
            if j.id in saved
        ]
        if keep:
            await self.agent.push(self.bucket.id, keep)
        await self.agent.ack(self.bucket.id, [j.id for j in jobs if j.id not in saved])

    # ---- dispatch ----------------------------------------------------------------------------

    def _free_slots(self) -> int:
        return self.capacity - len(self._running) - self._starting

    def _take_due(self, now: float) -> list[Job]:
        taken: list[Job] = []
        free = self._free_slots()
        while self._buffer and len(taken) < free and self._buffer[0][0] <= now:
            taken.append(heapq.heappop(self._buffer)[2])
        return taken

    async def dispatch_loop(self) -> None:
        while self._accepting or self._running:
            now = time.time()
            due = self._take_due(now) if self._accepting else []
            if due:
                self._intake_wake.set()
                await self._start(due)
                continue
            timeout: float | None = None
            if self._buffer and self._free_slots() > 0:
                timeout = max(0.0, self._buffer[0][0] - now)
            await wait_for(self._dispatch_wake, timeout)

    async def _start(self, jobs: list[Job]) -> None:
        self._starting += len(jobs)
        now = time.time()
        lease = now + self.worker.cluster.job_lease
        try:
            results = await self.worker.runtime.starts.submit_many(
                [(Fence(j.id, j.version), now, lease) for j in jobs]
            )
        except Exception:
            log.exception("bucket %s: could not mark jobs Processing; keeping them", self.bucket.id)
            for job in jobs:
                self._buffer_push(job)
            await asyncio.sleep(0.5)
            return
        finally:
            self._starting -= len(jobs)
        for job, started in zip(jobs, results, strict=True):
            if not started:
                continue
            job.version += 1
            job.attempts += 1
            job.status = JobStatus.Processing
            self._launch(job, now)

    def _launch(self, job: Job, now: float) -> None:
        handler = self.worker.services.registry.get(job.definition_id)
        ctx = self._context(job) if handler is not None and handler.wants_context else None
        loop = asyncio.get_running_loop()
        running = Running(job, ctx, started_at=now, deadline=loop.time() + job.timeout_s)
        self._running[job.id] = running
        running.task = loop.create_task(self._run(running, handler))
        self._watch(running.deadline)
        events = self.worker.events
        if events.wants(JobStarted):
            events.emit(JobStarted(job, self.worker.id, self.bucket.id))

    def _watch(self, deadline: float) -> None:
        """Arm the deadline timer if `deadline` comes before the one it is set for.

        A timer per job (`asyncio.timeout`) cost a timer handle, a heap push and a cancel for every
        job; jobs mostly end long before their timeout, so one timer that rarely fires does the same.
        """
        timer = self._deadline_timer
        if timer is not None and timer.when() <= deadline:
            return
        if timer is not None:
            timer.cancel()
        self._deadline_timer = asyncio.get_running_loop().call_at(deadline, self._expire)

    def _expire(self) -> None:
        """Interrupt every handler past its deadline, then wait for the next deadline."""
        self._deadline_timer = None
        now = asyncio.get_running_loop().time()
        earliest = math.inf
        for running in list(self._running.values()):
            if running.deadline > now:
                earliest = min(earliest, running.deadline)
            elif running.reason is None and running.task is not None:
                running.reason = TIMED_OUT
                running.signal_cancel()
                running.task.cancel()
        if earliest < math.inf:
            self._watch(earliest)

    def _context(self, job: Job) -> JobContext:
        return JobContext(
            job_id=job.id,
            definition_id=job.definition_id,
            attempt=job.attempts,
            scheduled_at=JobContext.utc(job.scheduled_at),
            data=job.data,
            metadata=job.metadata,
            priority=job.priority.name,
            lane=job.lane,
            worker_id=self.worker.id,
            logger=logging.getLogger(f"jobmaster.job.{job.definition_id}"),
            state=self.worker.services.state,
        )

    async def _run(self, running: Running, handler: Handler | None) -> None:
        job, ctx = running.job, running.ctx
        error: BaseException | None = None
        try:
            if handler is None:
                raise LookupError(f"no handler {job.definition_id!r} is registered in this worker process")
            args = () if ctx is None else (ctx,)
            threads = self.worker.runtime.threads
            if handler.chain is None:
                result = await invoke(handler, args, job.data, threads)
            else:
                result = await handler.chain(partial(invoke, handler, args, job.data, threads), job)
            if isinstance(result, Discard):
                error = result
        except asyncio.CancelledError:
            running.signal_cancel()
            if running.reason is None:
                raise
            if running.reason == TIMED_OUT:
                error = JobTimeoutError(f"job ran past its timeout of {job.timeout_s}s")
            else:
                error = JobCancelledError(running.reason)
        except Exception as exc:
            error = exc
        finally:
            self._running.pop(job.id, None)
            self._dispatch_wake.set()
            if self._slot_wanted:
                self._intake_wake.set()
        self._report(running, handler, error)

    def _report(self, running: Running, handler: Handler | None, error: BaseException | None) -> None:
        job, now, worker = running.job, time.time(), self.worker
        if error is None:
            completion = outcome.succeeded(job, worker.id, running.started_at, now)
        else:
            policy: RetryPolicy = worker.retry if handler is None or handler.retry is None else handler.retry
            completion = outcome.failed(
                job, error, running.reason, worker.id, running.started_at, now, policy
            )
        self.worker.runtime.completions.post(completion)
        events = self.worker.events
        if events.wants(JobEnded):
            events.emit(outcome.ended_event(job, completion))

    def cancel(self, job_id: str, reason: str) -> bool:
        running = self._running.get(job_id)
        if running is None or running.task is None:
            return False
        running.reason = reason
        running.signal_cancel()
        running.task.cancel()
        return True

    def abandon(self) -> int:
        """Drop everything held without writing (the master is unreachable and our leases are gone)."""
        dropped = len(self._buffer) + len(self._running)
        self._buffer.clear()
        for job_id in list(self._running):
            self.cancel(job_id, LEASE_LOST)
        return dropped

    # ---- stopping ----------------------------------------------------------------------------

    async def stop(self, grace: float) -> None:
        """Stop intake, give buffered jobs back, let running ones finish within `grace`."""
        self._accepting = False
        self._intake_wake.set()
        self._dispatch_wake.set()
        try:
            await asyncio.wait_for(self._intake_stopped.wait(), INTAKE_STOP_WAIT)
        except TimeoutError:
            log.warning(
                "bucket %s: intake still busy after %.0fs; stopping anyway", self.bucket.id, INTAKE_STOP_WAIT
            )
        buffered = [entry[2] for entry in self._buffer]
        self._buffer.clear()
        if buffered:
            try:
                await self.worker.master.release([Fence(j.id, j.version) for j in buffered])
                await self.worker.runtime.wake_coordinators()
            except Exception:
                # their leases still bring them back once they lapse; stopping must go on
                log.exception(
                    "bucket %s: could not give %d buffered jobs back", self.bucket.id, len(buffered)
                )
        tasks = [r.task for r in self._running.values() if r.task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for job_id in list(self._running):
                self.cancel(job_id, SHUTDOWN)
            if pending:
                await asyncio.wait(pending)
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None
