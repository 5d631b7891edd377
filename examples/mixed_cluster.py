"""The second source document's mixed cluster: one master, agents of different kinds.

A PostgreSQL master; a NATS JetStream agent for fast, sub-second default-lane work; a PostgreSQL
agent for a `LongRun` lane whose jobs take longer than 30 seconds (the guide's advice: long jobs
belong on a database transport, not on a message broker).

    jobmaster worker --app examples.mixed_cluster:jm
    python -m examples.mixed_cluster 1000
"""

from __future__ import annotations

import asyncio
import sys

from examples._shared import AGENT, MASTER, NATS, cluster
from jobmaster import JobContext, JobMaster

jm = JobMaster(
    cluster("Cluster-1"),
    MASTER,
    agents={"Nats-1": NATS, "Postgres-1": AGENT},
    workers=[
        {"name": "fast", "agent": "Nats-1", "parallelism_factor": 4.0},
        {
            "name": "long-run",
            "agent": "Postgres-1",
            "lane": "LongRun",
            "bucket_buffer_size": 5,
            "buckets": {"verylow": 0, "low": 0, "medium": 1, "high": 0, "critical": 0},
        },
    ],
)


@jm.handler(name="mixed.notify")
async def notify(ctx: JobContext, user_id: int) -> None:
    ctx.logger.debug("notified %s", user_id)


@jm.handler(name="mixed.rebuild_index", lane="LongRun", timeout="1h")
async def rebuild_index(ctx: JobContext, shard: int) -> None:
    ctx.logger.info("rebuilding shard %s", shard)


async def publish(count: int) -> None:
    async with jm:
        await jm.schedule_many("mixed.notify", [{"user_id": i} for i in range(count)])
        await jm.schedule_many("mixed.rebuild_index", [{"shard": i} for i in range(count // 100 or 1)])


if __name__ == "__main__":
    asyncio.run(publish(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
