"""Blueprint C (tuning guide): the standard single-node hybrid setup.

One process does both coordination and execution (`full` mode) with balanced settings: background
tasks, emails and follow-ups of a typical web application.

    jobmaster worker --app examples.blueprint_c_single_node:jm
"""

from __future__ import annotations

from examples._shared import AGENT, MASTER
from jobmaster import JobContext, JobMaster

jm = JobMaster(
    "App-Cluster",
    MASTER,
    agents={"Db-Agent": AGENT},
    workers=[
        {
            "name": "Standard-Worker",
            "agent": "Db-Agent",
            "mode": "full",
            "transfer_batch_size": 500,
            "bucket_buffer_size": 100,
            "parallelism_factor": 2.0,
            "buckets": {"medium": 3, "high": 2},
        }
    ],
)


@jm.handler(name="app.send_email", priority="high", timeout="30s", max_retries=5)
async def send_email(ctx: JobContext, to: str, template: str) -> None:
    ctx.logger.info("sending %s to %s", template, to)


@jm.handler(name="app.cleanup", priority="low")
async def cleanup(ctx: JobContext) -> None:
    ctx.logger.info("cleanup ran")
