"""Scheduling inside the caller's own PostgreSQL transaction."""

from __future__ import annotations

import time

import asyncpg
import pytest

from jobmaster import JobContext, JobNotFoundError


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_job_exists_only_if_the_transaction_commits(make_app, start, urls) -> None:
    app = make_app()
    started: dict[str, float] = {}

    @app.handler
    async def follow_up(ctx: JobContext) -> None:
        started[ctx.job_id] = time.time()

    running = await start(app)
    conn = await asyncpg.connect(urls["master"])
    try:
        tx = conn.transaction()
        await tx.start()
        rolled_back = await app.schedule(follow_up, connection=conn)
        await tx.rollback()

        async with conn.transaction():
            committed = await app.schedule(follow_up, connection=conn)
            with pytest.raises(JobNotFoundError):
                await app.get_job(committed)  # not visible before commit
        committed_at = time.time()
    finally:
        await conn.close()
    await running.wait_status(committed, "Succeeded")
    assert started[committed] - committed_at < 0.5  # woken by the commit's notification
    with pytest.raises(JobNotFoundError):
        await app.get_job(rolled_back)
