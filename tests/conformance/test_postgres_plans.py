"""PostgreSQL plan shapes of the hot statements that claim queued work.

asyncpg prepares every statement, and after five runs PostgreSQL may keep a generic plan made from
whatever statistics it had then. An agent table is usually empty when that happens, so the claim's
plan must be sound for any table size: the old `job_id IN (subquery)` form got a generic plan that
scanned the whole table per claim and took minutes with 50,000 messages in one bucket.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import asyncpg
import pytest

from helpers import agent_with_bucket, make_job, master_with_bucket, opened_master
from jobmaster.agents import postgres as pg_agent
from jobmaster.agents.base import NEXT_DUE_SCAN, AgentMessage, AgentTransport
from jobmaster.jobs.model import Job, JobFilter, JobStatus, Priority
from jobmaster.master import postgres as pg_master
from jobmaster.master.postgres import PostgresMaster
from jobmaster.master.sql.dialect import POSTGRES
from jobmaster.master.sql.store import list_sql

CLAIM_TYPES = "text, float8, float8, integer, float8"
UNSAVED_TYPES = "text, float8, integer, float8, float8"
TAKE_TYPES = "text, float8, integer, float8, integer, text, float8"
RECOVER_TYPES = "text, float8, integer, text, text"
CLAIM_DUE_TYPES = "text, float8, text[], smallint[], integer"


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


async def _generic_plan(url: str, sql: str, types: str, *args: Any) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        await conn.execute(f"PREPARE probe ({types}) AS {sql}")
        literals = ", ".join(repr(a) if isinstance(a, str) else str(a) for a in args)
        raw = await conn.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE probe({literals})")
    finally:
        await conn.close()
    return list(_nodes(json.loads(raw)[0]["Plan"]))


async def test_claims_update_by_tid_whatever_the_statistics(pg_urls: dict[str, str]) -> None:
    async with agent_with_bucket(pg_urls["agent"], "plans") as (agent, bucket):
        now = time.time()
        await agent.push(bucket, [AgentMessage(uuid.uuid4().hex, now + i, 0, b"{}") for i in range(3000)])
        claim = await _generic_plan(
            pg_urls["agent"], pg_agent._CLAIM, CLAIM_TYPES, bucket, now + 10, now, 100, now + 60
        )
        unsaved = await _generic_plan(
            pg_urls["agent"], pg_agent._CLAIM_UNSAVED, UNSAVED_TYPES, bucket, now, 100, now + 60, now + 10
        )
    for plan in (claim, unsaved):
        _assert_by_tid(plan)


async def test_the_owners_read_walks_its_index_in_order_whatever_the_statistics(
    pg_urls: dict[str, str],
) -> None:
    """From the start or from a cursor, planned generically while the bucket is empty (as after a
    worker starts) or full: an ordered index walk that stops at the limit, with the cursor as an
    index condition, not a read and sort of every match. Without the function's planner settings the
    generic plan of the cursor read with 3,000 messages in the bucket is a bitmap scan and a sort."""
    async with agent_with_bucket(pg_urls["agent"], "plans") as (agent, bucket):
        now = time.time()
        cursors = [(float("-inf"), ""), (now - 5, "a")]
        plans = [await _read_plan(pg_urls["agent"], bucket, now, c) for c in cursors]
        backlog = [AgentMessage(uuid.uuid4().hex, now - i / 100, 0, b"{}") for i in range(3000)]
        await agent.push(bucket, backlog)
        plans += [await _read_plan(pg_urls["agent"], bucket, now, c) for c in cursors]
    for plan in plans:
        assert plan[0]["Node Type"] == "Limit"
        assert not [n for n in plan if n["Node Type"] in ("Sort", "Seq Scan", "Bitmap Heap Scan")]
        [scan] = [n for n in plan if "Index Name" in n]
        assert scan["Index Name"] == "jm_agent_messages_read"
        assert "ROW(due_at, job_id) > ROW($5, $6)" in scan["Index Cond"]


async def test_an_ack_is_planned_again_once_the_table_has_grown(pg_urls: dict[str, str]) -> None:
    """A generic plan made while the table was vacuumed empty (as after a quiet spell) was a
    sequential scan, kept while a backlog grew: 340 us a message acked instead of 5 with 25,000
    waiting."""
    async with _empty_agent_database(pg_urls) as (url, agent, bucket), _explaining(url) as (conn, plans):
        for _ in range(8):  # past the five runs after which a generic plan may be kept
            await conn.execute(pg_agent._ACK, bucket, ["none"])
        acked = await _fill(agent, bucket, 20_000)
        plans.clear()
        await conn.execute(pg_agent._ACK, bucket, acked)
        assert await agent.count(bucket) == 20_000 - len(acked)
    _assert_by_key(plans)


async def test_rare_reads_are_planned_again_once_the_table_has_grown(pg_urls: dict[str, str]) -> None:
    """A bucket's count, the emptiness check of its destruction and a job's lookup: kept from while
    the table was empty, their plans read the whole table on every call."""
    reads = [(pg_agent._COUNT, (None,)), (pg_agent._COUNT, (1,)), (pg_agent._ANY, ()), (pg_agent._FIND, ())]
    async with _empty_agent_database(pg_urls) as (url, agent, bucket), _explaining(url) as (conn, plans):
        for _ in range(8):
            for sql, args in reads:
                await conn.fetch(sql, bucket if sql != pg_agent._FIND else "none", *args)
        [first, *_] = await _fill(agent, bucket, 20_000)
        plans.clear()
        for sql, args in reads:
            await conn.fetch(sql, bucket if sql != pg_agent._FIND else first, *args)
        assert await agent.count(bucket) == 20_000
        assert (await agent.find(first)) is not None
    assert len(plans) == len(reads)
    for plan, index in zip(plans, ["jm_agent_messages_read"] * 3 + ["jm_agent_messages_pkey"], strict=True):
        _assert_only_index(plan, index)


@contextlib.asynccontextmanager
async def _private_database(url: str) -> AsyncIterator[str]:
    """A database of its own, so its tables' statistics are this test's alone."""
    admin = await asyncpg.connect(url)
    database = f"jobmaster_plans_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{database}"')
    try:
        yield f"{url.rsplit('/', 1)[0]}/{database}"
    finally:
        await admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
        await admin.close()


async def _vacuumed_empty(url: str, table: str) -> None:
    """Statistics saying `table` is empty, kept however it grows: no autovacuum, whose ANALYZE
    would make PostgreSQL plan again by itself."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
        await conn.execute(f"VACUUM ANALYZE {table}")
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def _empty_agent_database(
    pg_urls: dict[str, str],
) -> AsyncIterator[tuple[str, AgentTransport, str]]:
    """An agent in a database of its own whose message table is vacuumed empty."""
    async with _private_database(pg_urls["agent"]) as url, agent_with_bucket(url, "plans") as (agent, bucket):
        await _vacuumed_empty(url, "jm_agent_messages")
        yield url, agent, bucket


