"""Real worker and publisher processes with the agent on NATS JetStream (master on PostgreSQL).

- a split fleet (publisher, coordinator-only, two execution processes) on the shared nats-server;
- the nats-server itself SIGKILLed mid-run and restarted on the same store (a private server);
- the kill test of test_chaos.py with the agent on NATS (size: JMTEST_CHAOS_JOBS, default 10,000;
  JMTEST_CHAOS_KILL_EVERY seconds between kills, default 2).

The shared server is `nats://127.0.0.1:4222` (JMTEST_NATS overrides it); every test has its
own cluster id, hence its own stream, which is deleted afterwards.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import asyncpg
import pytest
from e2e_support import (
    NATS_AGENT,
    RELAXED_LEASES,
    Processes,
    check_runs_against_attempts,
    create_runs_table,
    held_by,
    status_counts,
    wait_executors,
)
from tests.nats.nats_support import PrivateNats

from helpers import wait_until

AGENT = NATS_AGENT
FAST = {"heartbeat_interval": 0.3, "worker_timeout": 1.5, "job_lease": 2}
CHAOS_JOBS = int(os.environ.get("JMTEST_CHAOS_JOBS", "10000"))
KILL_EVERY = float(os.environ.get("JMTEST_CHAOS_KILL_EVERY", "2"))
SUCCEEDED = 5
#: Final master version of a job due at once that succeeded at its first attempt: on the YES path it
#: is adopted from the agent (v1), started in that write or by the next (v2), and completed: 2 or 3.
#: The NO path adds the insert as HeldOnMaster and the coordinator's assignment first: 4 or 5. (A job
#: saved before it was due, which a due-now job never is, would also reach 4.)
YES_PATH_MAX_VERSION = 3


async def _fetch(master: str, query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(master)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def _statuses(master: str, ids: list[str]) -> Counter[int]:
    rows = await _fetch(
        master, "SELECT status, count(*) FROM jm_jobs WHERE id = ANY($1::text[]) GROUP BY status", ids
    )
    return Counter({r[0]: r[1] for r in rows})


async def _not_done(master: str, ids: list[str], limit: int = 20) -> list[tuple[object, ...]]:
    """Evidence for a failed wait: the jobs that did not succeed, as the master has them."""
    rows = await _fetch(
        master,
        "SELECT id, status, version, attempts, worker_id, bucket_id,"
        " round((lease_expires_at - extract(epoch from now()))::numeric, 1) AS lease_left"
        " FROM jm_jobs WHERE id = ANY($1::text[]) AND status <> 5 ORDER BY id LIMIT $2",
        ids,
        limit,
    )
    return [tuple(r) for r in rows]


def _check_alive(workers: dict[str, subprocess.Popen[bytes]], logs: Path) -> None:
    """Fail at once, with the worker's own last error, if a worker process exited by itself."""
    for name, proc in workers.items():
        if proc.poll() is not None:
            lines = (logs / f"{name}.log").read_text(errors="replace").splitlines()
            errors = list(dict.fromkeys(line.strip(" |") for line in lines if "Error:" in line))
            pytest.fail(
                f"worker process {name} exited with code {proc.returncode} although nothing stopped it;"
                f" its log ({logs / f'{name}.log'}) ends with: {errors[-3:]}"
            )


async def _wait_all_succeeded(
    master: str,
    ids: list[str],
    timeout: float,
    workers: dict[str, subprocess.Popen[bytes]] | None = None,
    logs: Path | None = None,
) -> float:
    began = time.monotonic()
    while True:
        if workers and logs:
            _check_alive(workers, logs)
        counts = await _statuses(master, ids)
        if counts[SUCCEEDED] == len(ids):
            return time.monotonic() - began
        if time.monotonic() - began > timeout:
            pytest.fail(
                f"not every job succeeded within {timeout:.0f}s: statuses {dict(counts)},"
                f" missing rows {len(ids) - sum(counts.values())}; first ones: {await _not_done(master, ids)}"
            )
        await asyncio.sleep(0.1)


async def _runs(master: str, ids: list[str]) -> dict[str, list[asyncpg.Record]]:
    """Every recorded handler run of these jobs, per job, in the order they started."""
    runs: dict[str, list[asyncpg.Record]] = {}
    for row in await _fetch(
        master, "SELECT * FROM e2e_runs WHERE job_id = ANY($1::text[]) ORDER BY job_id, started", ids
    ):
        runs.setdefault(row["job_id"], []).append(row)
    return runs


def _assert_each_ran_once(runs: dict[str, list[asyncpg.Record]], ids: list[str]) -> None:
    assert set(runs) == set(ids), f"{len(set(ids) - set(runs))} job(s) never ran"
    twice = {j: [(r["worker_id"], r["attempt"]) for r in rs] for j, rs in runs.items() if len(rs) > 1}
    assert not twice, f"{len(twice)} job(s) ran more than once, e.g. {list(twice.items())[:5]}"


