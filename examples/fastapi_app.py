"""A FastAPI app whose views schedule jobs, and a separate worker that runs them (the recommended
layout: the web processes only schedule, however many uvicorn runs). From the repository root,
with `pip install 'jobmaster[web]'`:

    jobmaster worker --app examples.fastapi_app:jm            # the worker (any number of them)
    uvicorn examples.fastapi_app:app                          # the web app
    curl -X POST 'localhost:8000/signup?email=ada@example.com'  # -> {"job_id": "..."}
    curl localhost:8000/jobs/<job_id>                         # -> {"status": "Succeeded", ...}
    curl localhost:8000/jobs/<job_id>/result                  # waits for it: {"result": {...}}

One process instead, the workers embedded in the server (one set per uvicorn process, so not with
`--workers N`; see docs/web.md):

    EXAMPLES_EMBED=1 uvicorn examples.fastapi_app:app

It runs on an SQLite file in the current directory; EXAMPLES_MASTER names another master (a
PostgreSQL URL for several machines), EXAMPLES_CLUSTER another cluster id.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

from fastapi import Depends, FastAPI

from examples._shared import cluster, master_or_sqlite
from jobmaster import JobContext, JobMaster
from jobmaster.contrib.starlette import get_jobmaster, lifespan

jm = JobMaster(cluster("Web-Cluster"), master_or_sqlite(), workers=[{"name": "web-jobs"}])
#: The app's JobMaster in a view: `jm: JM`.
JM = Annotated[JobMaster, Depends(get_jobmaster)]


@jm.handler(max_retries=5, timeout="30s")
async def send_welcome(ctx: JobContext, email: str) -> dict[str, str]:
    ctx.logger.info("welcome mail to %s (attempt %d)", email, ctx.attempt)
    return {"sent_to": email}


app = FastAPI(lifespan=lifespan(jm, workers=os.environ.get("EXAMPLES_EMBED") == "1"))


@app.post("/signup")
async def signup(email: str, jm: JM) -> dict[str, str]:
    return {"job_id": await jm.schedule(send_welcome, {"email": email})}


@app.get("/jobs/{job_id}")
async def job(job_id: str, jm: JM) -> dict[str, Any]:
    found = await jm.get_job(job_id)
    return {"status": found.status.name, "attempts": found.attempts}


@app.get("/jobs/{job_id}/result")
async def job_result(job_id: str, jm: JM) -> dict[str, Any]:
    """What the handler returned, once the job has ended (woken by its end, up to 30 s)."""
    return {"result": await jm.result(job_id, timeout="30s")}
