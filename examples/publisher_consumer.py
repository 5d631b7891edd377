"""Publishers separated from consumers (tuning guide, section 2).

The web tier is a pure publisher: the cluster and an agent connection, no workers. It still takes
the YES path (straight into a live bucket) for jobs due within the transient threshold. The worker
service is the consumer: a coordinator and an executor. Both share the cluster id, master and agent.

    jobmaster worker --app examples.publisher_consumer:consumer
    python -m examples.publisher_consumer 100          # the web tier scheduling 100 jobs
"""

from __future__ import annotations

import asyncio
import sys

from examples._shared import MASTER, NATS, cluster
from jobmaster import JobContext, JobMaster

CLUSTER = cluster("My-Cluster")
AGENTS = {"Nats-1": NATS}


def _register(app: JobMaster) -> JobMaster:
    @app.handler(name="shop.confirm_order", priority="high")
    async def confirm_order(ctx: JobContext, order_id: int) -> None:
        ctx.logger.info("order %s confirmed", order_id)

    return app


publisher = _register(JobMaster(CLUSTER, MASTER, agents=AGENTS))

consumer = _register(
    JobMaster(
        CLUSTER,
        MASTER,
        agents=AGENTS,
        workers=[
            {"name": "Coordinator-01", "agent": "Nats-1", "mode": "coordinator"},
            {
                "name": "Executor-01",
                "agent": "Nats-1",
                "mode": "execution",
                "buckets": {"high": 10},
                "parallelism_factor": 4.0,
            },
        ],
    )
)


async def publish(count: int) -> None:
    async with publisher:
        for order_id in range(count):
            await publisher.schedule("shop.confirm_order", {"order_id": order_id})


if __name__ == "__main__":
    asyncio.run(publish(int(sys.argv[1]) if len(sys.argv) > 1 else 100))