async def test_nats_agent_split_fleet(shared_nats: str, processes: Processes, pg_urls) -> None:
    """Publisher with the agent, a coordinator-only process, two execution processes on NATS.

    19,000 jobs due now take the YES path (publisher -> NATS bucket -> executor); 1,000 due beyond
    `transient_threshold` take the NO path (master -> coordinator -> NATS bucket -> executor).
    """
    master = pg_urls["master"]
    await create_runs_table(master)
    processes.agents = {AGENT: shared_nats}
    processes.settings = {**FAST, **RELAXED_LEASES, "transient_threshold": 2}
    processes.worker("coordinator", [{"name": "brain", "agent": AGENT, "mode": "coordinator"}])
    for name in ("exec-a", "exec-b"):
        processes.worker(
            name, [{"name": name, "agent": AGENT, "mode": "execution", "parallelism_factor": 16.0}]
        )
    await wait_executors(master, processes.cluster, 2)  # the YES path needs their buckets
    began = time.monotonic()
    ids = processes.publish(
        [
            {"name": "now", "handler": "e2e_app.work", "count": 19_000},
            {"name": "later", "handler": "e2e_app.work", "count": 1_000, "delay": 3},
        ]
    )
    published = time.monotonic() - began
    every = ids["now"] + ids["later"]
    assert len(set(every)) == 20_000
    await _wait_all_succeeded(master, every, 120)
    took = time.monotonic() - began
    assert processes.stop_all() == [0, 0, 0]

    runs = await _runs(master, every)
    _assert_each_ran_once(runs, every)
    ran_on = Counter(rs[0]["worker_id"].split("-")[1] for rs in runs.values())
    assert set(ran_on) == {"a", "b"}, f"jobs ran on {dict(ran_on)}, not on both execution processes"
    lateness = [runs[j][0]["started"] - runs[j][0]["due"] for j in ids["later"]]
    assert min(lateness) >= -0.01, "a delayed job started before it was due"
    versions = {
        r["id"]: r["version"]
        for r in await _fetch(master, "SELECT id, version FROM jm_jobs WHERE id = ANY($1::text[])", every)
    }
    yes_path = sum(versions[j] <= YES_PATH_MAX_VERSION for j in ids["now"])
    assert all(versions[j] > YES_PATH_MAX_VERSION for j in ids["later"]), "a delayed job skipped the master"
    # Nothing here makes a push fail, so the due-now jobs all go through the publisher's YES path.
    assert yes_path == len(ids["now"]), f"only {yes_path} of {len(ids['now'])} due-now jobs took the YES path"
    print(
        f"\nNATS split fleet: 20,000 jobs ({yes_path} YES path, {len(ids['later'])} NO path) published in"
        f" {published:.1f}s, all done in {took:.1f}s; per execution process {dict(ran_on)}"
    )


@pytest.mark.timeout(600)
async def test_nats_server_killed_mid_run(processes: Processes, pg_urls, tmp_path: Path) -> None:
    """SIGKILL the agent's nats-server mid-run, restart it on the same store: every job runs once.

    No worker dies here, and the master stays up, so every lease keeps being renewed: a job can run
    twice only if the process running it dies (docs/guarantees.md), hence exactly once is expected.
    """
    master = pg_urls["master"]
    await create_runs_table(master)
    server = PrivateNats(tmp_path / "nats")
    server.start()
    try:
        processes.agents = {AGENT: server.url}
        processes.settings = FAST
        workers = {
            name: processes.worker(
                name,
                [{"name": name, "agent": AGENT, "parallelism_factor": 8.0, "buckets": {"Medium": 2}}],
            )
            for name in ("full-1", "full-2")
        }
        await wait_executors(master, processes.cluster, 2)
        ids = (
            await asyncio.to_thread(
                processes.publish, [{"name": "jobs", "handler": "e2e_app.busy", "count": 10_000}]
            )
        )["jobs"]
        assert len(set(ids)) == 10_000

        async def some_done() -> bool:
            return (await _statuses(master, ids))[SUCCEEDED] >= 2_000

        await wait_until(some_done, "2,000 jobs succeeded before the kill", timeout=120)
        server.kill()
        killed_at = time.monotonic()
        at_kill = await _statuses(master, ids)
        done = at_kill[SUCCEEDED]
        await asyncio.sleep(2.0)  # the outage (the fault itself, not a wait for anything)
        _check_alive(workers, processes.logs)  # an agent outage must not take a worker down
        at_restart = await _statuses(master, ids)
        server.start()
        restarted = time.monotonic()
        # The fault mattered: these acknowledged jobs had no master row all through the outage, so
        # the dead server's store held their only copy.
        only_in_nats = len(ids) - sum(at_restart.values())
        assert only_in_nats > 0, f"every job was in the master before the kill: {dict(at_restart)}"
        while (await _statuses(master, ids))[SUCCEEDED] <= at_restart[SUCCEEDED]:
            _check_alive(workers, processes.logs)
            assert time.monotonic() - restarted < 30, "no job succeeded within 30s of the restart"
            await asyncio.sleep(0.05)
        resumed = time.monotonic() - restarted
        await _wait_all_succeeded(master, ids, 90, workers, processes.logs)
        after_restart = time.monotonic() - restarted
        assert processes.stop_all() == [0, 0]
    finally:
        if server.process is None:  # failed during the outage: a graceful stop needs the agent
            server.start()
        processes.stop_all()  # before the server goes: a graceful stop drains the buckets into it
        server.stop()

    runs = await _runs(master, ids)
    _assert_each_ran_once(runs, ids)
    print(
        f"\nnats-server SIGKILLed with {done} of 10,000 done (statuses {dict(at_kill)}, {only_in_nats}"
        f" only in NATS), restarted"
        f" {restarted - killed_at:.1f}s later (statuses {dict(at_restart)}); first job done again"
        f" {resumed:.1f}s and every job done {after_restart:.1f}s after the restart, each exactly once"
    )


