"""Blueprint B (tuning guide): heavy analytics and AI processing, slow and compute-intense.

An isolated `Heavy-Compute` lane on a database agent, one bucket (strict sequential order), a tiny
prefetch buffer so heavy work is not cached in memory, and a parallelism factor of 1.

    jobmaster worker --app examples.blueprint_b_heavy_compute:jm
    jobmaster schedule --app examples.blueprint_b_heavy_compute:jm analytics.render_report \
        --data '{"report_id": 42}'
"""

from __future__ import annotations

import hashlib

from examples._shared import AGENT, MASTER
from jobmaster import JobContext, JobMaster

jm = JobMaster(
    "Enterprise-Cluster",
    MASTER,
    agents={"Durable-Db-Agent": AGENT},
    workers=[
        {
            "name": "Compute-Node-01",
            "agent": "Durable-Db-Agent",
            "lane": "Heavy-Compute",
            "mode": "full",
            "parallelism_factor": 1.0,
            "bucket_buffer_size": 5,
            "bucket_buffer_lead_time": "5s",
            "buckets": {"verylow": 0, "low": 0, "medium": 1, "high": 0, "critical": 0},
        }
    ],
)


@jm.handler(name="analytics.render_report", lane="Heavy-Compute", timeout="15m", max_retries=1)
def render_report(ctx: JobContext, report_id: int) -> None:
    """A sync, CPU-bound handler: it runs in a thread and checks for cancellation between steps."""
    digest = hashlib.sha256(str(report_id).encode())
    for _ in range(200_000):
        if ctx.cancelled:
            return
        digest = hashlib.sha256(digest.digest())
    ctx.logger.info("report %s rendered: %s", report_id, digest.hexdigest()[:12])
