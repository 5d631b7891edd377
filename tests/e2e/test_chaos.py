"""Kill test: workers SIGKILLed and replaced during a run; nothing lost, duplicates explained.

Size: JMTEST_CHAOS_JOBS (CI default 10,000; the issue's soak size is 50,000) and
JMTEST_CHAOS_KILL_EVERY seconds between kills (default 2).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time

import asyncpg
import pytest
from e2e_support import (
    Processes,
    check_runs_against_attempts,
    create_runs_table,
    held_by,
    status_counts,
    wait_registered,
)

from helpers import wait_until
from jobmaster import ClusterConfig, JobMaster, JobStatus

JOBS = int(os.environ.get("JMTEST_CHAOS_JOBS", "10000"))
KILL_EVERY = float(os.environ.get("JMTEST_CHAOS_KILL_EVERY", "2"))
SETTINGS = {"heartbeat_interval": 0.3, "worker_timeout": 1.5, "job_lease": 2}


def _role(kind: str, generation: int) -> list[dict[str, object]]:
    name = f"{kind}-g{generation}"
    common = {"name": name, "agent": "pg-agent", "parallelism_factor": 8.0, "buckets": {"Medium": 2}}
    if kind == "full":
        return [common]
    if kind == "exec":
        return [{**common, "mode": "execution"}]
    return [{"name": name, "agent": "pg-agent", "mode": "drain"}]


@pytest.mark.timeout(900)  # its own deadline is 600 s
async def test_random_worker_kills_lose_nothing(processes: Processes, pg_urls) -> None:
    master = pg_urls["master"]
    await create_runs_table(master)
    processes.agents = {"pg-agent": pg_urls["agent"]}
    processes.settings = SETTINGS
    generation = 0
    live: dict[str, tuple[str, object]] = {}
    for kind in ("full", "full", "exec", "drain"):
        generation += 1
        name = f"{kind}-g{generation}"
        live[name] = (kind, processes.worker(name, _role(kind, generation)))
    await wait_registered(master, processes.cluster, len(live))
    publishing = asyncio.create_task(
        asyncio.to_thread(
            processes.publish,
            [{"name": "jobs", "handler": "e2e_app.busy", "count": JOBS}],
        )
    )
    rng = random.Random(1234)
    killed: list[str] = []
    held: dict[str, int] = {}  # per victim, the jobs it owned right before its kill
    began = time.monotonic()
    while (await status_counts(master, processes.cluster))[5] < JOBS:
        assert time.monotonic() - began < 600, await status_counts(master, processes.cluster)
        await asyncio.sleep(KILL_EVERY)
        if publishing.done() and (await status_counts(master, processes.cluster))[5] >= JOBS:
            break
        victim = rng.choice(sorted(live))
        kind, proc = live.pop(victim)
        held[victim] = await held_by(master, processes.cluster, victim)
        proc.send_signal(signal.SIGKILL)  # type: ignore[attr-defined]
        killed.append(victim)
        generation += 1
        name = f"{kind}-g{generation}"
        live[name] = (kind, processes.worker(name, _role(kind, generation)))
    ids = (await publishing)["jobs"]
    took = time.monotonic() - began
    assert len(ids) == JOBS

    conn = await asyncpg.connect(master)
    try:
        runs = await conn.fetch(
            "SELECT job_id, worker_id, attempt FROM e2e_runs WHERE job_id = ANY($1::text[])"
            " ORDER BY job_id, at",
            ids,
        )
        final = await conn.fetch(
            "SELECT status, count(*) FROM jm_jobs WHERE id = ANY($1::text[]) GROUP BY status", ids
        )
    finally:
        await conn.close()
    assert {r[0]: r[1] for r in final} == {5: JOBS}, "a job did not succeed"
    by_job: dict[str, list[asyncpg.Record]] = {}
    for row in runs:
        by_job.setdefault(row["job_id"], []).append(row)
    assert set(by_job) == set(ids), "a job never ran"
    repeated = {j: r for j, r in by_job.items() if len(r) > 1}
    for job_id, job_runs in repeated.items():
        # every run but the last was on a worker that was killed while running it
        for earlier in job_runs[:-1]:
            assert any(earlier["worker_id"].startswith(f"{k}-") for k in killed), (job_id, job_runs)
    extra = sum(len(r) - 1 for r in repeated.values())
    # The fault happened and mattered: a victim held jobs when it was killed, and runs were lost.
    assert any(held.values()), f"no victim held a job when it was killed: {held}"
    lost = await check_runs_against_attempts(master, processes.cluster, ids, killed)
    assert lost > 0, "no run was lost to a kill: the kills did not hit running jobs"
    print(
        f"\nchaos: {JOBS} jobs, {len(killed)} SIGKILLs (victim: jobs held {held}), {took:.1f}s;"
        f" {len(repeated)} job(s) ran again after their worker died ({extra} extra runs, {lost} lost runs)"
    )


async def test_recovery_time_with_default_settings(processes: Processes, pg_urls) -> None:
    """SIGKILL a worker holding jobs; measure until every job it held has run elsewhere."""
    master = pg_urls["master"]
    await create_runs_table(master)
    defaults = ClusterConfig(cluster_id="defaults")
    processes.settings = {  # override e2e_app's fast settings with the product defaults
        "heartbeat_interval": defaults.heartbeat_interval,
        "job_lease": defaults.job_lease,
        "worker_timeout": defaults.worker_timeout,
    }
    victim = processes.worker("victim", [{"name": "victim", "parallelism_factor": 1.0}])
    await wait_registered(master, processes.cluster, 1)
    ids = processes.publish([{"name": "jobs", "handler": "e2e_app.long", "count": 300}])["jobs"]

    async def held_now() -> list[str]:
        """The jobs the victim holds in memory (buffered or running)."""
        conn = await asyncpg.connect(master)
        try:
            rows = await conn.fetch(
                "SELECT id FROM jm_jobs WHERE id = ANY($1::text[]) AND status IN (4, 6)"
                " AND worker_id LIKE 'victim-%'",
                ids,
            )
        finally:
            await conn.close()
        return [r[0] for r in rows]

    await wait_until(held_now, "the victim holds jobs in memory")
    victim.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    assert victim.wait(30) == -signal.SIGKILL
    held = await held_now()  # frozen until their leases lapse: no process renews or finishes them
    assert held, "the victim held no job when it was killed"
    processes.worker("rescuer", [{"name": "rescuer", "parallelism_factor": 25.0}])
    while True:
        conn = await asyncpg.connect(master)
        try:
            rerun = await conn.fetchval(
                "SELECT count(DISTINCT job_id) FROM e2e_runs WHERE job_id = ANY($1::text[])"
                " AND worker_id LIKE 'rescuer-%'",
                held,
            )
        finally:
            await conn.close()
        if rerun == len(held):
            break
        assert time.monotonic() - killed_at < 60
        await asyncio.sleep(0.2)
    recovery = time.monotonic() - killed_at
    print(f"\nrecovery: {len(held)} jobs held by the killed worker all ran elsewhere {recovery:.1f}s later")
    assert recovery < 20


@pytest.mark.timeout(600)
async def test_a_job_that_kills_its_worker_every_time_ends_failed(processes: Processes, pg_urls) -> None:
    """A job whose run SIGKILLs its worker process each time spends its retry budget on lost runs:
    each run is recorded as `lost`, the next one waits the retry back-off, and the job ends Failed
    instead of taking down replacement workers forever."""
    master = pg_urls["master"]
    await create_runs_table(master)
    # No jitter: the back-off after the 1st and 2nd lost runs is exactly 1 s and 2 s.
    processes.settings = {"retry_backoff_base": 1.0, "retry_backoff_cap": 2.0, "retry_jitter": 0.0}
    host = processes.worker("host-1", [{"name": "host-1"}])
    await wait_registered(master, processes.cluster, 1)
    job_id = processes.publish([{"name": "jobs", "handler": "e2e_app.dies", "count": 1}])["jobs"][0]
    deaths = 0
    app = JobMaster(processes.cluster, master)
    async with app:

        async def failed_or_replace_the_dead() -> bool:
            nonlocal host, deaths
            if host.poll() is not None:  # the job killed it: start a replacement, as a supervisor would
                assert host.returncode == -signal.SIGKILL, host.returncode
                deaths += 1
                host = processes.worker(f"host-{deaths + 1}", [{"name": f"host-{deaths + 1}"}])
            return (await app.get_job(job_id)).status is JobStatus.Failed

        await wait_until(failed_or_replace_the_dead, "the job ended Failed", timeout=180, every=0.1)
        job = await app.get_job(job_id)
        attempts = await app.job_attempts(job_id)
    assert deaths == 3, f"{deaths} worker deaths for a job of 3 attempts"
    assert job.attempts == 3 and job.last_error is not None and job.last_error["type"] == "WorkerLost"
    assert [a.outcome for a in attempts] == ["lost"] * 3, attempts
    assert [a.worker_id.split("-")[1] for a in attempts if a.worker_id] == ["1", "2", "3"], attempts
    conn = await asyncpg.connect(master)
    try:
        runs = await conn.fetch("SELECT attempt FROM e2e_runs WHERE job_id = $1 ORDER BY attempt", job_id)
    finally:
        await conn.close()
    assert [r["attempt"] for r in runs] == [1, 2, 3], "each attempt ran its handler once"
    for previous, following, backoff in zip(attempts, attempts[1:], (1.0, 2.0), strict=False):
        waited = following.started_at - previous.finished_at
        assert waited >= backoff - 0.01, f"attempt {following.attempt} started {waited:.2f}s after a lost run"
    print(f"\na job that kills its worker: {deaths} SIGKILLs, attempts {[a.outcome for a in attempts]}")