def _chaos_role(kind: str, generation: int) -> list[dict[str, object]]:
    """The roles of test_chaos.py, bound to the NATS agent."""
    name = f"{kind}-g{generation}"
    common = {"name": name, "agent": AGENT, "parallelism_factor": 8.0, "buckets": {"Medium": 2}}
    if kind == "full":
        return [common]
    if kind == "exec":
        return [{**common, "mode": "execution"}]
    return [{"name": name, "agent": AGENT, "mode": "drain"}]


@pytest.mark.timeout(600 + CHAOS_JOBS / 50)  # publishing, then its own limit
async def test_nats_kill_test(shared_nats: str, processes: Processes, pg_urls) -> None:
    """test_chaos.py's kill test with the agent on NATS: random SIGKILL and replacement of workers."""
    master = pg_urls["master"]
    await create_runs_table(master)
    processes.agents = {AGENT: shared_nats}
    processes.settings = FAST
    generation = 0
    live: dict[str, tuple[str, subprocess.Popen[bytes]]] = {}
    for kind in ("full", "full", "exec", "drain"):
        generation += 1
        name = f"{kind}-g{generation}"
        live[name] = (kind, processes.worker(name, _chaos_role(kind, generation)))
    await wait_executors(master, processes.cluster, 3)
    publishing = asyncio.create_task(
        asyncio.to_thread(
            processes.publish, [{"name": "jobs", "handler": "e2e_app.busy", "count": CHAOS_JOBS}], 300
        )
    )
    rng = random.Random(1234)
    killed: list[str] = []
    held: dict[str, int] = {}  # per victim, the jobs it owned right before its kill
    began = time.monotonic()
    limit = 120 + CHAOS_JOBS / 100
    while (counts := await status_counts(master, processes.cluster))[SUCCEEDED] < CHAOS_JOBS:
        assert time.monotonic() - began < limit, f"stuck: statuses {dict(counts)}"
        await asyncio.sleep(KILL_EVERY)
        if publishing.done() and (await status_counts(master, processes.cluster))[SUCCEEDED] == CHAOS_JOBS:
            break
        victim = rng.choice(sorted(live))
        kind, proc = live.pop(victim)
        held[victim] = await held_by(master, processes.cluster, victim)
        proc.send_signal(signal.SIGKILL)
        killed.append(victim)
        generation += 1
        name = f"{kind}-g{generation}"
        live[name] = (kind, processes.worker(name, _chaos_role(kind, generation)))
    ids = (await publishing)["jobs"]
    took = time.monotonic() - began
    _check_alive({name: proc for name, (_, proc) in live.items()}, processes.logs)
    assert len(set(ids)) == CHAOS_JOBS
    assert (await _statuses(master, ids)) == {SUCCEEDED: CHAOS_JOBS}, await _not_done(master, ids)

    runs = await _runs(master, ids)
    assert set(runs) == set(ids), "a job never ran"
    repeated = {j: rs for j, rs in runs.items() if len(rs) > 1}
    for job_id, job_runs in repeated.items():
        # every run but the last was on a worker that was killed while running it
        for earlier in job_runs[:-1]:
            assert any(earlier["worker_id"].startswith(f"{k}-") for k in killed), (
                job_id,
                [(r["worker_id"], r["attempt"]) for r in job_runs],
            )
    extra = sum(len(rs) - 1 for rs in repeated.values())
    # The fault happened and mattered: a victim held jobs when it was killed, and runs were lost.
    assert any(held.values()), f"no victim held a job when it was killed: {held}"
    lost = await check_runs_against_attempts(master, processes.cluster, ids, killed)
    assert lost > 0, "no run was lost to a kill: the kills did not hit running jobs"
    print(
        f"\nNATS chaos: {CHAOS_JOBS} jobs, {len(killed)} SIGKILLs (jobs held {held}), {took:.1f}s;"
        f" {len(repeated)} job(s) ran again after their worker died ({extra} extra runs, {lost} lost runs)"
    )
