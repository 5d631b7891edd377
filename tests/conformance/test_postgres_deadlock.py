"""A batched PostgreSQL write chosen as a deadlock victim is run again instead of failing.

The test makes the deadlock certain and the release its victim, and fails if either did not happen
(checked by setting `DEADLOCK_ATTEMPTS` to 1: the release then gives up)."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg

from helpers import make_job, wait_until
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
        # The other writer waits far longer than the server's deadlock check of the release, so the
        # release is always the one PostgreSQL aborts: the deadlock is the release's to survive.
        await other.execute("SET deadlock_timeout = '60s'")
        async with other.transaction():
            await other.execute(touch, second.id)  # the other writer holds the later row
            release = asyncio.create_task(
                master.release([Fence(second.id, second.version), Fence(first.id, first.version)])
            )

            async def release_waits_for_the_later_row() -> bool:
                waiting: int = await other.fetchval(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))"
                )
                return waiting > 0

            await wait_until(release_waits_for_the_later_row, "the release holds the first row")
            # A cycle: this waits for the release, which waits for this transaction. Only a deadlock
            # abort of the release lets this statement finish, so its return proves the deadlock.
            await asyncio.wait_for(other.execute(touch, first.id), 30)
            assert not release.done(), "the release gave up instead of running again"
        released = await asyncio.wait_for(release, 30)  # run again once this transaction ended
    finally:
        await other.close()
        await master.close()
    assert sorted(released) == sorted([first.id, second.id])
