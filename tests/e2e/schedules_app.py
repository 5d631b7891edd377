"""The application of the recurring-schedule e2e tests, run as real worker processes.

Configured from the environment, so each process of a test declares the schedules its "deploy" has:
  E2E_MASTER, E2E_CLUSTER, E2E_WORKERS, E2E_AGENTS, E2E_SETTINGS - as for e2e_app.py
  SCHED_DECLARE - JSON list of {"name", "expr", "seconds"?, "catch_up"?, "overlap"?}: each a schedule
                  of the handler `record`, which sleeps `seconds`
  SCHED_MODE    - `worker` (jm.run, like `jobmaster worker`) or `embedded` (jm.running() inside a
                  host application's lifespan, stopped by the host on SIGTERM)
Every run is recorded by the handler itself in the table `sched_runs` of the master database.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time

from e2e_pool import record_pool

from jobmaster import JobContext, JobMaster

MASTER = os.environ["E2E_MASTER"]
app = JobMaster(
    os.environ["E2E_CLUSTER"],
    MASTER,
    agents=json.loads(os.environ.get("E2E_AGENTS", "{}")),
    workers=json.loads(os.environ.get("E2E_WORKERS", "[]")),
    **{
        "heartbeat_interval": 0.5,
        "job_lease": 3,
        "worker_timeout": 2,
        **json.loads(os.environ.get("E2E_SETTINGS", "{}")),
    },
)


record_pool(app, MASTER, max_size=2)


@app.handler(name="record")
async def record(ctx: JobContext, seconds: float = 0.0) -> None:
    started = time.time()
    await asyncio.sleep(seconds)
    occurrence = ctx.occurrence
    await ctx.state.pool.execute(
        "INSERT INTO sched_runs (job_id, schedule, occurrence, pid, started, finished)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        ctx.job_id,
        ctx.schedule,
        None if occurrence is None else occurrence.timestamp(),
        os.getpid(),
        started,
        time.time(),
    )


for declared in json.loads(os.environ.get("SCHED_DECLARE", "[]")):
    app.recurring(
        declared["expr"],
        name=declared["name"],
        data={"seconds": declared.get("seconds", 0.0)},
        catch_up=declared.get("catch_up", "latest"),
        overlap=declared.get("overlap", "allow"),
    )(record)


async def embedded() -> None:
    """A host application (an ASGI server's lifespan) with the workers running in its background."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with app.running():
        await stop.wait()


def main() -> None:
    if os.environ.get("SCHED_MODE") == "embedded":
        asyncio.run(embedded())
    else:
        asyncio.run(app.run())


if __name__ == "__main__":
    sys.exit(main())
