"""With `durable_starts`, on PostgreSQL standalone, a job a take started runs only once the take is
on disk.

The take skips its WAL flush (`master/postgres.py`), so the jobs it starts wait for the worker's
shared flush (`master/flush.py`). The store's own flush is wrapped here so that the test decides
when it ends, or makes it fail as a server lost mid-flush would; what is checked is the real
executor's answer to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from engine_support import FAST, Running

from jobmaster import JobContext, JobMaster, JobStatus
from jobmaster.master.postgres import PostgresMaster

Flush = Callable[[PostgresMaster, str], Awaitable[None]]
#: Without a lead time a take never buffers a job that is not due yet (the publisher's clock may be
#: a little ahead of the take's), so the job is started by the take, the path under test.
WORKERS = [{"name": "w1", "bucket_buffer_lead_time": 0}]


def _app(
    pg_urls: dict[str, str], cluster_id: str, ran: list[tuple[str, int]], durable_starts: bool = True
) -> JobMaster:
    app = JobMaster(cluster_id, pg_urls["master"], workers=WORKERS, durable_starts=durable_starts, **FAST)

    @app.handler(name="record")
    async def record(ctx: JobContext) -> None:
        ran.append((ctx.job_id, ctx.attempt))

    return app


async def test_a_started_job_waits_for_its_take_to_reach_the_disk(
    pg_urls: dict[str, str],
    cluster_id: str,
    start: Callable[[JobMaster], Awaitable[Running]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    disk = asyncio.Event()
    flushing = asyncio.Event()
    real: Flush = PostgresMaster.flush_takes

    async def slow_disk(self: PostgresMaster, worker_id: str) -> None:
        flushing.set()
        await disk.wait()
        await real(self, worker_id)

    monkeypatch.setattr(PostgresMaster, "flush_takes", slow_disk)
    ran: list[tuple[str, int]] = []
    app = _app(pg_urls, cluster_id, ran)
    running = await start(app)
    job_id = await app.schedule("record")
    await asyncio.wait_for(flushing.wait(), 15)
    job = await app.get_job(job_id)
    assert job.status is JobStatus.Processing and job.attempts == 1, "the take did not start the job"
    assert ran == [], "the job ran before the take that started it was on disk"
    disk.set()
    await running.wait_status(job_id, "Succeeded")
    assert ran == [(job_id, 1)]


async def test_a_job_whose_start_may_be_undone_is_left_to_its_lease(
    pg_urls: dict[str, str],
    cluster_id: str,
    start: Callable[[JobMaster], Awaitable[Running]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The flush fails: the take may be lost (a crash) or not, so the job does not run here; its
    lease runs out, the attempt is counted `lost`, and the job runs once, as its second attempt."""
    real: Flush = PostgresMaster.flush_takes
    failed: list[int] = []

    async def lost_server(self: PostgresMaster, worker_id: str) -> None:
        if not failed:
            failed.append(1)
            raise ConnectionResetError("the server went away mid-flush")
        await real(self, worker_id)

    monkeypatch.setattr(PostgresMaster, "flush_takes", lost_server)
    ran: list[tuple[str, int]] = []
    app = _app(pg_urls, cluster_id, ran)
    running = await start(app)
    job_id = await app.schedule("record")
    await running.wait_status(job_id, "Succeeded", timeout=30)
    assert failed, "the flush never failed"
    assert ran == [(job_id, 2)]
    assert [a.outcome for a in await app.job_attempts(job_id)] == ["lost", "succeeded"]


async def test_without_durable_starts_a_started_job_does_not_wait_for_the_disk(
    pg_urls: dict[str, str],
    cluster_id: str,
    start: Callable[[JobMaster], Awaitable[Running]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The default: the flush is never asked for, so a disk that never answers delays nothing."""
    never = asyncio.Event()

    async def stuck_disk(self: PostgresMaster, worker_id: str) -> None:
        await never.wait()

    monkeypatch.setattr(PostgresMaster, "flush_takes", stuck_disk)
    ran: list[tuple[str, int]] = []
    app = _app(pg_urls, cluster_id, ran, durable_starts=False)
    running = await start(app)
    job_id = await app.schedule("record")
    await running.wait_status(job_id, "Succeeded")
    assert ran == [(job_id, 1)]
