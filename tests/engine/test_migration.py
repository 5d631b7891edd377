"""Moving a standalone cluster to a distributed agent, and adopting a dead worker's buckets."""

from __future__ import annotations

import asyncio
import time

import pytest
from click.testing import CliRunner
from engine_support import FAST, eventually, killed_holding_jobs

from helpers import wait_until
from jobmaster import JobContext, JobMaster, JobStatus
from jobmaster.cli.main import cli


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_standalone_jobs_move_to_a_distributed_agent(urls, cluster_id) -> None:
    ran: dict[str, str] = {}

    def build(**config: object) -> JobMaster:
        app = JobMaster(cluster_id, urls["master"], **FAST, **config)  # type: ignore[arg-type]

        @app.handler(name="tests.migrate")
        async def task(ctx: JobContext) -> None:
            ran[ctx.job_id] = ctx.worker_id

        return app

    # The standalone worker is SIGKILLed with the jobs saved to the master as AssignedToBucket,
    # still in its buckets of the old agent.
    ids = await killed_holding_jobs(
        {
            "master": urls["master"],
            "cluster": cluster_id,
            "workers": [{"name": "old", "bucket_buffer_lead_time": 0.2}],
            "handler": "tests.migrate",
            "count": 50,
            "delay": 6,
        }
    )

    distributed = build(
        agents={"pg-agent": urls["agent"]},
        workers=[{"name": "new", "agent": "pg-agent"}],
    )
    new_run = asyncio.create_task(distributed.run(handle_signals=False))
    await distributed.wait_ready()

    async def old_worker_dead() -> bool:
        silent_since = time.time() - FAST["worker_timeout"] - 0.2
        workers = await distributed.inspect.workers()
        return all(w.heartbeat_at < silent_since for w in workers if w.name == "old")

    await wait_until(old_worker_dead, "the old worker counted as dead")
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


async def test_drain_worker_adopts_a_dead_workers_buckets(make_app, start, urls, cluster_id) -> None:
    """A worker process SIGKILLed with jobs in its buckets: a drain worker adopts the buckets and
    sends their jobs back to the master, and a healthy worker runs each once."""
    ran: list[str] = []
    ids = await killed_holding_jobs(
        {
            "master": urls["master"],
            "cluster": cluster_id,
            "workers": [{"name": "victim", "bucket_buffer_lead_time": 0.2}],
            "handler": "tests.adopted",
            "count": 30,
            "delay": 6,
        }
    )

    rescuer = make_app(workers=[{"name": "drainer", "mode": "drain"}, {"name": "healthy"}])

    @rescuer.handler(name="tests.adopted")
    async def task(ctx: JobContext) -> None:
        ran.append(ctx.worker_id)

    began = time.monotonic()
    running = await start(rescuer)

    async def all_done() -> bool:
        return await rescuer.count_jobs(status="Succeeded") == 30

    await eventually(all_done, timeout=60)
    assert len(ran) == 30 and all(w.startswith("healthy-") for w in ran)
    for job_id in ids:
        assert (await running.app.get_job(job_id)).status is JobStatus.Succeeded
    print(f"\nrecovered 30 jobs of a dead worker in {time.monotonic() - began:.1f}s")
