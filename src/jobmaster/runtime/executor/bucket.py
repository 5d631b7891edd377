"""One bucket's executor: its buffer and slots, dispatch, runs and their deadlines.

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
from typing import TYPE_CHECKING, Any

from jobmaster.cluster.model import Bucket
from jobmaster.config.settings import WorkerConfig
from jobmaster.errors import JobCancelledError, JobTimeoutError, ResultError
from jobmaster.events import JobStarted, JobSucceeded
from jobmaster.handlers.context import JobContext, context_for
from jobmaster.handlers.registry import Handler
from jobmaster.jobs import codec
from jobmaster.jobs.model import Job, JobStatus, run_capacity
from jobmaster.jobs.outcomes import Discard, Snooze
from jobmaster.jobs.retry import RetryPolicy
from jobmaster.logs.context import CURRENT_JOB
from jobmaster.logs.outages import MASTER
from jobmaster.master.base import Fence
from jobmaster.runtime.executor import outcome
from jobmaster.runtime.executor.intake import AgentCallError, Intake
from jobmaster.runtime.executor.invoke import invoke
from jobmaster.runtime.executor.outcome import LEASE_LOST, SHUTDOWN, TIMED_OUT
from jobmaster.runtime.hub import wait_for

if TYPE_CHECKING:
    from jobmaster.runtime.worker import Worker

log = logging.getLogger("jobmaster.executor")

#: Longest wait of an intake that is waiting for buffer room or a slot: a safety net only, since the
#: executor wakes it as soon as either frees up.
BLOCKED_RECHECK = 1.0
#: What a handler may return instead of raising (a tuple: `Discard | Snooze` would build a union
#: object on every job).
HANDLER_OUTCOMES = (Discard, Snooze)
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
    #: Set when the write that started the job may not be on disk yet: the handler waits for True,
    #: and does not run on False (`master/flush.py`).
    on_disk: asyncio.Future[bool] | None = None

    def signal_cancel(self) -> None:
        """Tell a handler that watches `ctx.cancel_event` (a sync one in a thread) to stop."""
        if self.ctx is not None:
            self.ctx.cancel_event.set()


class BucketExecutor:
    def __init__(self, worker: Worker, bucket: Bucket, intake: Intake, config: WorkerConfig) -> None:
        self.worker = worker
        self.bucket = bucket
        self.intake = intake
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
        #: The last take filled every free slot, so more due jobs may wait for the next one.
        self.slot_wanted = False
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

    def outlived(self, lease_until: float, count: int) -> bool:
        """True if a write that made `count` jobs ours was answered after the lease it asked for ran
        out: the master may have recovered and handed them out meanwhile (a partition held the
        answer, found by tests/e2e/test_faults.py), so they are left to it, never run or buffered."""
        if time.time() <= lease_until:
            return False
        if count:
            log.warning(
                "bucket %s: a write of %d job(s) was answered after the lease it asked for ran out;"
                " they are left to the master",
                self.bucket.id,
                count,
            )
        return True

    def buffer_push(self, job: Job) -> None:
        heapq.heappush(self._buffer, (job.scheduled_at, next(self._arrivals), job))

    def wake_dispatch(self) -> None:
        self._dispatch_wake.set()

    def offer(self, jobs: list[Job]) -> None:
        """Jobs the local coordinator already marked Queued for this bucket (no agent hop)."""
        for job in jobs:
            self.buffer_push(job)
        self._dispatch_wake.set()

    # ---- intake ------------------------------------------------------------------------------

    async def intake_loop(self) -> None:
        outages = self.worker.runtime.outages
        failures = 0
        try:
            while self._accepting:
                try:
                    timeout = await self._intake_pass()
                    failures = 0
                except Exception as exc:
                    failures += 1
                    if isinstance(exc, AgentCallError):
                        outages.failed(exc.service, exc.__cause__ or exc, exc.doing)
                    else:
                        outages.failed(MASTER, exc, f"taking jobs into bucket {self.bucket.id}")
                    timeout = min(5.0, 0.1 * 2**failures)
                if timeout is not None:
                    await wait_for(self._intake_wake, timeout)
        finally:
            self._intake_stopped.set()

    async def _intake_pass(self) -> float | None:
        """One fetch; how long to wait before the next, or None to go on at once (more may wait)."""
        more = await self.intake.fetch(self, time.time())
        outages = self.worker.runtime.outages
        outages.ok(MASTER)
        outages.ok(self.intake.service)
        if more or not self._accepting:
            return None
        if self._blocked():
            return BLOCKED_RECHECK
        if not self.intake.queue.supports_notify:
            return self.worker.cluster.idle_poll_interval
        return await self._until_next_due()

    def _blocked(self) -> bool:
        """Due jobs wait, but only this executor can make room for them: wait for it to say so.

        Without this the loop would spin on `next_due_at`, which keeps answering "now" while the
        buffer is full or every slot is busy. Dispatch wakes intake when it empties buffer places, and
        a finishing job does when due jobs were left waiting for a slot.
        """
        if self.room == 0 or self.slot_wanted:
            return self.startable(time.time()) == 0
        return False

    async def _until_next_due(self) -> float:
        """How long intake may sleep: until the next job can be fetched, at the latest.

        With the buffer full, a job can only be fetched to start in a free slot, so not before it
        is due; counting the lead time then would wake the intake at once, over and over.
        """
        now = time.time()
        due = await self.intake.queue.next_due_at(self.bucket.id, now)
        if due is None:
            return 5.0
        lead = self.config.bucket_buffer_lead_time if self.room else 0.0
        return min(5.0, max(0.0, due - lead - now))

    @contextlib.contextmanager
    def reserving(self, slots: int) -> Iterator[None]:
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

    def startable(self, now: float) -> int:
        """Slots a job taken now could start in: none while due jobs wait in the buffer."""
        if self._buffer and self._buffer[0][0] <= now:
            return 0
        return max(0, self._free_slots())

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
        except Exception as exc:
            self.worker.runtime.outages.failed(MASTER, exc, f"starting jobs of bucket {self.bucket.id}")
            for job in jobs:
                self.buffer_push(job)
            await asyncio.sleep(0.5)
            return
        finally:
            self._starting -= len(jobs)
        if self.outlived(lease, sum(results)):
            return
        for job, started in zip(jobs, results, strict=True):
            if not started:
                continue
            job.version += 1
            job.attempts += 1
            job.status = JobStatus.Processing
            self.launch(job, now)

    def launch(self, job: Job, now: float, on_disk: asyncio.Future[bool] | None = None) -> None:
        handler = self.worker.services.registry.get(job.definition_id)
        ctx = self._context(job) if handler is not None and handler.wants_context else None
        loop = asyncio.get_running_loop()
        running = Running(job, ctx, started_at=now, deadline=loop.time() + job.timeout_s, on_disk=on_disk)
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
        return context_for(job, self.worker.id, self.worker.services.state)

    async def _run(self, running: Running, handler: Handler | None) -> None:
        job, ctx = running.job, running.ctx
        error: BaseException | None = None
        result: Any = None
        CURRENT_JOB.set(job)
        try:
            if running.on_disk is not None and not await asyncio.shield(running.on_disk):
                # its start may be undone: left to its lease, as if this worker had died
                return
            if handler is None:
                raise LookupError(f"no handler {job.definition_id!r} is registered in this worker process")
            args = () if ctx is None else (ctx,)
            threads = self.worker.runtime.threads
            if handler.chain is None and handler.is_async:
                result = await handler.func(*args, **job.data)  # the common case, without a call more
            elif handler.chain is None:
                result = await invoke(handler, args, job.data, threads)
            else:
                result = await handler.chain(partial(invoke, handler, args, job.data, threads), job)
            if isinstance(result, HANDLER_OUTCOMES):
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
            if self.slot_wanted:
                self._intake_wake.set()
        self._report(running, handler, error, result)

    def _report(
        self, running: Running, handler: Handler | None, error: BaseException | None, result: Any
    ) -> None:
        job, now, worker = running.job, time.time(), self.worker
        events = worker.events
        encoded: str | None = None
        if error is None and result is not None:
            try:
                encoded = codec.encode_result(result, job.definition_id, worker.cluster.max_result_bytes)
            except ResultError as exc:
                error = exc
        if error is None:
            completion = outcome.succeeded(job, worker.id, running.started_at, now, encoded)
            worker.runtime.completions.post(completion)
            if events.wants(JobSucceeded):
                events.emit(JobSucceeded(job, completion.attempt))
            return
        policy: RetryPolicy = worker.retry if handler is None or handler.retry is None else handler.retry
        completion = outcome.failed(job, error, running.reason, worker.id, running.started_at, now, policy)
        worker.runtime.completions.post(completion)
        kind = outcome.ended_kind(completion)
        if events.wants(kind):
            events.emit(outcome.ended_event(kind, job, completion))

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