#: The batch writes that join a batch to the job table, each with its arguments for given ids and
#: versions.
_KEYED_WRITES: dict[str, tuple[str, Callable[[list[str], list[int]], tuple[Any, ...]]]] = {
    "assign": (
        pg_master._ASSIGN,
        lambda ids, versions: (
            ids,
            versions,
            [3] * len(ids),
            ["b"] * len(ids),
            ["w"] * len(ids),
            [0.0] * len(ids),
        ),
    ),
    "start": (pg_master._START, lambda ids, versions: (ids, versions, 0.0, 30.0)),
    "succeed": (pg_master._SUCCEED, lambda ids, versions: (ids, versions, [0.0] * len(ids))),
    "release": (pg_master._RELEASE, lambda ids, versions: (ids, versions)),
}


@pytest.mark.parametrize("write", sorted(_KEYED_WRITES))
async def test_batch_writes_look_their_jobs_up_by_key_whatever_the_statistics(
    pg_urls: dict[str, str], write: str
) -> None:
    """A generic plan made while the job table was empty (a new cluster's first jobs) hashed a
    sequential scan of the whole table and was kept as the table grew: a completion cost 62 us a
    job instead of 13 over a cluster's first 50,000 jobs."""
    sql, arguments = _KEYED_WRITES[write]
    async with (
        _private_database(pg_urls["master"]) as url,
        opened_master(url, f"plans-{uuid.uuid4().hex[:8]}") as master,
        _explaining(url, "jm_jobs j") as (conn, plans),
    ):
        await _vacuumed_empty(url, "jm_jobs")
        for _ in range(8):  # past the five runs after which a generic plan may be kept
            await conn.fetch(sql, *arguments(["none"], [1]))
        await master.insert_jobs([make_job(status=JobStatus.Queued) for _ in range(20_000)])
        held = await conn.fetch("SELECT id, version FROM jm_jobs LIMIT 100")
        plans.clear()
        await conn.fetch(sql, *arguments([r["id"] for r in held], [r["version"] for r in held]))
        changed = await conn.fetchval("SELECT count(*) FROM jm_jobs WHERE version > 1")
    assert changed == 100
    [plan] = plans
    _assert_only_index(plan, "jm_jobs_pkey")


