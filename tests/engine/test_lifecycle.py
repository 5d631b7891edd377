"""The job lifecycle end to end inside one process, on every master backend."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from engine_support import eventually

from helpers import make_job
from jobmaster import JobContext, JobStatus, Priority
from jobmaster.agents.master_queue import MasterQueue
from jobmaster.master.base import Fence
from jobmaster.runtime.executor import intake


async def test_every_job_runs_exactly_once_across_priorities(make_app, start) -> None:
    app = make_app(workers=[{"name": "w1", "parallelism_factor": 4}])
    runs: Counter[str] = Counter()

    @app.handler
    async def record(ctx: JobContext, n: int) -> None:
        runs[ctx.job_id] += 1

    running = await start(app)
    ids: list[str] = []
    for priority in Priority:
        ids += await app.schedule_many(record, [{"n": i} for i in range(100)], priority=priority)
    ids.append(await app.schedule(record, {"n": -1}))
    await eventually(lambda: _count(app, "Succeeded", len(ids)))
    assert set(runs) == set(ids)
    assert set(runs.values()) == {1}
    job = await running.app.get_job(ids[0])
    assert job.attempts == 1 and job.started_at and job.finished_at
    history = await app.job_attempts(ids[0])
    assert [a.outcome for a in history] == ["succeeded"]


async def _count(app, status: str, expected: int) -> bool:
    return await app.count_jobs(status=status) == expected


async def test_failures_are_retried_with_error_history(make_app, start) -> None:
    app = make_app()
    calls: Counter[str] = Counter()

    @app.handler(max_retries=3)
    async def flaky(ctx: JobContext) -> None:
        calls[ctx.job_id] += 1
        if ctx.attempt < 3:
            raise ValueError(f"attempt {ctx.attempt} fails")

    running = await start(app)
    job_id = await app.schedule(flaky)
    job = await running.wait_status(job_id, "Succeeded")
    assert job.attempts == 3 and calls[job_id] == 3
    history = await app.job_attempts(job_id)
    assert [a.outcome for a in history] == ["failed", "failed", "succeeded"]
    assert history[0].error is not None
    assert history[0].error["type"] == "ValueError"
    assert history[0].error["message"] == "attempt 1 fails"
    assert "Traceback" in history[0].error["traceback"]


async def test_exhausted_retries_end_failed(make_app, start) -> None:
    app = make_app()

    @app.handler
    def always_fails() -> None:
        raise RuntimeError("nope")

    running = await start(app)
    job_id = await app.schedule(always_fails, max_retries=1)
    job = await running.wait_status(job_id, "Failed")
    assert job.attempts == 2
    assert job.last_error["type"] == "RuntimeError"
    assert [a.outcome for a in await app.job_attempts(job_id)] == ["failed", "failed"]


async def test_timeout_interrupts_an_async_handler(make_app, start) -> None:
    app = make_app()
    finished = asyncio.Event()

    @app.handler(timeout=0.2, max_retries=0)
    async def slow(ctx: JobContext) -> None:
        await asyncio.sleep(30)
        finished.set()

    running = await start(app)
    began = time.monotonic()
    job_id = await app.schedule(slow)
    job = await running.wait_status(job_id, "Failed")
    assert time.monotonic() - began < 20  # interrupted at 0.2 s, not after the run's 30 s
    assert not finished.is_set()
    assert job.last_error["type"].endswith("JobTimeoutError")
    assert [a.outcome for a in await app.job_attempts(job_id)] == ["timeout"]


async def test_every_running_job_meets_its_own_timeout(make_app, start) -> None:
    """One timer serves all running jobs: a shorter timeout started later, and the next deadline
    after one fires, both still interrupt on time, and a long timeout is left running."""
    app = make_app()

    @app.handler(max_retries=0)
    async def sleeper(ctx: JobContext) -> None:
        await asyncio.sleep(60)

    running = await start(app)
    long_id = await app.schedule(sleeper, timeout=60)
    await running.wait_status(long_id, "Processing")
    began = time.monotonic()
    short_id = await app.schedule(sleeper, timeout=0.3)
    later_id = await app.schedule(sleeper, timeout=1.0)
    for job_id in (short_id, later_id):
        job = await running.wait_status(job_id, "Failed", timeout=30)
        assert job.last_error["type"].endswith("JobTimeoutError")
    assert time.monotonic() - began < 30  # on their own timeouts, not the 60 s one's
    assert (await app.get_job(long_id)).status is JobStatus.Processing
    await app.cancel(long_id)
    await running.wait_status(long_id, "Cancelled")


async def test_timed_out_sync_handler_gives_its_slot_back(make_app, start) -> None:
    app = make_app(workers=[{"name": "w1", "parallelism_factor": 0.01}])  # one slot per bucket
    saw_cancel = threading.Event()

    @app.handler(timeout=0.3, max_retries=0)
    def stuck(ctx: JobContext) -> None:
        if ctx.cancel_event.wait(60):
            saw_cancel.set()

    @app.handler
    def quick() -> None:
        return None

    running = await start(app)
    stuck_id = await app.schedule(stuck)
    await running.wait_status(stuck_id, "Processing")
    quick_id = await app.schedule(quick)
    # The slot is given back when the timeout fires (0.3 s), not when the thread ends (60 s).
    await running.wait_status(quick_id, "Succeeded", timeout=30)
    await eventually(lambda: asyncio.sleep(0, saw_cancel.is_set()))


async def test_a_backlog_runs_through_one_slot_without_stalls(make_app, start) -> None:
    """Due jobs left waiting for a slot are taken the moment one frees: never two at once, no wait."""
    app = make_app(workers=[{"name": "w1", "parallelism_factor": 0.01}])  # one slot per bucket
    active, most = 0, 0

    @app.handler
    async def step() -> None:
        nonlocal active, most
        active += 1
        most = max(most, active)
        await asyncio.sleep(0.01)
        active -= 1

    await start(app)
    began = time.monotonic()
    ids = await app.schedule_many(step, [{} for _ in range(40)])
    await eventually(lambda: _count(app, "Succeeded", len(ids)), timeout=60)
    # each job stalled until the intake's safety re-check (1 s) would take 40 s
    assert time.monotonic() - began < 30
    assert most == 1


async def test_due_jobs_beyond_free_slots_wait_in_the_agent_not_the_buffer(make_app, urls, start) -> None:
    """Buffering a due job that no slot can start costs it a second master write (Queued, then
    Processing); left in the agent, it is claimed and started in one write when a slot frees."""
    app = make_app(
        agents={"a": urls["agent"]},
        workers=[{"name": "w1", "agent": "a", "parallelism_factor": 0.5, "bucket_buffer_size": 50}],
    )
    release = asyncio.Event()

    @app.handler
    async def held() -> None:
        await release.wait()

    await start(app)
    ids = await app.schedule_many(held, [{} for _ in range(10)])
    await eventually(lambda: _count(app, "Processing", 2))  # two slots (Medium: 4 x 0.5)
    await asyncio.sleep(0.3)
    assert await app.count_jobs(status="Queued") == 0
    assert await app.count_jobs(status="Processing") == 2
    release.set()
    await eventually(lambda: _count(app, "Succeeded", len(ids)))


async def test_the_jobs_of_a_call_are_spread_over_the_routes_buckets_in_turn(make_app, urls, start) -> None:
    only_medium = {"Medium": 3, "VeryLow": 0, "Low": 0, "High": 0, "Critical": 0}
    worker = {"name": "w1", "agent": "a", "buckets": only_medium}
    app = make_app(agents={"a": urls["agent"]}, workers=[worker])

    @app.handler
    async def spread() -> None:
        return None

    running = await start(app)
    ids = await app.schedule_many(spread, [{} for _ in range(8)])
    ids += await app.schedule_many(spread, [{} for _ in range(4)])
    await eventually(lambda: _count(app, "Succeeded", len(ids)))
    buckets = [(await running.app.get_job(job_id)).bucket_id for job_id in ids]
    assert len(set(buckets[:3])) == 3
    # in turn, and the second call goes on where the first left off
    assert buckets == buckets[:3] * 4


async def test_a_job_due_before_a_backlog_is_not_left_until_the_backlog_is_done(
    make_app, urls, start, monkeypatch
) -> None:
    """Under a backlog an owner reads on from a cursor; a job that lands behind it (due earlier
    than the jobs already read) is still read within the full-read interval, not after the rest."""
    monkeypatch.setattr(intake, "FULL_READ_INTERVAL", 0.2)
    worker = {"name": "w1", "agent": "a", "parallelism_factor": 0.5}
    app = make_app(agents={"a": urls["agent"]}, workers=[worker])
    started: list[str] = []

    @app.handler
    async def step(ctx: JobContext) -> None:
        started.append(ctx.job_id)
        await asyncio.sleep(0.01)

    await start(app)
    backlog = await app.schedule_many(step, [{} for _ in range(300)])
    await eventually(lambda: asyncio.sleep(0, len(started) >= 10))
    early = await app.schedule(step, at=datetime.now(UTC) - timedelta(seconds=60))
    await eventually(lambda: _count(app, "Succeeded", len(backlog) + 1), timeout=30)
    assert started.index(early) < len(started) - 50


@pytest.mark.parametrize("own_agent", [True, False], ids=["agent", "standalone"])
async def test_a_full_buffer_of_later_jobs_does_not_spin_the_intake(make_app, urls, start, own_agent) -> None:
    """Free slots and a full buffer of jobs not yet due: nothing can be taken until one is due, so
    the intake must sleep until then instead of asking the agent again at once, over and over."""
    worker = dict(name="w1", bucket_buffer_size=2, bucket_buffer_lead_time=3.0, parallelism_factor=0.5)
    if own_agent:
        app = make_app(
            agents={"a": urls["agent"]}, workers=[{**worker, "agent": "a"}], idle_poll_interval=0.5
        )
    else:
        app = make_app(workers=[worker], idle_poll_interval=0.5)

    @app.handler
    async def later() -> None:
        return None

    running = await start(app)
    agent = app.runtime.agents["a" if own_agent else "standalone"]
    if isinstance(agent, MasterQueue):
        agent = agent.master  # a job-table queue asks the master
        asked, original = "next_queued_due", agent.next_queued_due
    else:
        asked, original = "next_due_at", agent.next_due_at
    calls = 0

    async def counted(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        return await original(*args)

    setattr(agent, asked, counted)
    ids = await app.schedule_many(later, [{} for _ in range(5)], delay=1.5)
    await eventually(lambda: _count(app, "Queued", 2))
    calls = 0
    await asyncio.sleep(0.5)
    assert calls < 20, f"the intake asked for the next due time {calls} times in 0.5 s"
    for job_id in ids:
        await running.wait_status(job_id, "Succeeded", timeout=10)


async def test_cancel_a_running_job_is_cooperative(make_app, start) -> None:
    app = make_app()
    began = asyncio.Event()
    observed: list[bool] = []

    @app.handler
    async def long(ctx: JobContext) -> None:
        began.set()
        try:
            await asyncio.sleep(30)
        finally:
            observed.append(ctx.cancelled)

    running = await start(app)
    job_id = await app.schedule(long)
    await asyncio.wait_for(began.wait(), 10)
    requested = await app.cancel(job_id)
    assert requested.cancel_requested
    cancelled = await running.wait_status(job_id, "Cancelled")
    assert cancelled.finished_at is not None
    assert observed == [True]
    assert [a.outcome for a in await app.job_attempts(job_id)] == ["cancelled"]


async def test_cancelled_jobs_never_run(make_app, start) -> None:
    app = make_app(transient_threshold=2)
    ran: list[str] = []

    @app.handler
    async def task(ctx: JobContext) -> None:
        ran.append(ctx.job_id)

    running = await start(app)
    in_window = await app.schedule(task, delay=1.0)  # YES path: bucket on the agent
    beyond = await app.schedule(task, delay=2.5)  # NO path: HeldOnMaster
    for job_id in (in_window, beyond):
        assert (await app.cancel(job_id)).status is JobStatus.Cancelled
    # A job due after both: once it ran, the worker has been past their due times.
    after = await app.schedule(task, delay=3.0)
    await running.wait_status(after, "Succeeded")
    assert ran == [after]
    for job_id in (in_window, beyond):
        assert (await running.app.get_job(job_id)).status is JobStatus.Cancelled


async def test_reschedule_and_retry_by_hand(make_app, start) -> None:
    app = make_app()
    fail = True
    ran: list[str] = []

    @app.handler(max_retries=0)
    async def job(ctx: JobContext) -> None:
        ran.append(ctx.job_id)
        if fail:
            raise ValueError("first time")

    running = await start(app)
    later = await app.schedule(job, delay=300)
    moved = await app.reschedule(later, delay=0)
    assert moved.status is JobStatus.HeldOnMaster
    await running.wait_status(later, "Failed")
    fail = False
    retried = await app.retry(later)
    assert retried.status is JobStatus.HeldOnMaster
    done = await running.wait_status(later, "Succeeded")
    assert done.attempts == 2 and ran == [later, later]


async def test_far_future_jobs_wait_on_the_master_and_start_on_time(make_app, start) -> None:
    app = make_app(transient_threshold=1)
    started_at: dict[str, float] = {}

    @app.handler
    async def timed(ctx: JobContext) -> None:
        started_at[ctx.job_id] = time.time()

    running = await start(app)
    due = datetime.now(UTC) + timedelta(seconds=2.5)
    job_id = await app.schedule(timed, at=due)
    assert (await app.get_job(job_id)).status is JobStatus.HeldOnMaster
    await running.wait_status(job_id, "Succeeded", timeout=10)
    assert abs(started_at[job_id] - due.timestamp()) < 1.0


async def test_lanes_and_excluded_priorities_are_respected(make_app, start) -> None:
    no_critical = {p.name: (0 if p is Priority.Critical else 1) for p in Priority}
    app = make_app(
        workers=[
            {"name": "general", "buckets": no_critical},
            {
                "name": "heavy",
                "lane": "Heavy",
                "buckets": {"Medium": 1, "VeryLow": 0, "Low": 0, "High": 0, "Critical": 0},
            },
        ]
    )
    where: dict[str, str] = {}

    @app.handler
    async def task(ctx: JobContext) -> None:
        where[ctx.job_id] = ctx.worker_id

    running = await start(app)
    default_ids = await app.schedule_many(task, [{} for _ in range(20)])
    heavy_ids = await app.schedule_many(task, [{} for _ in range(20)], lane="Heavy")
    critical = await app.schedule(task, priority="critical")
    await eventually(lambda: _count(app, "Succeeded", 40))
    assert all(where[j].startswith("general-") for j in default_ids)
    assert all(where[j].startswith("heavy-") for j in heavy_ids)
    # A job scheduled after the critical one: once it ran, the critical one had its chance.
    after = await app.schedule(task)
    await running.wait_status(after, "Succeeded")
    assert critical not in where
    assert (await running.app.get_job(critical)).status is JobStatus.HeldOnMaster


async def test_graceful_stop_returns_buffered_jobs(make_app, start) -> None:
    app = make_app()
    ran: list[str] = []

    @app.handler
    async def later(ctx: JobContext) -> None:
        ran.append(ctx.job_id)

    running = await start(app)
    ids = await app.schedule_many(later, [{} for _ in range(10)], delay=4)
    await eventually(lambda: _count(app, "Queued", 10))
    await running.stop()
    await app.open()
    try:
        for job_id in ids:
            job = await app.get_job(job_id)
            assert job.status is JobStatus.HeldOnMaster and job.worker_id is None
        assert ran == []
    finally:
        await app.close()


def test_sync_entry_points_wrap_the_async_api(make_app) -> None:
    app = make_app(workers=[])

    @app.handler
    def hello(name: str) -> None:
        return None

    job_id = app.sync.schedule(hello, {"name": "x"}, delay=600)
    assert app.sync.get_job(job_id).status is JobStatus.HeldOnMaster
    assert app.sync.count_jobs(status="HeldOnMaster") == 1
    assert app.sync.cancel(job_id).status is JobStatus.Cancelled
    app.sync.close()


async def test_running_block_for_asgi_lifespans(make_app) -> None:
    app = make_app()
    done: list[str] = []

    @app.handler
    async def task(ctx: JobContext) -> None:
        await asyncio.sleep(0.3)
        done.append(ctx.job_id)

    async with app.running():
        job_id = await app.schedule(task)
        await eventually(lambda: _started(app, job_id))
        assert done == []
    # leaving the block waited for the running job instead of abandoning it
    assert done == [job_id]
    await app.open()
    try:
        assert (await app.get_job(job_id)).status is JobStatus.Succeeded
        workers = await app.runtime.master.list_workers()
        assert [w.status.name for w in workers] == ["Stopped"]
    finally:
        await app.close()


async def _started(app, job_id: str) -> bool:
    return (await app.get_job(job_id)).status is JobStatus.Processing


async def test_two_copies_of_a_job_in_one_start_batch_start_once(make_app) -> None:
    """Copies of one job held by two buffers (a lease lapsed during a pause): only the current runs."""
    app = make_app(workers=[])
    async with app:
        master = app.runtime.master
        [job_id] = await master.insert_jobs([make_job(-1)])
        queued = await master.update_job(job_id, 1, {"status": JobStatus.Queued})
        assert queued is not None and queued.version == 2
        now = time.time()
        results = await app.runtime.starts.submit_many(
            [(Fence(job_id, 1), now, now + 30), (Fence(job_id, 2), now, now + 30)]
        )
    assert results == [False, True]
