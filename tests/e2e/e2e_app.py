"""The application run by the multi-process tests: real worker and publisher processes.

Configured from the environment so the test can start several processes of the same app:
  E2E_MASTER, E2E_CLUSTER  - master URL and cluster id
  E2E_WORKERS              - JSON list of worker settings for this process ([] = pure publisher)
  E2E_AGENTS               - JSON object of agent connections, name -> URL (optional)
  E2E_SETTINGS             - JSON object of extra cluster settings (optional)
  E2E_NEXT_WIRE_FORMAT     - set: agent messages are written as a publisher of the next version
                             would, in format FORMAT + 1 with a field this version does not know
  E2E_RUNS                 - the PostgreSQL database of `e2e_runs` (default: the master's URL)
Every handler run is recorded in the table `e2e_runs` of the master database, by the handler itself,
so the test can count real executions independently of the engine's own bookkeeping; each claim of
a coordinator prints `claimed N by WORKER-ID` to its process's log (see `claims` in e2e_support). A
worker whose master connection a test cuts records its runs through E2E_RUNS, which the cut does not
reach.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from typing import Any

from e2e_plan import publish_plan
from e2e_pool import record_pool

from jobmaster import JobContext, JobMaster
from jobmaster.events import JobsClaimed
from jobmaster.jobs import codec

# once: this module runs as __main__ and is imported again as e2e_app
if os.environ.get("E2E_NEXT_WIRE_FORMAT") and codec.job_to_bytes.__name__ != "_next_format":
    _this_format = codec.job_to_bytes

    def _next_format(job: Any) -> bytes:
        fields = json.loads(_this_format(job))[1:]
        return json.dumps([codec.FORMAT + 1, *fields, {"added_by_the_next_version": True}]).encode()

    codec.job_to_bytes = _next_format

MASTER = os.environ["E2E_MASTER"]
RUNS = os.environ.get("E2E_RUNS", MASTER)
SETTINGS = {
    "heartbeat_interval": 0.5,
    "job_lease": 3,
    "worker_timeout": 2,
    "retry_backoff_base": 0.1,
    "retry_backoff_cap": 0.3,
    **json.loads(os.environ.get("E2E_SETTINGS", "{}")),
}
app = JobMaster(
    os.environ["E2E_CLUSTER"],
    MASTER,
    agents=json.loads(os.environ.get("E2E_AGENTS", "{}")),
    workers=json.loads(os.environ.get("E2E_WORKERS", "[]")),
    **SETTINGS,
)


def _print_claims(event: JobsClaimed) -> None:
    """One line per claim in the worker's log, so a test sees which coordinator claimed what."""
    print(f"claimed {event.count} by {event.worker_id}", flush=True)


app.events.subscribe(JobsClaimed, _print_claims)


record_pool(app, RUNS, max_size=4)


async def _record(ctx: JobContext) -> None:
    await ctx.state.pool.execute(
        "INSERT INTO e2e_runs (job_id, attempt, worker_id, lane, priority, due, started)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        ctx.job_id,
        ctx.attempt,
        ctx.worker_id,
        ctx.lane,
        ctx.priority,
        ctx.scheduled_at.timestamp(),
        time.time(),
    )


@app.handler
async def work(ctx: JobContext, n: int) -> None:
    await _record(ctx)


@app.handler(max_retries=50)
async def busy(ctx: JobContext, n: int) -> None:
    """Long enough (20 ms) that kills land while handlers run."""
    await _record(ctx)
    await asyncio.sleep(0.02)


@app.handler
async def long(ctx: JobContext, n: int) -> None:
    """Long enough (300 ms) to be running when a worker is told to stop."""
    await _record(ctx)
    await asyncio.sleep(0.3)


@app.handler(max_retries=2)
async def flaky(ctx: JobContext, n: int) -> None:
    await _record(ctx)
    if ctx.attempt == 1:
        raise ConnectionError("first attempt always fails")


@app.handler(max_retries=2)
async def dies(ctx: JobContext, n: int) -> None:
    """Kills its own worker process on every attempt, as an out-of-memory kill or a segfault would."""
    await _record(ctx)
    os.kill(os.getpid(), signal.SIGKILL)


@app.handler(max_retries=3)
async def stalls_once(ctx: JobContext, n: int) -> None:
    """Its first run outlasts any stop test's patience (two minutes); a later run returns at once."""
    await _record(ctx)
    if ctx.attempt == 1:
        await asyncio.sleep(120)


@app.handler(timeout=0.3, max_retries=1)
async def too_slow(ctx: JobContext, n: int) -> None:
    await _record(ctx)
    await asyncio.sleep(10)


async def publish(plan_path: str) -> None:
    await publish_plan(app, plan_path)


async def stream(count: int) -> None:
    """Schedule one job at a time and print each id as soon as its call returned."""
    async with app:
        for n in range(count):
            job_id = await app.schedule("e2e_app.work", {"n": n})
            print(job_id, flush=True)


def main(argv: list[str]) -> None:
    if argv[1] == "publish":
        asyncio.run(publish(argv[2]))
    elif argv[1] == "stream":
        asyncio.run(stream(int(argv[2])))
    else:
        asyncio.run(app.run())


if __name__ == "__main__":
    # Run through the importable module, so handler ids are `e2e_app.*` and not `__main__.*`.
    from e2e_app import main as module_main

    module_main(sys.argv)
