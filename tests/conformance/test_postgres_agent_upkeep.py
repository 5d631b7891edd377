"""The PostgreSQL agent's own upkeep of its tables: schema changes reach tables made by earlier
versions, messages kept, and a backlog's leftovers are vacuumed away."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import pytest

from helpers import agent_with_bucket
from jobmaster.agents import postgres as pg_agent
from jobmaster.agents.base import AgentMessage
from jobmaster.agents.postgres import PostgresAgent

#: The agent tables as the first versions made them: keyed by bucket, with an index per job and
#: the due index without the job id.
OLD_SCHEMA = [
    """CREATE TABLE jm_agent_buckets (
        bucket_id text PRIMARY KEY, agent text NOT NULL, created_at double precision NOT NULL)""",
    """CREATE TABLE jm_agent_messages (
        bucket_id text NOT NULL REFERENCES jm_agent_buckets (bucket_id),
        job_id text NOT NULL,
        due_at double precision NOT NULL,
        version bigint NOT NULL,
        payload bytea NOT NULL,
        visible_at double precision NOT NULL DEFAULT 0,
        PRIMARY KEY (bucket_id, job_id))""",
    "CREATE INDEX jm_agent_messages_due ON jm_agent_messages (bucket_id, due_at)",
    "CREATE INDEX jm_agent_messages_job ON jm_agent_messages (job_id)",
]


async def test_an_agent_table_of_an_earlier_version_is_rekeyed_with_its_messages(
    pg_urls: dict[str, str],
) -> None:
    schema = f"old_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(pg_urls["agent"])
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
        await conn.execute(f"SET search_path = {schema}")
        for statement in OLD_SCHEMA:
            await conn.execute(statement)
        now = time.time()
        await conn.execute("INSERT INTO jm_agent_buckets VALUES ('b1', 'a', $1)", now)
        await conn.execute(
            "INSERT INTO jm_agent_messages (bucket_id, job_id, due_at, version, payload)"
            " VALUES ('b1', 'j1', $1, 0, '\\x7b7d'), ('b1', 'j2', $1, 0, '\\x7b7d')",
            now - 1,
        )
        agent = PostgresAgent(f"{pg_urls['agent']}?search_path={schema}", "c", "a")
        await agent.open()
        try:
            for _ in range(2):  # a second start finds nothing left to change
                await agent.migrate()
            found = await agent.find("j2")
            assert found is not None and found.job_id == "j2"
            assert [m.job_id for m in await agent.read_due("b1", 10, now, now, now + 30)] == ["j1", "j2"]
        finally:
            await agent.close()
        indexes = dict(
            await conn.fetch(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1"
                " AND tablename = 'jm_agent_messages'",
                schema,
            )
        )
        assert indexes["jm_agent_messages_pkey"].endswith("(job_id, bucket_id)")
        assert indexes["jm_agent_messages_read"].endswith("(bucket_id, due_at, job_id)")
        assert "jm_agent_messages_job" not in indexes and "jm_agent_messages_due" not in indexes
    finally:
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await conn.close()


async def test_the_message_table_is_vacuumed_once_a_backlog_is_worked_off(
    pg_urls: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads from the start walk what acknowledgements left in the index until a VACUUM."""
    monkeypatch.setattr(pg_agent, "VACUUM_AFTER", 50)
    async with agent_with_bucket(pg_urls["agent"], "tidy") as (agent, bucket):
        assert isinstance(agent, PostgresAgent)
        before = await _vacuums(agent)
        now = time.time()
        await agent.push(bucket, [AgentMessage(uuid.uuid4().hex, now - 1, 0, b"{}") for _ in range(120)])
        after = None
        while batch := await agent.read_due(bucket, 30, now, now, now + 30, after):
            await agent.ack(bucket, [m.job_id for m in batch])
            after = max(m.read_key for m in batch)
            assert await _vacuums(agent) == before  # not while the backlog lasts
        assert await agent.read_due(bucket, 30, now, now, now + 30) == []  # short, from the start
        deadline = time.monotonic() + 10
        while await _vacuums(agent) == before:
            assert time.monotonic() < deadline, "the message table was not vacuumed"
            await asyncio.sleep(0.05)


async def _vacuums(agent: PostgresAgent) -> int:
    async with agent.pool.acquire() as conn:
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        return int(
            await conn.fetchval(
                "SELECT vacuum_count FROM pg_stat_user_tables WHERE relid = 'jm_agent_messages'::regclass"
            )
        )
