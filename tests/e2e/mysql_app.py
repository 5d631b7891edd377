"""The application of the MySQL/MariaDB multi-process tests: real worker and publisher processes.

Like `e2e_app`, configured from the environment (E2E_MASTER, E2E_CLUSTER, E2E_WORKERS, E2E_AGENTS,
E2E_SETTINGS), but every handler run is recorded with asyncmy into the table `e2e_mysql_runs` (the
test creates it) of the MariaDB database named by E2E_RUNS, whatever the master is (the mixed
cluster's master is PostgreSQL), so the test counts real executions independently of the engine.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from types import SimpleNamespace
from typing import Any

import asyncmy
from e2e_plan import publish_plan

from jobmaster import JobContext, JobMaster
from jobmaster.db.mysql import connect_args

SETTINGS = {
    "heartbeat_interval": 0.5,
    "job_lease": 3,
    "worker_timeout": 2,
    **json.loads(os.environ.get("E2E_SETTINGS", "{}")),
}
CLUSTER = os.environ["E2E_CLUSTER"]
app = JobMaster(
    CLUSTER,
    os.environ["E2E_MASTER"],
    agents=json.loads(os.environ.get("E2E_AGENTS", "{}")),
    workers=json.loads(os.environ.get("E2E_WORKERS", "[]")),
    **SETTINGS,
)


def runs_connect_args() -> dict[str, Any]:
    args = connect_args(os.environ["E2E_RUNS"])
    return {k: args[k] for k in ("host", "port", "user", "password", "database")}


@app.on_startup
async def open_pool(state: SimpleNamespace) -> None:
    state.pool = await asyncmy.create_pool(minsize=1, maxsize=4, autocommit=True, **runs_connect_args())


@app.on_shutdown
async def close_pool(state: SimpleNamespace) -> None:
    state.pool.close()
    await state.pool.wait_closed()


@app.handler
async def work(ctx: JobContext, n: int) -> None:
    async with ctx.state.pool.acquire() as conn, conn.cursor() as cursor:
        await cursor.execute(
            "INSERT INTO e2e_mysql_runs (cluster, job_id, attempt, worker_id, lane, priority, started)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (CLUSTER, ctx.job_id, ctx.attempt, ctx.worker_id, ctx.lane, ctx.priority, time.time()),
        )


async def publish(plan_path: str) -> None:
    await publish_plan(app, plan_path)


def main(argv: list[str]) -> None:
    if argv[1] == "publish":
        asyncio.run(publish(argv[2]))
    else:
        asyncio.run(app.run())


if __name__ == "__main__":
    # Run through the importable module, so handler ids are `mysql_app.*` and not `__main__.*`.
    from mysql_app import main as module_main

    module_main(sys.argv)
