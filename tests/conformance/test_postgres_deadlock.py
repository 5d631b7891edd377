"""A batched PostgreSQL write chosen as a deadlock victim is run again instead of failing."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import asyncpg

from helpers import make_job
from jobmaster.backends import make_master
from jobmaster.jobs.model import JobStatus, Priority
from jobmaster.master.base import Assignment, Fence


async def test_release_survives_a_deadlock_with_another_writer(pg_urls: dict[str, str]) -> None:
    master = make_master(pg_urls["master"], f"deadlock-{uuid.uuid4().hex[:8]}")
    await master.open()
    other = await asyncpg.connect(pg_urls["master"])
    try:
        await master.migrate()
        await master.insert_jobs([make_job(-1), make_job(-1)])
        claimed = await master.claim_due(
            time.time(),
            [("Default", Priority.Medium)],
            2,
            lambda jobs: [Assignment(j.id, "b1", "w1", JobStatus.Queued, time.time() + 30) for j in jobs],
        )
        first, second = sorted(claimed, key=lambda j: j.id)
        touch = "UPDATE jm_jobs SET cancel_requested = cancel_requested WHERE id = $1"
        async with other.transaction():
            await other.execute(touch, second.id)  # the other writer holds the later row
            release = asyncio.create_task(
                master.release([Fence(second.id, second.version), Fence(first.id, first.version)])
            )
            await asyncio.sleep(0.3)  # release now holds the first row and waits for the second
            with contextlib.suppress(asyncpg.DeadlockDetectedError):
                await other.execute(touch, first.id)  # a cycle: PostgreSQL aborts one of the two
        released = await asyncio.wait_for(release, 30)
    finally:
        await other.close()
        await master.close()
    assert sorted(released) == sorted([first.id, second.id])
