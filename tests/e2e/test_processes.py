"""A publisher and two worker processes on one PostgreSQL database."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest
from e2e_support import Processes, create_runs_table, status_counts, wait_executors

from jobmaster import Priority

ALL_BUT_CRITICAL = {p.name: (0 if p is Priority.Critical else 1) for p in Priority}
CRITICAL_ONLY = {p.name: (2 if p is Priority.Critical else 0) for p in Priority}
PER_PRIORITY = 900  # x 5 priorities = 4,500 Default-lane jobs


async def _final_counts(master: str, cluster: str) -> dict[str, int]:
    names = {5: "Succeeded", 7: "Failed", 8: "Cancelled"}
    counts = await status_counts(master, cluster)
    return {names.get(status, f"open:{status}"): n for status, n in counts.items()}


@pytest.mark.timeout(600)
async def test_publisher_and_two_worker_processes(processes: Processes, pg_urls) -> None:
    master = pg_urls["master"]
    await create_runs_table(master)
    processes.worker(
        "proc-a",
        [
            {"name": "general", "buckets": ALL_BUT_CRITICAL, "parallelism_factor": 4},
            {
                "name": "heavy-a",
                "lane": "Heavy",
                "buckets": {"Medium": 1, "VeryLow": 0, "Low": 0, "High": 0, "Critical": 0},
            },
        ],
    )
    processes.worker(
        "proc-b",
        [
            {"name": "critical", "buckets": CRITICAL_ONLY, "parallelism_factor": 2},
            {
                "name": "heavy-b",
                "lane": "Heavy",
                "buckets": {"Medium": 1, "VeryLow": 0, "Low": 0, "High": 0, "Critical": 0},
            },
        ],
    )
    plan = [
        {"name": "default", "handler": "e2e_app.work", "count": PER_PRIORITY, "priority": p.name}
        for p in Priority
    ]
    plan += [
        {"name": "heavy", "handler": "e2e_app.work", "count": 300, "lane": "Heavy"},
        {"name": "flaky", "handler": "e2e_app.flaky", "count": 150},
        {"name": "slow", "handler": "e2e_app.too_slow", "count": 10},
        {"name": "cancelled", "handler": "e2e_app.work", "count": 40, "delay": 20, "cancel": True},
    ]
    await wait_executors(master, processes.cluster, 4)  # their buckets: the YES path from the start
    began = time.monotonic()
    ids = processes.publish(plan)
    total = sum(len(v) for v in ids.values())
    assert total == 5 * PER_PRIORITY + 300 + 150 + 10 + 40

    expected = {"Succeeded": total - 50, "Failed": 10, "Cancelled": 40}
    while await _final_counts(master, processes.cluster) != expected:
        assert time.monotonic() - began < 180, await _final_counts(master, processes.cluster)
        await asyncio.sleep(0.25)
    assert processes.stop_all() == [0, 0]

    conn = await asyncpg.connect(master)
    try:
        runs = await conn.fetch(
            "SELECT job_id, count(*) AS n, array_agg(DISTINCT worker_id) AS workers,"
            " min(priority) AS priority, min(lane) AS lane FROM e2e_runs GROUP BY job_id"
        )
        attempts = {
            r["id"]: r["attempts"]
            for r in await conn.fetch(
                "SELECT id, attempts FROM jm_jobs WHERE cluster_id = $1", processes.cluster
            )
        }
    finally:
        await conn.close()
    by_job = {r["job_id"]: r for r in runs}
    once = [j for name in ("default", "heavy") for j in ids[name]]
    assert all(by_job[j]["n"] == 1 for j in once), "a job ran more than once"
    assert all(by_job[j]["n"] == 2 and attempts[j] == 2 for j in ids["flaky"])
    assert all(by_job[j]["n"] == 2 and attempts[j] == 2 for j in ids["slow"])
    assert not any(j in by_job for j in ids["cancelled"]), "a cancelled job ran"
    for job_id in once:
        row = by_job[job_id]
        [worker] = row["workers"]
        if row["lane"] == "Heavy":
            assert worker.startswith("heavy-")
        elif row["priority"] == "Critical":
            assert worker.startswith("critical-")
        else:
            assert worker.startswith("general-")
    print(f"\n{total} jobs over 2 worker processes in {time.monotonic() - began:.1f}s")
