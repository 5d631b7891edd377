"""A worker process for a test to SIGKILL, so the test sees what a real crash leaves behind (a task
cancelled in the test's own process would still run the cleanup a kill skips).

argv[1] is a JSON object: `master`, `cluster`, `workers`, `agents`, `handler`, `count`, `delay`.
The process runs its workers, schedules `count` jobs of `handler` due in `delay` seconds, waits until
every one is in a bucket of its own (AssignedToBucket, in a bucket of one of its workers), prints their ids
as one JSON line, and then only runs until it is killed.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from engine_support import FAST

from jobmaster import JobContext, JobMaster, JobStatus

#: The longest the process waits for its jobs to reach its buckets, and then to be killed: a test
#: that died without killing it leaves no process behind for long.
PATIENCE = 120.0


async def _held_by_me(app: JobMaster, ids: list[str], names: set[str]) -> bool:
    for job_id in ids:
        job = await app.get_job(job_id)
        # A bucket's id starts with its worker's id, which starts with the worker's name.
        owner = (job.bucket_id or "").split(".")[0].rsplit("-", 1)[0]
        if job.status is not JobStatus.AssignedToBucket or owner not in names:
            return False
    return True


async def main(spec: dict[str, Any]) -> None:
    app = JobMaster(
        spec["cluster"], spec["master"], agents=spec.get("agents", {}), workers=spec["workers"], **FAST
    )

    @app.handler(name=spec["handler"])
    async def not_here(ctx: JobContext) -> None:
        raise AssertionError("the victim ran a job: the test did not kill it before the jobs were due")

    runner = asyncio.create_task(app.run(handle_signals=False))
    await app.wait_ready()
    ids = await app.schedule_many(spec["handler"], [{} for _ in range(spec["count"])], delay=spec["delay"])
    names = {w["name"] for w in spec["workers"]}
    deadline = time.monotonic() + PATIENCE
    while not await _held_by_me(app, ids, names):
        if time.monotonic() > deadline:
            raise SystemExit("the jobs never all reached this process's buckets")
        await asyncio.sleep(0.02)
    print(json.dumps(ids), flush=True)
    await asyncio.wait([runner], timeout=PATIENCE)
    raise SystemExit("never killed")


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