async def test_an_ack_looks_its_jobs_up_by_key_in_a_bucket_newer_than_the_statistics(
    pg_urls: dict[str, str],
) -> None:
    """Statistics taken before a bucket existed (a new worker's) make it look nearly empty: the plan
    walked the bucket's part of the read index and filtered on the job ids, 100-160 us a message
    instead of 5 with 25,000 waiting."""
    async with agent_with_bucket(pg_urls["agent"], "plans") as (agent, older):
        await _fill(agent, older, 3000)
        async with _explaining(pg_urls["agent"]) as (conn, plans):
            await conn.execute("ANALYZE jm_agent_messages")
            bucket = f"bucket-{uuid.uuid4().hex[:10]}"
            await agent.create_bucket(bucket)
            acked = await _fill(agent, bucket, 20_000)
            await conn.execute(pg_agent._ACK, bucket, acked)
        assert (await agent.count(bucket), await agent.count(older)) == (20_000 - len(acked), 3000)
    _assert_by_key(plans)


async def _fill(agent: AgentTransport, bucket: str, count: int) -> list[str]:
    """Push `count` messages; the ids of the first 100, for an ack."""
    now = time.time()
    messages = [AgentMessage(uuid.uuid4().hex, now + i / 100, 0, b"{}") for i in range(count)]
    await agent.push(bucket, messages)
    return [m.job_id for m in messages[:100]]


def _assert_by_key(plans: list[list[dict[str, Any]]]) -> None:
    [plan] = plans
    _assert_only_index(plan, "jm_agent_messages_pkey")


def _assert_only_index(plan: list[dict[str, Any]], index: str) -> None:
    """No sequential scan, and `index` is the one index the plan reads."""
    assert "Seq Scan" not in {n["Node Type"] for n in plan}, plan
    assert {n["Index Name"] for n in plan if "Index Name" in n} == {index}, plan


async def test_the_next_due_time_walks_the_first_messages_in_order_whatever_the_statistics(
    pg_urls: dict[str, str],
) -> None:
    """Not a scan of every message of the bucket: with 100,000 due later that took 38 ms a call."""
    async with agent_with_bucket(pg_urls["agent"], "plans") as (agent, bucket):
        now = time.time()
        plans = [await _function_plan(pg_urls["agent"], pg_agent._NEXT_DUE, (bucket, NEXT_DUE_SCAN))]
        later = [AgentMessage(uuid.uuid4().hex, now + i / 100, 0, b"{}") for i in range(3000)]
        await agent.push(bucket, later)
        plans.append(await _function_plan(pg_urls["agent"], pg_agent._NEXT_DUE, (bucket, NEXT_DUE_SCAN)))
        assert await agent.next_due_at(bucket, now) == later[0].due_at
    for plan in plans:
        assert not [n for n in plan if n["Node Type"] in ("Sort", "Seq Scan", "Bitmap Heap Scan")]
        [limit] = [n for n in plan if n["Node Type"] == "Limit"]
        assert [n["Index Name"] for n in _nodes(limit) if "Index Name" in n] == ["jm_agent_messages_read"]


async def _read_plan(url: str, bucket: str, now: float, after: tuple[float, str]) -> list[dict[str, Any]]:
    return await _function_plan(url, pg_agent._READ_DUE, (bucket, now, now, 100, *after))


_EXPLAIN_SETTINGS = (
    "LOAD 'auto_explain'",
    "SET auto_explain.log_min_duration = 0",
    "SET auto_explain.log_nested_statements = on",
    "SET auto_explain.log_format = json",
    "SET client_min_messages = log",
)


