"""The app of the fault tests (test_faults.py): `e2e_app` with one handler more, run the same way.

`stalls` runs on the worker a test harms (named `victim...`) for as long as the file named by
E2E_VICTIM_GATE exists, so that the fault lands while its runs are going and the test lets them end
when it wants, and briefly everywhere else, so that the jobs it gives up run fast on the rescuers.
A victim's run that is interrupted says so in the table `e2e_interrupts` (the test creates it), next
to `e2e_runs`: the proof that the worker itself cut it short.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from e2e_app import _record, app, main

from jobmaster import JobContext

VICTIM = "victim"
GATE = os.environ.get("E2E_VICTIM_GATE", "")

__all__ = ["main", "stalls"]


@app.handler(max_retries=5)
async def stalls(ctx: JobContext, n: int) -> None:
    await _record(ctx)
    if not ctx.worker_id.startswith(VICTIM):
        await asyncio.sleep(0.02)
        return
    try:
        while os.path.exists(GATE):
            await asyncio.sleep(0.05)
    except asyncio.CancelledError:
        await ctx.state.pool.execute(
            "INSERT INTO e2e_interrupts (job_id, attempt, worker_id, at) VALUES ($1, $2, $3, $4)",
            ctx.job_id,
            ctx.attempt,
            ctx.worker_id,
            time.time(),
        )
        raise


if __name__ == "__main__":
    # Run through the importable module, so handler ids are `fault_app.*` and not `__main__.*`.
    from fault_app import main as module_main

    module_main(sys.argv)
