"""The PostgreSQL agent's claims and acks skip the WAL flush wait for their own transaction only.

If the relaxed setting leaked into the session, every later push on that pooled connection (the only
copy of a YES-path job) would be acknowledged before it reached the disk.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from helpers import agent_with_bucket
from jobmaster.agents.base import AgentMessage
from jobmaster.agents.postgres import PostgresAgent
from jobmaster.db.postgres import POOL_MAX


async def test_claims_and_acks_leave_pushes_durable(pg_urls: dict[str, str]) -> None:
    async with agent_with_bucket(pg_urls["agent"], "commits") as (agent, bucket):
        assert isinstance(agent, PostgresAgent)
        now = time.time()
        messages = [AgentMessage(uuid.uuid4().hex, now - 1, 0, b"{}") for _ in range(40)]
        await agent.push(bucket, messages)
        claims = await asyncio.gather(*(agent.claim(bucket, 1, now, now, now + 60) for _ in range(40)))
        claimed = [m.job_id for batch in claims for m in batch]
        assert sorted(claimed) == sorted(m.job_id for m in messages)
        await asyncio.gather(*(agent.ack(bucket, [job_id]) for job_id in claimed))
        assert await agent.count(bucket) == 0
        pool = agent.pool
        connections = [await pool.acquire() for _ in range(POOL_MAX)]
        try:
            settings = {await c.fetchval("SHOW synchronous_commit") for c in connections}
        finally:
            for conn in connections:
                await pool.release(conn)
        assert settings == {"on"}
