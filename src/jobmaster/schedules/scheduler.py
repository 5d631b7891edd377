"""The scheduler duty: turns due occurrences of recurring schedules into jobs, in any number of
processes at once, with no leader.

Each occurrence's job has an id derived from (cluster, schedule, occurrence time in UTC), and the
master inserts a job whose id it holds already as nothing (`insert_jobs`: insert-or-ignore on the
primary key in every dialect). So two schedulers that reach the same occurrence make one job between
them, and a scheduler that dies between inserting a job and moving its schedule on leaves nothing for
the next one to repeat. Moving a schedule on is a compare-and-swap on its `next_at`, so only one
scheduler counts a pass's skipped and missed occurrences.

The duty sleeps until the next occurrence of any schedule is due (at most `MAX_SLEEP_S`, and woken at
once by `schedules` notifications when a schedule is added or resumed), so an idle
cluster costs two reads per process every few seconds and one write a minute to say which schedules
its code declares.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from jobmaster.cluster.model import WorkerMode
from jobmaster.events import EventBus, JobScheduled
from jobmaster.jobs.model import Job, JobStatus, Priority
from jobmaster.logs.outages import MASTER
from jobmaster.master.base import MasterStore
from jobmaster.runtime.hub import HELD
from jobmaster.schedules.declarations import ScheduleSpec
from jobmaster.schedules.planning import at, first_after, iso, plan
from jobmaster.schedules.store import Advance, ScheduleRow, ScheduleStore, occurrence_id

if TYPE_CHECKING:
    from jobmaster.runtime.worker import Worker

log = logging.getLogger("jobmaster.schedules")

#: The notification topic that wakes schedulers: a schedule was added or resumed.
SCHEDULES = "schedules"
#: The longest a scheduler sleeps without looking at the master (bounds how late a schedule added
#: from another process, on a master that cannot notify, is first seen).
MAX_SLEEP_S = 5.0
#: The shortest, so a schedule that stays due (a pass cut at MAX_BATCHES) never spins the loop.
MIN_SLEEP_S = 0.01
#: Due schedules read per statement; a pass reads batches until none is due.
BATCH = 1000
#: Batches per pass at most (100,000 due schedules; the rest wait for the next pass).
MAX_BATCHES = 100
#: Schedules named in the warning of a pass that missed occurrences.
MISSED_NAMED = 10
#: Metadata keys of an occurrence's job.
SCHEDULE_KEY = "schedule"
OCCURRENCE_KEY = "occurrence"
TRIGGER_KEY = "triggered"


def occurrence_job(spec: ScheduleSpec, job_id: str, occurrence: float, now: float, *, triggered: bool) -> Job:
    """The job of one occurrence (or of a manual run, `triggered`), as the spec's resolved options
    make it; jitter moves a scheduled occurrence's due time, never its key."""
    jittered = spec.jitter_s and not triggered  # a manual run runs now
    due = spec.timing.jittered(at(occurrence), spec.name).timestamp() if jittered else occurrence
    metadata = {**spec.metadata, SCHEDULE_KEY: spec.name, OCCURRENCE_KEY: iso(occurrence)}
    if triggered:
        metadata[TRIGGER_KEY] = True
    return Job(
        job_id,
        spec.handler,
        due,
        now,
        Priority(spec.priority),
        spec.lane,
        dict(spec.data),
        metadata,
        spec.timeout_s,
        spec.max_retries,
        spec.max_retries + 1,
        JobStatus.HeldOnMaster,
    )


@dataclass(slots=True)
class PassResult:
    """What one pass did, for tests and logs."""

    inserted: int = 0
    skipped: int = 0
    missed: int = 0
    moved: int = 0
    #: Occurrences missed, by schedule.
    missed_by: dict[str, int] = field(default_factory=dict)

    def log_missed(self) -> None:
        """One warning a pass, naming the first schedules: after an outage thousands may have
        missed occurrences, and a line each would bury the log."""
        if not self.missed_by:
            return
        named = ", ".join(f"{name} ({count})" for name, count in list(self.missed_by.items())[:MISSED_NAMED])
        more = len(self.missed_by) - MISSED_NAMED
        log.warning(
            "%d occurrence(s) of %d schedule(s) missed while no scheduler ran (not run, per catch_up): %s%s",
            self.missed,
            len(self.missed_by),
            named,
            f" and {more} more" if more > 0 else "",
        )


@dataclass(slots=True)
class _Batch:
    jobs: list[Job] = field(default_factory=list)
    advances: list[Advance] = field(default_factory=list)


