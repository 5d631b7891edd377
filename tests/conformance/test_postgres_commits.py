"""PostgreSQL writes that skip the WAL flush wait do so for their own transaction only.

The agent's claims and acks, and the master's takes from a job-table queue, commit without waiting
for the flush. If the relaxed setting leaked into the session, every later write on that pooled
connection (a push, the only copy of a YES-path job; a job's outcome) would be acknowledged before
it reached the disk.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from helpers import agent_with_bucket, make_job, master_with_bucket
from jobmaster.agents.base import AgentMessage
from jobmaster.agents.postgres import PostgresAgent
from jobmaster.db.postgres import POOL_MAX
from jobmaster.jobs.model import JobStatus
from jobmaster.master.postgres import PostgresMaster


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
        assert await _pool_settings(agent.pool) == {"on"}


async def _pool_settings(pool: Any) -> set[str]:
    connections = [await pool.acquire() for _ in range(POOL_MAX)]
    try:
        return {await c.fetchval("SHOW synchronous_commit") for c in connections}
    finally:
        for conn in connections:
            await pool.release(conn)


async def test_takes_leave_outcomes_durable(pg_urls: dict[str, str]) -> None:
    async with master_with_bucket(pg_urls["master"], "commits") as (master, bucket):
        assert isinstance(master, PostgresMaster)
        now = time.time()
        jobs = [make_job(-1) for _ in range(40)]
        assert await master.queue_jobs(bucket.id, jobs)
        takes = await asyncio.gather(
            *(
                master.take_queued(bucket.id, "w1", now + 60, now=now, start=1, due_before=now, limit=0)
                for _ in range(40)
            )
        )
        taken = [job for batch in takes for job in batch]
        assert sorted(j.id for j in taken) == sorted(j.id for j in jobs)
        assert all(j.status is JobStatus.Processing for j in taken)
        assert await _pool_settings(master.pool) == {"on"}
