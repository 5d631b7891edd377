"""Durability through publisher kills, graceful stops mid-run and rolling updates."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter

import asyncpg
from e2e_support import Processes, create_runs_table, wait_executors

from helpers import wait_until

SETTINGS = {"heartbeat_interval": 0.3, "worker_timeout": 1.5, "job_lease": 2}


async def _fetch(master: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(master)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def _wait_succeeded(master: str, ids: list[str], timeout: float) -> None:
    began = time.monotonic()
    while True:
        rows = await _fetch(
            master, "SELECT count(*) FROM jm_jobs WHERE id = ANY($1::text[]) AND status = 5", ids
        )
        if rows[0][0] == len(ids):
            return
        assert time.monotonic() - began < timeout, f"{rows[0][0]} of {len(ids)} succeeded"
        await asyncio.sleep(0.2)


async def _run_counts(master: str, ids: list[str]) -> Counter[str]:
    rows = await _fetch(
        master, "SELECT job_id, count(*) FROM e2e_runs WHERE job_id = ANY($1::text[]) GROUP BY 1", ids
    )
    return Counter({r[0]: r[1] for r in rows})


async def test_publisher_killed_after_calls_return_loses_nothing(processes: Processes, pg_urls) -> None:
    await create_runs_table(pg_urls["master"])
    processes.settings = SETTINGS
    processes.worker("worker", [{"name": "w", "parallelism_factor": 4.0}])
    await wait_executors(pg_urls["master"], processes.cluster, 1)
    publisher = processes.stream()
    assert publisher.stdout is not None
    ids: list[str] = []
    while len(ids) < 1500:
        line = await asyncio.wait_for(asyncio.to_thread(publisher.stdout.readline), 60)
        assert line, f"the publisher ended after {len(ids)} jobs"
        ids.append(line.decode().strip())
    publisher.send_signal(signal.SIGKILL)
    publisher.wait()
    await _wait_succeeded(pg_urls["master"], ids, 60)
    runs = await _run_counts(pg_urls["master"], ids)
    assert set(runs) == set(ids) and set(runs.values()) == {1}


async def test_graceful_stop_mid_run_runs_nothing_twice(processes: Processes, pg_urls) -> None:
    await create_runs_table(pg_urls["master"])
    processes.settings = SETTINGS
    for name in ("a", "b"):
        processes.worker(name, [{"name": name, "parallelism_factor": 2.0}])
    await wait_executors(pg_urls["master"], processes.cluster, 2)
    ids = processes.publish([{"name": "long", "handler": "e2e_app.long", "count": 400}])["long"]

    async def some_done_running_and_waiting() -> bool:
        rows = await _fetch(
            pg_urls["master"],
            "SELECT status, count(*) FROM jm_jobs WHERE id = ANY($1::text[]) GROUP BY 1",
            ids,
        )
        statuses = {r[0]: r[1] for r in rows}
        return statuses.get(5, 0) > 0 and statuses.get(4, 0) > 0 and statuses.get(5, 0) < len(ids) / 2

    # the stop must find jobs done, running and waiting
    await wait_until(some_done_running_and_waiting, "some jobs done, some running", timeout=120)
    assert processes.stop_all() == [0, 0]  # SIGTERM: running handlers finish, buffers go back
    rows = await _fetch(
        pg_urls["master"],
        "SELECT status, count(*) FROM jm_jobs WHERE id = ANY($1::text[]) GROUP BY 1",
        ids,
    )
    statuses = {r[0]: r[1] for r in rows}
    assert set(statuses) <= {2, 5}, statuses  # only HeldOnMaster (given back) or Succeeded
    assert 0 < statuses.get(5, 0) < len(ids)
    processes.worker("c", [{"name": "c", "parallelism_factor": 8.0}])
    await _wait_succeeded(pg_urls["master"], ids, 120)
    runs = await _run_counts(pg_urls["master"], ids)
    assert set(runs) == set(ids) and set(runs.values()) == {1}


async def test_rolling_update_of_every_executor(processes: Processes, pg_urls) -> None:
    await create_runs_table(pg_urls["master"])
    processes.agents = {"pg-agent": pg_urls["agent"]}
    processes.settings = SETTINGS
    processes.worker("coordinator", [{"name": "brain", "agent": "pg-agent", "mode": "coordinator"}])

    def executor(generation: int):  # type: ignore[no-untyped-def]
        return processes.worker(
            f"exec-{generation}",
            [
                {
                    "name": f"exec-{generation}",
                    "agent": "pg-agent",
                    "mode": "execution",
                    "parallelism_factor": 4.0,
                }
            ],
        )

    old = [executor(g) for g in range(3)]
    await wait_executors(pg_urls["master"], processes.cluster, 3)
    ids = processes.publish([{"name": "jobs", "handler": "e2e_app.busy", "count": 6000}])["jobs"]
    for generation, proc in enumerate(old, start=3):
        executor(generation)  # the new pod first, then the old one is told to stop
        await wait_executors(pg_urls["master"], processes.cluster, 1, name=f"exec-{generation}")
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0
    await _wait_succeeded(pg_urls["master"], ids, 120)
    runs = await _run_counts(pg_urls["master"], ids)
    assert set(runs) == set(ids) and set(runs.values()) == {1}