async def _function_plan(url: str, sql: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
    """The generic plan an agent function runs its query with, as auto_explain reports it."""
    async with _explaining(url) as (conn, plans):
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        await conn.fetch(sql, *args)
    [plan] = plans
    return plan


@contextlib.asynccontextmanager
async def _explaining(
    url: str, marker: str = "jm_agent_messages m"
) -> AsyncIterator[tuple[asyncpg.Connection, list[list[dict[str, Any]]]]]:
    """A connection whose statements naming `marker` (those inside functions included) have their
    plans collected."""
    plans: list[list[dict[str, Any]]] = []

    def collect(_conn: Any, message: Any) -> None:
        text = message.message
        if marker in text:
            plans.append(list(_nodes(json.loads(text[text.index("{") :])["Plan"])))

    conn = await asyncpg.connect(url)
    try:
        conn.add_log_listener(collect)
        for setting in _EXPLAIN_SETTINGS:
            await conn.execute(setting)
        yield conn, plans
    finally:
        await conn.close()


async def test_the_job_table_queue_is_taken_by_tid(pg_urls: dict[str, str]) -> None:
    async with master_with_bucket(pg_urls["master"], "plans") as (master, bucket):
        assert isinstance(master, PostgresMaster)
        now = time.time()
        assert await master.queue_jobs(bucket.id, [make_job(i / 1000) for i in range(-1500, 1500)])
        take = await _generic_plan(
            pg_urls["master"],
            pg_master._TAKE_QUEUED,
            TAKE_TYPES,
            bucket.id,
            now,
            50,
            now + 1,
            100,
            "w1",
            now + 30,
        )
    _assert_by_tid(take)


async def test_a_claim_reads_at_most_its_limit_per_route_of_a_backlog(pg_urls: dict[str, str]) -> None:
    """With 3,000 jobs due, a claim of 100 reads 100 rows of the due index, not the whole backlog."""
    cluster = f"plans-{uuid.uuid4().hex[:8]}"
    async with opened_master(pg_urls["master"], cluster) as master:
        await master.insert_jobs([make_job(-i / 1000) for i in range(3000)])
    conn = await asyncpg.connect(pg_urls["master"])
    try:
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        await conn.execute(f"PREPARE probe ({CLAIM_DUE_TYPES}) AS {pg_master._CLAIM}")
        async with conn.transaction():
            raw = await conn.fetchval(
                f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE probe('{cluster}', {time.time()},"
                f" '{{Default,Default}}', '{{{int(Priority.Medium)},{int(Priority.High)}}}', 100)"
            )
    finally:
        await conn.close()
    scans = [n for n in _nodes(json.loads(raw)[0]["Plan"]) if n.get("Index Name") == "jm_jobs_due"]
    assert scans, raw
    assert all(n["Actual Rows"] <= 100 for n in scans), [(n["Actual Rows"], n["Actual Loops"]) for n in scans]


async def test_expired_leases_are_found_through_the_lease_index(pg_urls: dict[str, str]) -> None:
    """The lease index leaves out rows without a lease; recovery's predicate must still imply it."""
    async with opened_master(pg_urls["master"], f"plans-{uuid.uuid4().hex[:8]}"):
        recover = await _generic_plan(
            pg_urls["master"], pg_master._RECOVER, RECOVER_TYPES, "c1", time.time(), 100, "{}", "chan"
        )
    assert "jm_jobs_lease" in {node.get("Index Name") for node in recover}, recover


def _assert_by_tid(plan: list[dict[str, Any]]) -> None:
    kinds = [node["Node Type"] for node in plan]
    assert "Seq Scan" not in kinds, kinds
    assert "Tid Scan" in kinds, kinds


async def test_a_deep_page_reads_a_page_of_the_listing_index_whatever_the_statistics(
    pg_urls: dict[str, str],
) -> None:
    """A page after a cursor 15,000 jobs down, planned generically: the jobs at rest are an ordered
    walk of the listing index from the position that stops at the page's end, and the jobs in flight
    come from their own partial indexes; no part reads or sorts the cluster's finished jobs."""
    async with (
        _private_database(pg_urls["master"]) as url,
        opened_master(url, f"plans-{uuid.uuid4().hex[:8]}") as master,
    ):
        now = time.time()
        jobs = [make_job(-i / 10, status=JobStatus.Succeeded) for i in range(20_000)]
        jobs += [make_job(0, status=JobStatus.Processing, lease_expires_at=now + 60) for _ in range(50)]
        jobs += [make_job(0, status=JobStatus.AssignedToBucket, bucket_id="b1") for _ in range(50)]
        for start in range(0, len(jobs), 2000):
            await master.insert_jobs(jobs[start : start + 2000])
        deep = sorted(jobs, key=lambda j: (j.scheduled_at, j.id), reverse=True)[15_000]
        criteria = JobFilter(limit=50, after=(deep.scheduled_at, deep.id))
        sql, params = list_sql(master.cluster_id, criteria, POSTGRES)
        async with _explaining(url, "ORDER BY scheduled_at DESC") as (conn, plans):
            await conn.execute("ANALYZE jm_jobs")
            await conn.execute("SET auto_explain.log_analyze = on")
            await conn.execute("SET plan_cache_mode = force_generic_plan")
            found = await conn.fetch(sql, *params)
    assert [r["id"] for r in found] == [j.id for j in _expected_page(jobs, deep.id)]
    [plan] = plans
    assert not [n for n in plan if n["Node Type"] in ("Seq Scan", "Bitmap Heap Scan")], plan
    scans = {n["Index Name"]: n for n in plan if "Index Name" in n}
    listed = scans["jm_jobs_listed"]
    assert "ROW(scheduled_at, id) < ROW($2, $3)" in listed["Index Cond"]
    assert listed["Actual Rows"] <= 50
    assert all(n["Actual Rows"] <= 100 for n in plan if "Index Name" in n), plan


def _expected_page(jobs: list[Job], after_id: str) -> list[Job]:
    ordered = sorted(jobs, key=lambda j: (j.scheduled_at, j.id), reverse=True)
    start = [j.id for j in ordered].index(after_id) + 1
    return ordered[start : start + 50]
