"""The master server restarts during a run: nothing is lost and processing resumes by itself."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from e2e_support import Processes, create_runs_table, wait_executors
from private_pg import PrivatePostgres

from helpers import wait_until


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    server.start()
    yield server
    server.destroy()


async def _succeeded(url: str, ids: list[str]) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(
            await conn.fetchval("SELECT count(*) FROM jm_jobs WHERE id = ANY($1::text[]) AND status = 5", ids)
        )
    finally:
        await conn.close()


async def _stuck(url: str, ids: list[str]) -> list[tuple[object, ...]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT id, status, version, attempts, worker_id, bucket_id,"
            " lease_expires_at - extract(epoch from now()) FROM jm_jobs"
            " WHERE id = ANY($1::text[]) AND status <> 5",
            ids,
        )
        return [tuple(r) for r in rows]
    finally:
        await conn.close()


async def test_master_restart_mid_run(private_pg: PrivatePostgres, tmp_path: Path) -> None:
    url = private_pg.url
    await create_runs_table(url)
    processes = Processes(url, f"restart-{uuid.uuid4().hex[:8]}", tmp_path)
    processes.settings = {"heartbeat_interval": 0.5, "worker_timeout": 5, "job_lease": 10}
    try:
        processes.worker("worker", [{"name": "w", "parallelism_factor": 4.0}])
        await wait_executors(url, processes.cluster, 1)
        ids = processes.publish([{"name": "jobs", "handler": "e2e_app.busy", "count": 3000}])["jobs"]

        async def under_way() -> bool:
            return await _succeeded(url, ids) >= 500

        await wait_until(under_way, "500 jobs done before the crash", timeout=120)
        left = len(ids) - await _succeeded(url, ids)
        await asyncio.to_thread(private_pg.stop, "immediate")  # a crash, not a clean shutdown
        assert left > 0, "every job was done before the crash"
        await asyncio.sleep(2.0)  # the outage (the fault itself, not a wait for anything)
        await asyncio.to_thread(private_pg.start)
        restarted = time.monotonic()
        while await _succeeded(url, ids) < len(ids):
            assert time.monotonic() - restarted < 60, await _stuck(url, ids)
            await asyncio.sleep(0.3)
        print(f"\nall {len(ids)} jobs done {time.monotonic() - restarted:.1f}s after the restart")
        assert processes.running[0].poll() is None, "the worker died instead of waiting"
    finally:
        processes.stop_all()