async def run_pass(
    master: MasterStore,
    now: float,
    *,
    events: EventBus | None = None,
    wake: Callable[[], None] | None = None,
) -> PassResult:
    """Insert the jobs of every occurrence due by `now`, then move each schedule past `now`.

    Every due schedule's jobs are inserted (page by page) before any schedule moves, so the last
    job of a large pass is not queued behind the bookkeeping of the others.
    """
    store = ScheduleStore(master)
    result = PassResult()
    advances: list[Advance] = []
    after: tuple[float, str] | None = None
    for _ in range(MAX_BATCHES):
        rows = await store.due(now, BATCH, after)
        if not rows:
            break
        after = (rows[-1].next_at, rows[-1].name)
        batch = await _plan_batch(store, master.cluster_id, rows, now, result)
        advances += batch.advances
        if batch.jobs:
            new = set(await master.insert_jobs(batch.jobs))
            result.inserted += len(new)
            if wake is not None:
                wake()
            if events is not None and events.wants(JobScheduled):
                for job in batch.jobs:
                    if job.id in new:
                        events.emit(JobScheduled(job))
        if len(rows) < BATCH:
            break
    result.moved = await store.advance(advances, now)
    result.log_missed()
    return result


async def _plan_batch(
    store: ScheduleStore, cluster_id: str, rows: Sequence[ScheduleRow], now: float, result: PassResult
) -> _Batch:
    batch = _Batch()
    plans = [(row, plan(row.spec.timing, row.spec.catch_up, row.next_at, now)) for row in rows]
    watched = [i for r, p in plans if p and p.runs and r.spec.overlap == "skip" for i in r.recent_job_ids]
    busy = await store.running(watched) if watched else set()
    for row, p in plans:
        if p is None:
            continue
        runs = p.runs
        skipped = 0
        if row.spec.overlap == "skip" and runs:
            # One occurrence at most, and none while the previous one waits or runs.
            skipped = len(runs) - 1
            runs = runs[-1:]
            if busy.intersection(row.recent_job_ids):
                skipped, runs = skipped + 1, ()
        for occurrence in runs:
            job_id = occurrence_id(cluster_id, row.name, occurrence)
            batch.jobs.append(occurrence_job(row.spec, job_id, occurrence, now, triggered=False))
        if p.missed:
            result.missed_by[row.name] = p.missed
        result.skipped += skipped
        result.missed += p.missed
        batch.advances.append(
            Advance(
                row.name, row.next_at, p.next_at, p.last_at, runs[-1] if runs else None, skipped, p.missed
            )
        )
    return batch


class SchedulerDuty:
    """Runs the recurring schedules of the cluster in one worker per process (coordinators and full
    workers); several processes each running it is the intended set-up, not a hazard."""

    name = "scheduler"

    def __init__(self) -> None:
        #: The schedules this process declares in code, by name.
        self.declared: dict[str, ScheduleSpec] = {}
        self._active = False

    def wanted(self, mode: WorkerMode) -> bool:
        return mode.coordinates

    async def run(self, worker: Worker) -> None:
        if self._active:  # another worker of this process runs it
            return
        self._active = True
        wake = asyncio.Event()
        stop_listening = worker.runtime.hub.on_topic(SCHEDULES, wake.set)
        try:
            await self._loop(worker, wake)
        finally:
            stop_listening()
            self._active = False

    async def _loop(self, worker: Worker, wake: asyncio.Event) -> None:
        store = ScheduleStore(worker.master)
        declarer = f"{os.getpid()}-{uuid.uuid4().hex[:16]}"
        retire_after = worker.cluster.schedule_retire_after
        refresh_every = min(60.0, max(1.0, retire_after / 4))
        declared_at: float | None = None
        hub = worker.runtime.hub
        while not worker.stopping.is_set():
            wake.clear()  # before the pass: a schedule added during it wakes the next one
            now = time.time()
            sleep = worker.cluster.heartbeat_interval
            try:
                if declared_at is None:
                    await self._declare(store, declarer, now)
                    declared_at = now
                elif now - declared_at >= refresh_every:
                    await self._refresh(store, declarer, now, retire_after)
                    declared_at = now
                await run_pass(worker.master, now, events=worker.events, wake=lambda: hub.master_topic(HELD))
                following = await store.next_due()
                until = min(declared_at + refresh_every, now + MAX_SLEEP_S)
                if following is not None:
                    until = min(until, following)
                sleep = max(MIN_SLEEP_S, until - time.time())
                worker.runtime.outages.ok(MASTER)
            except Exception as exc:
                worker.runtime.outages.failed(MASTER, exc, f"the scheduler pass of worker {worker.id}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_first(worker.stopping, wake), sleep)

    async def _declare(self, store: ScheduleStore, declarer: str, now: float) -> None:
        if not self.declared:
            return
        specs = [(s, first_after(s.timing, now)) for s in self.declared.values()]
        changed, refused = await store.declare(specs, declarer, now)
        for name in changed:
            log.info("schedule %s declared: %s", name, self.declared[name].timing.explain())
        for name in refused:
            log.error(
                "schedule %s is declared in code, but a dynamic schedule of that name exists: not run", name
            )

    async def _refresh(self, store: ScheduleStore, declarer: str, now: float, retire_after: float) -> None:
        if self.declared:
            await store.refresh(declarer, now)
        for name in await store.retire(now, now - retire_after):
            log.info("schedule %s retired: no running process has declared it for %.0fs", name, retire_after)


async def _first(*events: asyncio.Event) -> None:
    """Wait until any of `events` is set."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
