"""`data_retention`: a worker process prunes final jobs older than it, with their attempts."""

from __future__ import annotations

import asyncpg
from e2e_support import Processes, create_runs_table, status_counts, wait_registered

from helpers import wait_until

#: The shortest retention the settings allow.
RETENTION = 60


async def test_a_worker_prunes_final_jobs_older_than_data_retention(processes: Processes, pg_urls) -> None:
    master = pg_urls["master"]
    await create_runs_table(master)
    processes.settings = {"data_retention": RETENTION}
    processes.worker("runner", [{"name": "runner"}])
    await wait_registered(master, processes.cluster, 1)
    ids = processes.publish(
        [
            {"name": "done", "handler": "e2e_app.work", "count": 10},
            {"name": "failed", "handler": "e2e_app.too_slow", "count": 3},
            {"name": "waiting", "handler": "e2e_app.work", "count": 2, "delay": 3600},
        ]
    )

    async def all_final() -> bool:
        counts = await status_counts(master, processes.cluster)
        return counts[5] == 10 and counts[7] == 3

    await wait_until(all_final, "the jobs succeeded or failed", timeout=120)
    old = ids["done"][:5] + ids["failed"][:2]
    kept = ids["done"][5:] + ids["failed"][2:] + ids["waiting"]
    conn = await asyncpg.connect(master)
    try:
        # As if they had finished two hours ago; the others finished just now or never ran.
        await conn.execute(
            "UPDATE jm_jobs SET finished_at = finished_at - 7200 WHERE id = ANY($1::text[])", old
        )
        # The runner's pruning pass ran when it started, with nothing to prune; the next one is an
        # hour away. A worker started now prunes at once.
        processes.worker("pruner", [{"name": "pruner"}])

        async def pruned() -> bool:
            left = await conn.fetchval("SELECT count(*) FROM jm_jobs WHERE id = ANY($1::text[])", old)
            return left == 0

        await wait_until(pruned, "the old final jobs pruned")
        rows = await conn.fetch("SELECT id FROM jm_jobs WHERE id = ANY($1::text[])", kept)
        attempts = await conn.fetch(
            "SELECT job_id, count(*) FROM jm_attempts WHERE job_id = ANY($1::text[]) GROUP BY job_id",
            ids["failed"],
        )
    finally:
        await conn.close()
    assert {r["id"] for r in rows} == set(kept), "a job younger than data_retention, or not final, was pruned"
    # each failed job had two timed-out runs; only the kept one still has them
    assert {r["job_id"]: r["count"] for r in attempts} == {ids["failed"][2]: 2}
