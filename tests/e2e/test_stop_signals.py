"""What a stop does to a handler still running: past `shutdown_grace`, and on a second signal."""

from __future__ import annotations

import signal
import subprocess

import asyncpg
from e2e_support import Processes, create_runs_table, wait_registered

from helpers import wait_until
from jobmaster import JobMaster, JobStatus

#: Leases short enough that the recovery after a stop at once takes seconds, long enough that a
#: loaded machine does not let one lapse while the first worker still runs.
SETTINGS = {"heartbeat_interval": 0.5, "worker_timeout": 5, "job_lease": 6}


async def _running_stalled_job(processes: Processes, master: str) -> tuple[subprocess.Popen[bytes], str]:
    """A worker process running the first run of an `e2e_app.stalls_once` job (two minutes long)."""
    await create_runs_table(master)
    worker = processes.worker("first", [{"name": "first"}])
    await wait_registered(master, processes.cluster, 1)
    job_id = processes.publish([{"name": "jobs", "handler": "e2e_app.stalls_once", "count": 1}])["jobs"][0]

    async def started() -> bool:
        conn = await asyncpg.connect(master)
        try:
            return bool(await conn.fetchval("SELECT count(*) FROM e2e_runs WHERE job_id = $1", job_id))
        finally:
            await conn.close()

    await wait_until(started, "the handler started")
    return worker, job_id


async def _worker_status(master: str, name: str) -> int | None:
    conn = await asyncpg.connect(master)
    try:
        status: int | None = await conn.fetchval(
            "SELECT status FROM jm_workers WHERE name = $1 ORDER BY started_at DESC LIMIT 1", name
        )
    finally:
        await conn.close()
    return status


async def _outcomes_once_rerun(processes: Processes, job_id: str) -> list[str]:
    """Start a second worker, wait until the job succeeded there, and return its attempts' outcomes."""
    processes.worker("second", [{"name": "second"}])
    app = JobMaster(processes.cluster, processes.master)
    async with app:

        async def succeeded() -> bool:
            return (await app.get_job(job_id)).status is JobStatus.Succeeded

        await wait_until(succeeded, "the job succeeded on the second worker", timeout=120)
        attempts = await app.job_attempts(job_id)
    assert [a.worker_id.split("-")[0] for a in attempts if a.worker_id] == ["first", "second"], attempts
    return [a.outcome for a in attempts]


async def test_a_handler_running_past_shutdown_grace_is_interrupted(processes: Processes, pg_urls) -> None:
    """SIGTERM with a handler that outlasts `shutdown_grace`: the worker interrupts the run when the
    grace is over and stops; the job goes back to the master with that run counted as `interrupted`,
    and runs again elsewhere."""
    processes.settings = {**SETTINGS, "shutdown_grace": 1}
    worker, job_id = await _running_stalled_job(processes, pg_urls["master"])
    worker.send_signal(signal.SIGTERM)
    # The run lasts two minutes: a stop that waited for it would miss this deadline.
    assert worker.wait(60) == 0
    app = JobMaster(processes.cluster, processes.master)
    async with app:
        job = await app.get_job(job_id)
    assert job.status is JobStatus.HeldOnMaster and job.attempts == 1, job
    assert job.last_error is not None and "JobCancelledError" in job.last_error["type"], job.last_error
    assert await _outcomes_once_rerun(processes, job_id) == ["interrupted", "succeeded"]


async def test_a_second_stop_signal_stops_at_once(processes: Processes, pg_urls) -> None:
    """SIGTERM, then SIGTERM again while the graceful stop waits for a running handler: the worker
    stops at once, without writing the run's end; the lease recovery gives the job back (its run
    counted as `lost`) and it runs again elsewhere."""
    processes.settings = {**SETTINGS, "shutdown_grace": 600}
    worker, job_id = await _running_stalled_job(processes, pg_urls["master"])
    worker.send_signal(signal.SIGTERM)

    async def stopping() -> bool:
        return await _worker_status(pg_urls["master"], "first") == 2  # WorkerStatus.Stopping

    await wait_until(stopping, "the graceful stop began")
    worker.send_signal(signal.SIGTERM)
    # The grace is ten minutes and the run two: only a stop at once meets this deadline.
    worker.wait(60)
    app = JobMaster(processes.cluster, processes.master)
    async with app:
        job = await app.get_job(job_id)
    assert job.status is JobStatus.Processing, "the stop at once wrote the run's end"
    assert await _outcomes_once_rerun(processes, job_id) == ["lost", "succeeded"]
