"""The smallest useful app: one handler, one worker, on the embedded SQLite default.

Run the worker:   jobmaster worker --app examples.quickstart:jm
Schedule a job:   jobmaster schedule --app examples.quickstart:jm examples.quickstart.send_welcome \
                      --data '{"email": "ada@example.com"}'
"""

from __future__ import annotations

from jobmaster import JobContext, JobMaster

jm = JobMaster("App-Cluster", workers=[{"name": "standard", "parallelism_factor": 2}])


@jm.handler(priority="high", max_retries=5, timeout="30s")
async def send_welcome(ctx: JobContext, email: str) -> None:
    ctx.logger.info("welcome mail to %s (attempt %d)", email, ctx.attempt)
