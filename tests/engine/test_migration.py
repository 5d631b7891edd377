"""Moving a standalone cluster to a distributed agent, and adopting a dead worker's buckets."""

from __future__ import annotations

import asyncio
import time

import pytest
from click.testing import CliRunner
from engine_support import FAST, eventually

from jobmaster import JobContext, JobMaster, JobStatus
from jobmaster.cli.main import cli


async def _crash(app: JobMaster, task: asyncio.Task[None]) -> None:
    """Stop without the graceful path: what a SIGKILL leaves behind, minus the process."""
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_standalone_jobs_move_to_a_distributed_agent(urls, cluster_id) -> None:
    ran: dict[str, str] = {}

    def build(**config: object) -> JobMaster:
        app = JobMaster(cluster_id, urls["master"], **FAST, **config)  # type: ignore[arg-type]

        @app.handler(name="tests.migrate")
        async def task(ctx: JobContext) -> None:
            ran[ctx.job_id] = ctx.worker_id

        return app

    standalone = build(workers=[{"name": "old", "bucket_buffer_lead_time": 0.2}])
    old_run = asyncio.create_task(standalone.run(handle_signals=False))
    await standalone.wait_ready()
    ids = await standalone.schedule_many("tests.migrate", [{} for _ in range(50)], delay=4)
    await asyncio.sleep(0.5)  # saved to the master as AssignedToBucket, still in the old agent
    await _crash(standalone, old_run)
    assert ran == {}

    distributed = build(
        agents={"pg-agent": urls["agent"]},
        workers=[{"name": "new", "agent": "pg-agent"}],
    )
    new_run = asyncio.create_task(distributed.run(handle_signals=False))
    await distributed.wait_ready()
    await asyncio.sleep(FAST["worker_timeout"] + 0.5)  # the old worker is now dead
    result = await asyncio.to_thread(
        CliRunner().invoke,
        cli,
        [
            "agents",
            "drain",
            "--master",
            urls["master"],
            "--cluster",
            cluster_id,
            "--agent",
            "standalone",
            "--json",
        ],
        env={"JOBMASTER_WORKER_TIMEOUT": "1.5", "JOBMASTER_HEARTBEAT_INTERVAL": "0.3"},
    )
    assert result.exit_code == 0, result.output
    assert '"jobs": 50' in result.output

    async def all_done() -> bool:
        return await distributed.count_jobs(status="Succeeded") == 50

    await eventually(all_done, timeout=20)
    assert set(ran) == set(ids)
    assert all(worker.startswith("new-") for worker in ran.values())
    distributed.stop()
    await new_run


async def test_drain_worker_adopts_a_dead_workers_buckets(make_app, start) -> None:
    ran: list[str] = []
    victim = make_app(workers=[{"name": "victim", "bucket_buffer_lead_time": 0.2}])

    @victim.handler(name="tests.adopted")
    async def task(ctx: JobContext) -> None:
        ran.append(ctx.worker_id)

    victim_run = asyncio.create_task(victim.run(handle_signals=False))
    await victim.wait_ready()
    ids = await victim.schedule_many("tests.adopted", [{} for _ in range(30)], delay=3)
    await asyncio.sleep(0.3)
    await _crash(victim, victim_run)

    rescuer = make_app(workers=[{"name": "drainer", "mode": "drain"}, {"name": "healthy"}])
    rescuer.handler(name="tests.adopted")(task)
    began = time.monotonic()
    running = await start(rescuer)

    async def all_done() -> bool:
        return await rescuer.count_jobs(status="Succeeded") == 30

    await eventually(all_done, timeout=20)
    assert len(ran) == 30 and all(w.startswith("healthy-") for w in ran)
    for job_id in ids:
        assert (await running.app.get_job(job_id)).status is JobStatus.Succeeded
    print(f"\nrecovered 30 jobs of a dead worker in {time.monotonic() - began:.1f}s")
