"""Distributed topology on PostgreSQL: master and agent in two databases, workers by mode."""

from __future__ import annotations

import asyncio
import signal
import time

import asyncpg
import pytest
from e2e_support import Processes, claims, create_runs_table, status_counts, wait_executors, wait_registered

from helpers import wait_until
from jobmaster import Priority

GENERAL = {p.name: (0 if p is Priority.Critical else 2) for p in Priority}
CRITICAL_ONLY = {p.name: (3 if p is Priority.Critical else 0) for p in Priority}
HEAVY = {p.name: (1 if p is Priority.Medium else 0) for p in Priority}


async def _wait_succeeded(master: str, cluster: str, total: int, timeout: float) -> float:
    began = time.monotonic()
    while (await status_counts(master, cluster))[5] < total:
        assert time.monotonic() - began < timeout, await status_counts(master, cluster)
        await asyncio.sleep(0.2)
    return time.monotonic() - began


async def _runs(master: str, ids: list[str]) -> dict[str, list[asyncpg.Record]]:
    conn = await asyncpg.connect(master)
    try:
        rows = await conn.fetch("SELECT * FROM e2e_runs WHERE job_id = ANY($1::text[])", ids)
    finally:
        await conn.close()
    runs: dict[str, list[asyncpg.Record]] = {}
    for row in rows:
        runs.setdefault(row["job_id"], []).append(row)
    return runs


@pytest.mark.timeout(600)
async def test_split_fleet_runs_every_job_once_on_the_right_workers(processes: Processes, pg_urls) -> None:
    """Publisher-only, coordinator-only and two execution processes; general and critical fleets."""
    await create_runs_table(pg_urls["master"])
    processes.agents = {"pg-agent": pg_urls["agent"]}
    processes.settings = {"transient_threshold": 3}
    processes.worker("coordinator", [{"name": "brain", "agent": "pg-agent", "mode": "coordinator"}])
    processes.worker(
        "exec-general",
        [
            {
                "name": "general",
                "agent": "pg-agent",
                "mode": "execution",
                "buckets": GENERAL,
                "parallelism_factor": 4.0,
            }
        ],
    )
    processes.worker(
        "exec-critical",
        [
            {
                "name": "critical",
                "agent": "pg-agent",
                "mode": "execution",
                "buckets": CRITICAL_ONLY,
                "parallelism_factor": 6.0,
            },
            {
                "name": "heavy",
                "agent": "pg-agent",
                "mode": "execution",
                "lane": "Heavy",
                "buckets": HEAVY,
                "bucket_buffer_size": 5,
            },
        ],
    )
    await wait_registered(pg_urls["master"], processes.cluster, 3)
    await wait_executors(pg_urls["master"], processes.cluster, 3)  # the YES path needs their buckets
    plan = [{"name": p.name, "handler": "e2e_app.work", "count": 3500, "priority": p.name} for p in Priority]
    plan += [
        {"name": "heavy", "handler": "e2e_app.work", "count": 500, "lane": "Heavy"},
        {"name": "no-path", "handler": "e2e_app.work", "count": 2000, "delay": 4},
    ]
    ids = processes.publish(plan)
    total = sum(len(v) for v in ids.values())
    assert total == 20_000
    took = await _wait_succeeded(pg_urls["master"], processes.cluster, total, 240)
    assert processes.stop_all() == [0, 0, 0]
    runs = await _runs(pg_urls["master"], [j for v in ids.values() for j in v])
    assert len(runs) == total
    assert all(len(r) == 1 for r in runs.values()), "a job ran twice"
    for job_id in ids["Critical"]:
        assert runs[job_id][0]["worker_id"].startswith("critical-")
    for name in ("VeryLow", "Low", "Medium", "High", "no-path"):
        assert all(runs[j][0]["worker_id"].startswith("general-") for j in ids[name])
    assert all(runs[j][0]["worker_id"].startswith("heavy-") for j in ids["heavy"])
    print(f"\n{total} jobs, split fleet, in {took:.1f}s")


