"""Blueprint A (tuning guide): high-throughput ingestion, fast lightweight events.

A dedicated coordinator node with massive batch onboarding, and executor nodes scaled horizontally
with high parallelism, large prefetch buffers and many Critical buckets.

    jobmaster worker --app examples.blueprint_a_ingestion:coordinator     # one small container
    jobmaster worker --app examples.blueprint_a_ingestion:executor        # 10+ replicas
    python -m examples.blueprint_a_ingestion 5000                         # publish 5,000 webhooks
"""

from __future__ import annotations

import asyncio
import sys

from examples._shared import MASTER, NATS, cluster
from jobmaster import JobContext, JobMaster

CLUSTER = cluster("Ingestion-Cluster")
AGENTS = {"Nats-1": NATS}


def _register(app: JobMaster) -> JobMaster:
    @app.handler(name="ingestion.dispatch_webhook", priority="critical", timeout="10s", max_retries=5)
    async def dispatch_webhook(ctx: JobContext, url: str, event: dict[str, object]) -> None:
        ctx.logger.debug("POST %s %s", url, event.get("type"))

    return app


coordinator = _register(
    JobMaster(
        CLUSTER,
        MASTER,
        agents=AGENTS,
        workers=[
            {
                "name": "Central-Brain-01",
                "agent": "Nats-1",
                "mode": "coordinator",
                "transfer_batch_size": 5000,
            }
        ],
    )
)

executor = _register(
    JobMaster(
        CLUSTER,
        MASTER,
        agents=AGENTS,
        workers=[
            {
                "name": "Event-Muscle",
                "agent": "Nats-1",
                "mode": "execution",
                "parallelism_factor": 4.0,
                "bucket_buffer_size": 1000,
                "buckets": {"critical": 20},
            }
        ],
    )
)

publisher = _register(JobMaster(CLUSTER, MASTER, agents=AGENTS))


async def publish(count: int) -> None:
    async with publisher:
        events = [
            {"url": f"https://hooks.example/{i}", "event": {"type": "order.paid"}} for i in range(count)
        ]
        await publisher.schedule_many("ingestion.dispatch_webhook", events)


if __name__ == "__main__":
    asyncio.run(publish(int(sys.argv[1]) if len(sys.argv) > 1 else 5000))
