"""The FastAPI app the Starlette/FastAPI tests serve with a real uvicorn, configured by JMTEST_WEB_*.

JMTEST_WEB_MASTER and JMTEST_WEB_CLUSTER name the cluster, JMTEST_WEB_RUNS a file each run appends
"note pid" to, JMTEST_WEB_EMBED=1 runs the workers in the uvicorn process (`lifespan(jm,
workers=True)`), JMTEST_WEB_SHUTDOWN_GRACE and JMTEST_WEB_SHUTDOWN_TIMEOUT bound their stop.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Annotated, Any

from fastapi import Depends, FastAPI

from jobmaster import JobMaster
from jobmaster.contrib.starlette import get_jobmaster, lifespan

logging.basicConfig(level=logging.INFO)  # as an app shows its own logs next to uvicorn's
jm = JobMaster(
    os.environ["JMTEST_WEB_CLUSTER"],
    os.environ["JMTEST_WEB_MASTER"],
    workers=[{"name": "web"}],
    heartbeat_interval=0.3,
    shutdown_grace=float(os.environ.get("JMTEST_WEB_SHUTDOWN_GRACE", "10")),
)
JM = Annotated[JobMaster, Depends(get_jobmaster)]


@jm.handler
async def record(note: str) -> None:
    with open(os.environ["JMTEST_WEB_RUNS"], "a") as runs:
        runs.write(f"{note} {os.getpid()}\n")


@jm.handler
async def hang() -> None:
    """Runs until interrupted: what a bounded shutdown must cut short."""
    await record("hang-started")
    await asyncio.Event().wait()


app = FastAPI(
    lifespan=lifespan(
        jm,
        workers=os.environ.get("JMTEST_WEB_EMBED") == "1",
        shutdown_timeout=os.environ.get("JMTEST_WEB_SHUTDOWN_TIMEOUT"),
    )
)


@app.get("/health")
async def health() -> dict[str, int]:
    return {"pid": os.getpid()}


@app.post("/record")
async def schedule_record(note: str, jm: JM) -> dict[str, str]:
    return {"job_id": await jm.schedule(record, {"note": note})}


@app.post("/hang")
async def schedule_hang(jm: JM) -> dict[str, str]:
    return {"job_id": await jm.schedule(hang)}


@app.get("/jobs/{job_id}")
async def job_status(job_id: str, jm: JM) -> dict[str, Any]:
    job = await jm.get_job(job_id)
    return {"status": job.status.name, "worker_id": job.worker_id}