async def test_coordinator_killed_mid_run(processes: Processes, pg_urls) -> None:
    """Two coordinators claim the same backlog; SIGKILL one; every job still runs exactly once."""
    await create_runs_table(pg_urls["master"])
    processes.agents = {"pg-agent": pg_urls["agent"]}
    batch = 200
    coordinator = {"agent": "pg-agent", "mode": "coordinator", "transfer_batch_size": batch}
    doomed = processes.worker("coord-1", [{"name": "coord-1", **coordinator}])
    processes.worker("coord-2", [{"name": "coord-2", **coordinator}])
    processes.worker(
        "exec",
        [
            {
                "name": "exec",
                "agent": "pg-agent",
                "mode": "execution",
                "parallelism_factor": 8.0,
                "buckets": {"Medium": 4},
            }
        ],
    )
    await wait_registered(pg_urls["master"], processes.cluster, 3)
    await wait_executors(pg_urls["master"], processes.cluster, 1)
    # a publisher without the agent: every job takes the NO path through the coordinators
    ids = processes.publish([{"name": "jobs", "handler": "e2e_app.work", "count": 10_000}], agents={})["jobs"]

    # read right before the kill: read after it, the survivor may already have claimed the backlog
    at_kill: dict[str, int] = {}

    async def doomed_claiming_with_a_backlog() -> bool:
        counts = await status_counts(pg_urls["master"], processes.cluster)
        at_kill.update(backlog=counts[2], survivor=claims(processes.logs, "coord-2"))
        return claims(processes.logs, "coord-1") > 0 and counts[5] >= 2_000 and counts[2] > 2 * batch

    await wait_until(doomed_claiming_with_a_backlog, "coord-1 claimed jobs, a backlog is left", 120)
    doomed.send_signal(signal.SIGKILL)
    assert doomed.wait(30) == -signal.SIGKILL
    backlog, survivor_before = at_kill["backlog"], at_kill["survivor"]
    took = await _wait_succeeded(pg_urls["master"], processes.cluster, len(ids), 120)
    runs = await _runs(pg_urls["master"], ids)
    assert len(runs) == len(ids)
    assert all(len(r) == 1 for r in runs.values()), "a job ran twice"
    # The kill mattered: the dead coordinator had been claiming, jobs were still waiting to be
    # claimed (more than two batches, as the wait made sure), and the survivor claimed them.
    taken_over = claims(processes.logs, "coord-2") - survivor_before
    # coord-1 may claim one more batch between that read and its death
    assert taken_over >= backlog - batch, f"the survivor claimed {taken_over} of the {backlog} jobs left"
    print(
        f"\ncoordinator killed after claiming {claims(processes.logs, 'coord-1')} jobs, with {backlog}"
        f" waiting; the survivor claimed {taken_over} and every job was done {took:.1f}s later"
    )


async def test_jobs_start_on_time_on_both_paths(processes: Processes, pg_urls) -> None:
    """Due in +15 s (inside the window: YES path) and +30 s (beyond it: NO path), start within 1 s."""
    await create_runs_table(pg_urls["master"])
    processes.agents = {"pg-agent": pg_urls["agent"]}
    processes.settings = {"transient_threshold": 20}
    processes.worker("coordinator", [{"name": "brain", "agent": "pg-agent", "mode": "coordinator"}])
    processes.worker("exec", [{"name": "exec", "agent": "pg-agent", "mode": "execution"}])
    await wait_registered(pg_urls["master"], processes.cluster, 2)
    await wait_executors(pg_urls["master"], processes.cluster, 1)
    ids = processes.publish(
        [
            {"name": "inside", "handler": "e2e_app.work", "count": 20, "delay": 15},
            {"name": "beyond", "handler": "e2e_app.work", "count": 20, "delay": 30},
        ]
    )
    all_ids = ids["inside"] + ids["beyond"]
    await _wait_succeeded(pg_urls["master"], processes.cluster, len(all_ids), 60)
    runs = await _runs(pg_urls["master"], all_ids)
    lateness = [r[0]["started"] - r[0]["due"] for r in runs.values()]
    assert len(lateness) == 40
    assert min(lateness) >= -0.01, "a job started before it was due"
    assert max(lateness) < 1.0, f"a job started {max(lateness):.2f}s late"
    print(f"\nstart lateness: max {max(lateness) * 1000:.0f} ms")
