"""Faults injected with real processes and servers, each while its victim holds jobs, each followed by
the promise of docs/guarantees.md that it tests, and by a cross-check of every handler run against
the attempts the master counted (`fault_support.account`).
"""

from __future__ import annotations

import asyncio
import base64
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from e2e_support import create_runs_table, wait_registered
from fault_support import (
    CUT_SHORT,
    FaultProcesses,
    PausableProxy,
    account,
    create_interrupts_table,
    fetch,
    held_by,
    log_lines,
    worker_id,
)
from private_pg import PrivatePostgres
from test_nats_e2e import RELAXED_LEASES, YES_PATH_MAX_VERSION
from test_wire_e2e import _cli

from helpers import (
    NATS_URL,
    drop_agent,
    make_job,
    make_worker,
    master_with_bucket,
    opened_master,
    wait_until,
)
from jobmaster import JobStatus
from jobmaster.agents.base import AgentMessage
from jobmaster.agents.master_queue import MasterQueue
from jobmaster.backends import make_agent, make_master
from jobmaster.cluster.model import Bucket, BucketStatus
from jobmaster.jobs.model import Job, new_job_id
from jobmaster.runtime.poison import UNDECODABLE

#: Short leases, so that a fault outlasts them within seconds.
LEASES = {"heartbeat_interval": 0.3, "job_lease": 2, "worker_timeout": 1.5, "shutdown_grace": 1}
LEASE_LOST = "no heartbeat for longer than job_lease"
REPLACED = "had been adopted as lost; replaced"
LATE_ANSWER = "was answered after the lease it asked for ran out"
#: The worker a test harms: one bucket of 4 slots and a buffer of 8 (see `_victim_holding_jobs`).
VICTIM = {"name": "victim", "mode": "execution", "parallelism_factor": 1.0, "bucket_buffer_size": 8}
HOLDING = {JobStatus.Processing: 4, JobStatus.Queued: 8}


async def _all_succeeded(url: str, ids: list[str]) -> bool:
    rows = await fetch(url, "SELECT count(*) FROM jm_jobs WHERE id = ANY($1::text[]) AND status = 5", ids)
    return bool(rows[0][0] == len(ids))


def _fleet_and_cut(
    server: PrivatePostgres, proxy: PausableProxy, cluster: str, logs: Path
) -> tuple[FaultProcesses, FaultProcesses]:
    """Processes that reach the master directly, and processes that reach it through `proxy` (their
    handlers record their runs directly, past the cut)."""
    fleet = FaultProcesses(server.url, cluster, logs)
    fleet.settings = LEASES
    cut = FaultProcesses(server.url.replace(f":{server.port}/", f":{proxy.port}/"), cluster, logs)
    cut.settings = LEASES
    cut.extra_env = {"E2E_RUNS": server.url}
    return fleet, cut


async def _victim_holding_jobs(victim: FaultProcesses, fleet: FaultProcesses) -> tuple[str, list[str], Path]:
    """Start the victim (execution only) and a coordinator, publish jobs, and wait until the victim
    runs 4 and buffers 8: its slots busy and its buffer full, it writes nothing until the fault, so
    the master knows exactly what it holds then. Returns its worker id, the jobs' ids, and the gate
    (`fault_app.stalls`) whose removal lets its runs end."""
    url, cluster = fleet.master, fleet.cluster
    gate = victim.logs / "victim-gate"
    gate.touch()
    victim.extra_env["E2E_VICTIM_GATE"] = str(gate)
    victim.worker("victim", [VICTIM])
    fleet.worker("brain", [{"name": "brain", "mode": "coordinator"}])
    await wait_registered(url, cluster, 2)
    victim_id = await worker_id(url, cluster, "victim")
    # due now: 4 run, the rest wait in its bucket; due soon: buffered (only jobs not due yet are)
    plan = [
        {"name": "now", "handler": "fault_app.stalls", "count": 30},
        {"name": "soon", "handler": "fault_app.stalls", "count": 30, "delay": 5},
    ]
    published = await asyncio.to_thread(fleet.publish, plan)  # a relay may run in this loop
    ids = [job_id for group in published.values() for job_id in group]

    async def holding() -> bool:
        return await held_by(url, victim_id) == HOLDING

    await wait_until(holding, "the victim to run 4 jobs and buffer 8")
    return victim_id, ids, gate


async def _wait_buckets_adopted(url: str, victim: str) -> None:
    async def adopted() -> bool:
        return not await fetch(url, "SELECT id FROM jm_buckets WHERE worker_id = $1", victim)

    await wait_until(adopted, "the victim's buckets to be adopted and emptied")


async def _victim_runs_again(victim: FaultProcesses, fleet: FaultProcesses, victim_id: str) -> list[str]:
    """Back from its fault, the victim replaces its adopted buckets once and runs jobs again; returns
    the ids of quick jobs published meanwhile, some of which it ran."""
    url = fleet.master

    async def replaced() -> list[asyncpg.Record]:
        return await fetch(url, "SELECT id FROM jm_buckets WHERE worker_id = $1", victim_id)

    async def logged() -> list[str]:
        return log_lines(victim, "victim", REPLACED)

    buckets = await wait_until(replaced, "the victim to replace its adopted buckets")
    assert all(b["id"].endswith(".r1") for b in buckets), buckets
    # the rows are written before the line: on a loaded machine the test may read them in between
    await wait_until(logged, "the victim to log that it replaced them")
    plan = [{"name": "later", "handler": "e2e_app.work", "count": 200}]
    later = (await asyncio.to_thread(fleet.publish, plan))["later"]
    await wait_until(lambda: _all_succeeded(url, later), "the later jobs to succeed", 120)

    async def ran_later() -> list[asyncpg.Record]:
        query = "SELECT 1 FROM e2e_runs WHERE job_id = ANY($1::text[]) AND worker_id = $2"
        return await fetch(url, query, later, victim_id)

    assert await ran_later(), "the victim ran none of the jobs published after its fault"
    return later


async def test_master_unreachable_past_job_lease(private_master: PrivatePostgres, tmp_path: Path) -> None:
    """A worker cut from its master (a paused TCP relay: its calls hang, as in a partition) for longer
    than `job_lease`, while it runs jobs and buffers more, interrupts its runs and drops its buffer;
    the rest of the fleet, which still reaches the master, recovers those jobs and adopts its bucket;
    back online, the worker replaces its bucket and runs jobs again. Every job succeeds, and a job
    runs twice only when its first run was the cut worker's, cut short and counted as `lost`."""
    url = private_master.url
    await create_runs_table(url)
    await create_interrupts_table(url)
    proxy = PausableProxy(private_master.port)
    await proxy.start()
    fleet, cut = _fleet_and_cut(private_master, proxy, f"cut-{uuid.uuid4().hex[:8]}", tmp_path)
    cluster = fleet.cluster
    try:
        victim, ids, _ = await _victim_holding_jobs(cut, fleet)
        proxy.pause()
        cut_at = time.time()
        fleet.worker("rescuer", [{"name": "rescuer", "parallelism_factor": 4.0}])

        async def lease_lost() -> list[str]:
            return log_lines(cut, "victim", LEASE_LOST)

        dropped = (await wait_until(lease_lost, "the victim to give its jobs up"))[0]
        assert "dropped 12 buffered or running job(s)" in dropped, dropped
        await wait_until(lambda: _all_succeeded(url, ids), "every job to succeed", 120)
        assert cut.running[0].poll() is None, "the victim died instead of waiting for its master"

        await _wait_buckets_adopted(url, victim)
        proxy.resume()
        healed_at = time.time()
        later = await _victim_runs_again(cut, fleet, victim)
        assert await asyncio.to_thread(fleet.stop_all) == [0, 0]
        assert await asyncio.to_thread(cut.stop_all) == [0]
    finally:
        await asyncio.to_thread(fleet.stop_all)
        await asyncio.to_thread(cut.stop_all)
        await proxy.close()

    interrupted = await fetch(url, "SELECT job_id, attempt, at FROM e2e_interrupts")
    assert interrupted, "no run of the victim was interrupted"
    assert all(cut_at < r["at"] < healed_at for r in interrupted), "a run was interrupted outside the cut"
    books = await account(url, cluster, ids, faulty="victim")
    victim_runs = books.runs_on("victim")
    assert {(r["job_id"], r["attempt"]) for r in interrupted} == set(victim_runs) and len(victim_runs) == 4
    for job_id, attempt in victim_runs:
        assert books.attempts[job_id][attempt - 1].outcome == "lost"
        assert len(books.runs[job_id]) == 2  # once cut short on the victim, once to the end elsewhere
    assert sum(len(runs) for runs in books.runs.values()) == len(ids) + len(victim_runs)
    await account(url, cluster, later)  # quick jobs: none cut short, each run once
    print(
        f"\ncut: {dropped.split('] ')[-1]};"
        f" {len(victim_runs)} run(s) interrupted and run again elsewhere, outcomes {dict(books.outcomes())}"
    )


async def test_master_down_past_job_lease(
    private_master: PrivatePostgres, cluster_id: str, tmp_path: Path
) -> None:
    """The master server crashes (`pg_ctl stop -m immediate`) and stays down for longer than
    `job_lease` while a worker with `durable_starts` runs 4 jobs and buffers 8: every call fails at
    once, and past the lease the worker interrupts its runs and drops its buffer; back up, each
    interrupted run is counted (`interrupted` as the worker reports it, or `lost` if recovery came
    first) and every job runs to the end, the worker staying up throughout."""
    records = PrivatePostgres()  # the runs are recorded where the crash is not
    records.start()
    url, runs = private_master.url, records.url
    await create_runs_table(runs)
    await create_interrupts_table(runs)
    fleet = FaultProcesses(url, cluster_id, tmp_path)
    # without it a crash may undo the start of a run, which then goes uncounted (docs/guarantees.md)
    fleet.settings = {**LEASES, "durable_starts": True}
    down = FaultProcesses(url, cluster_id, tmp_path)
    down.settings = fleet.settings
    down.extra_env = {"E2E_RUNS": runs}
    fleet.extra_env = {"E2E_RUNS": runs}
    try:
        victim, ids, gate = await _victim_holding_jobs(down, fleet)
        await asyncio.to_thread(private_master.stop, "immediate")
        stopped_at = time.time()

        async def lease_lost() -> list[str]:
            return log_lines(down, "victim", LEASE_LOST)

        dropped = (await wait_until(lease_lost, "the victim to give its jobs up"))[0]
        assert "dropped 12 buffered or running job(s)" in dropped, dropped
        gate.unlink()  # its later runs end at once
        await asyncio.to_thread(private_master.start)
        started_at = time.time()
        await wait_until(lambda: _all_succeeded(url, ids), "every job to succeed", 120)
        assert down.running[0].poll() is None, "the victim died while its master was down"
        assert await asyncio.to_thread(fleet.stop_all) == [0]
        assert await asyncio.to_thread(down.stop_all) == [0]
        query = "SELECT job_id, attempt, at FROM e2e_interrupts WHERE job_id = ANY($1::text[])"
        interrupted = await fetch(runs, query, ids)
        books = await account(url, cluster_id, ids, faulty="victim", runs=runs)
    finally:
        await asyncio.to_thread(fleet.stop_all)
        await asyncio.to_thread(down.stop_all)
        records.destroy()

    assert len(interrupted) == 4 and all(stopped_at < r["at"] < started_at for r in interrupted)
    for r in interrupted:
        assert books.attempts[r["job_id"]][r["attempt"] - 1].outcome in CUT_SHORT
    print(f"\nmaster down: {dropped.split('] ')[-1]}; outcomes {dict(books.outcomes())}")


async def test_a_take_lost_in_a_master_crash_loses_no_job_and_undoes_no_start(
    private_master: PrivatePostgres,
) -> None:
    """A take from a job-table queue skips its WAL flush (docs/guarantees.md, master crash row); with
    `durable_starts` the jobs it starts run only once the worker's shared flush that follows it is
    done. A server
    crash (`pg_ctl stop -m immediate`) right after that flush keeps every start: the started jobs
    are still the worker's, Processing, their attempt counted; the buffered ones may be undone, and
    must then be back in their bucket's queue, to be taken again. The WAL writer is slowed to 10 s
    so that nothing but the worker's flush makes the take durable before the crash."""
    url = private_master.url
    private_master.sql("ALTER SYSTEM SET wal_writer_delay = '10s'")
    private_master.sql("SELECT pg_reload_conf()")
    query = "SELECT id, status, attempts, worker_id FROM jm_jobs WHERE id = ANY($1::text[])"
    async with master_with_bucket(url, "crash") as (master, bucket):
        cluster_id, now = master.cluster_id, time.time()
        jobs = [make_job(-1) for _ in range(4)] + [make_job(60) for _ in range(4)]
        assert await master.queue_jobs(bucket.id, jobs)
        ids = [j.id for j in jobs]
        before = {r["id"]: tuple(r) for r in await fetch(url, query, ids)}
        await master.register_worker(make_worker("w1"))  # the flush writes the worker's own row
        queue = MasterQueue(master, "standalone")
        taken = await queue.take(bucket.id, "w1", now + 60, now=now, start=4, due_before=now + 120, limit=4)
        assert sorted(j.status.name for j in taken) == ["Processing"] * 4 + ["Queued"] * 4, taken
        on_disk = queue.started_on_disk("w1")
        assert on_disk is not None and await on_disk, "the flush the started jobs wait for failed"
        await asyncio.to_thread(private_master.stop, "immediate")
    await asyncio.to_thread(private_master.start)
    after = {r["id"]: tuple(r) for r in await fetch(url, query, ids)}
    assert after.keys() == before.keys(), f"jobs lost in the crash: {before.keys() - after.keys()}"
    for job in taken:
        kept = after[job.id] == (job.id, int(job.status), job.attempts, "w1")
        if job.status is JobStatus.Processing:
            assert kept, f"the crash undid the start of {job.id}: {after[job.id]}"
        assert kept or after[job.id] == before[job.id], f"{job.id}: {after[job.id]}, before {before[job.id]}"
    undone = [i for i in ids if after[i] == before[i]]
    async with opened_master(url, cluster_id) as master:
        now = time.time()
        again = await master.take_queued(
            bucket.id, "w1", now + 60, now=now, start=8, due_before=now + 120, limit=8
        )
    assert set(undone) <= {j.id for j in again}, "a job the crash put back could not be taken again"
    print(f"\ntake lost in the crash: {len(undone)} of {len(taken)} buffered jobs back in their queue")


async def test_worker_paused_past_job_lease_never_starts_its_stale_copies(
    private_master: PrivatePostgres, cluster_id: str, tmp_path: Path
) -> None:
    """A worker SIGSTOPped for longer than `job_lease` while it runs 4 jobs and buffers 8, then
    SIGCONTed once another worker ran them all: the runs it was in finish late (their outcomes are
    refused, the attempts stay `lost`), and its buffered copies, due and stale, are never started
    (their start writes are fenced on the version), before it goes on with new jobs."""
    url = private_master.url
    await create_runs_table(url)
    fleet = FaultProcesses(url, cluster_id, tmp_path)
    fleet.settings = LEASES
    paused = FaultProcesses(url, cluster_id, tmp_path)
    paused.settings = LEASES
    try:
        victim, ids, gate = await _victim_holding_jobs(paused, fleet)
        process = paused.running[0]
        process.send_signal(signal.SIGSTOP)
        stopped_at = time.time()
        held = await held_by(url, victim)
        fleet.worker("rescuer", [{"name": "rescuer", "parallelism_factor": 4.0}])
        await wait_until(lambda: _all_succeeded(url, ids), "every job to succeed", 120)
        await _wait_buckets_adopted(url, victim)
        assert time.time() - stopped_at > LEASES["job_lease"]
        gate.unlink()  # the runs it was in end as soon as it goes on
        process.send_signal(signal.SIGCONT)
        # a due job it buffered keeps new jobs from starting there until it was dispatched, so new
        # jobs run on the victim only once every stale copy was tried
        await _victim_runs_again(paused, fleet, victim)
        assert await asyncio.to_thread(fleet.stop_all) == [0, 0]
        assert await asyncio.to_thread(paused.stop_all) == [0]
    finally:
        await asyncio.to_thread(fleet.stop_all)
        await asyncio.to_thread(paused.stop_all)

    assert held == HOLDING, held  # what it held while stopped: the fault mattered
    books = await account(url, cluster_id, ids, faulty="victim")
    victim_runs = books.runs_on("victim")
    assert len(victim_runs) == 4, f"the victim ran {victim_runs}: a stale copy started"
    late = await fetch(
        url,
        "SELECT job_id FROM e2e_runs WHERE job_id = ANY($1::text[]) AND worker_id = $2 AND started > $3",
        ids,
        victim,
        stopped_at,
    )
    assert not late, f"stale copies started after the pause: {late}"
    for job_id, attempt in victim_runs:
        assert books.attempts[job_id][attempt - 1].outcome == "lost"
        assert len(books.runs[job_id]) == 2  # the run it was in, and one to the end elsewhere
    assert sum(len(runs) for runs in books.runs.values()) == len(ids) + len(victim_runs)
    print(f"\npause: the victim held {dict(held)}; outcomes {dict(books.outcomes())}")


@pytest.fixture(params=["sqlite", "postgresql", "mysql", "nats"])
def any_agent(request: pytest.FixtureRequest, tmp_path: Path, cluster_id: str) -> Iterator[str]:
    """An agent of each kind; its NATS stream is deleted afterwards (ask for it before the processes
    fixture, so that the workers stop before the stream goes)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/agent.db"
    elif request.param == "nats":
        yield NATS_URL
        asyncio.run(drop_agent(NATS_URL, cluster_id, "agent"))
    else:
        urls = request.getfixturevalue("mysql_urls" if request.param == "mysql" else "pg_urls")
        yield str(urls["agent"])


async def test_poison_pushed_into_each_agent_kind_while_a_worker_runs(
    any_agent: str, private_master: PrivatePostgres, cluster_id: str, tmp_path: Path
) -> None:
    """Undecodable messages pushed into the bucket a worker is taking jobs from, amid the jobs: each
    is kept in the master as a Failed `jobmaster.undecodable` job under its message's id, with its
    bytes, visible to `jobmaster jobs list` and `show`, and leaves the agent; the worker runs every
    job around them, and more afterwards, each once, and stops cleanly."""
    url = private_master.url
    await create_runs_table(url)
    processes = FaultProcesses(url, cluster_id, tmp_path)
    processes.agents = {"agent": any_agent}
    processes.settings = LEASES
    garbage = {
        new_job_id(): b"\xff\x00 not a job",
        new_job_id(): b'{"id": "a dict"}',
        new_job_id(): b'[2, "cut short"',
    }
    master = make_master(url, cluster_id)
    agent = make_agent(any_agent, cluster_id, "agent")
    try:
        processes.worker("worker", [{"name": "worker", "agent": "agent", "parallelism_factor": 2.0}])
        await wait_registered(url, cluster_id, 1)
        worker = await worker_id(url, cluster_id, "worker")
        plan = [{"name": "before", "handler": "e2e_app.busy", "count": 400}]
        before = (await asyncio.to_thread(processes.publish, plan))["before"]
        await master.open()
        await agent.open()
        bucket = next(b.id for b in await master.list_buckets() if ".Medium." in b.id)

        async def running() -> Counter[JobStatus]:
            held = await held_by(url, worker)
            return held if held[JobStatus.Processing] else Counter()

        held = await wait_until(running, "the worker to run jobs")
        await agent.push(bucket, [AgentMessage(i, time.time(), 0, raw) for i, raw in garbage.items()])
        pushed_amid = await fetch(
            url, "SELECT count(*) FROM jm_jobs WHERE id = ANY($1::text[]) AND status <> 5", before
        )
        plan = [{"name": "after", "handler": "e2e_app.work", "count": 100}]
        after = (await asyncio.to_thread(processes.publish, plan))["after"]
        await wait_until(lambda: _all_succeeded(url, before + after), "every job to succeed", 120)

        async def all_kept() -> list[Job]:
            jobs = [await master.get_job(job_id) for job_id in garbage]
            return [job for job in jobs if job is not None] if all(jobs) else []

        kept_jobs = await wait_until(all_kept, "the undecodable messages to be kept in the master")
        for kept, raw in zip(kept_jobs, garbage.values(), strict=True):
            assert kept.status is JobStatus.Failed and kept.definition_id == UNDECODABLE
            assert base64.b64decode(kept.data["payload_base64"]) == raw
            assert kept.metadata["bucket"] == bucket and kept.last_error is not None

        async def acknowledged() -> bool:
            return await agent.count(bucket) == 0

        await wait_until(acknowledged, "the agent to let the undecodable messages go")
        assert processes.running[0].poll() is None, "the worker died of the poison"
        assert await asyncio.to_thread(processes.stop_all) == [0]
    finally:
        await asyncio.to_thread(processes.stop_all)
        await agent.close()
        await master.close()

    assert held[JobStatus.Processing] > 0 and pushed_amid[0][0] > 0, "nothing ran when the poison came"
    await account(url, cluster_id, before + after)
    where = ("--master", url, "--cluster", cluster_id)
    listed = _cli("jobs", "list", *where, "--handler", UNDECODABLE, "--status", "Failed")
    assert all(job_id in listed for job_id in garbage), listed
    for job_id in garbage:
        shown = _cli("jobs", "show", *where, job_id)
        assert "jobmaster.UndecodableMessage" in shown and bucket in shown


async def _read_ids(publisher: subprocess.Popen[bytes], ids: list[str]) -> None:
    """Collect the ids a `stream` publisher prints, each once its schedule call returned, until it
    ends; a line cut short by a kill names no job."""
    assert publisher.stdout is not None
    while line := await asyncio.to_thread(publisher.stdout.readline):
        if line.endswith(b"\n"):
            ids.append(line.decode().strip())


async def test_postgres_agent_crash_keeps_every_acknowledged_push(
    private_master: PrivatePostgres, cluster_id: str, tmp_path: Path
) -> None:
    """The agent's own PostgreSQL server crashes (`pg_ctl stop -m immediate`: no checkpoint, what is
    not in the WAL on disk is gone) while a publisher streams jobs into it and two workers run them,
    and restarts: every job whose schedule call returned runs, those that were only in the agent at
    the crash too, each once. The workers pause for the last 300 calls before the crash (well
    within the leases), so that hundreds of jobs are only in the agent then."""
    url = private_master.url
    await create_runs_table(url)
    agent_server = PrivatePostgres()
    agent_server.start()
    processes = FaultProcesses(url, cluster_id, tmp_path)
    processes.agents = {"pg-agent": agent_server.url}
    processes.settings = LEASES
    try:
        # the workers go on at the crash, and face the outage
        publisher, reading, ids = await _publish_then_pause_workers(processes, "pg-agent", 0.5, 1000)
        query = "SELECT job_id FROM jm_agent_messages WHERE version = 0"
        in_agent = {r["job_id"] for r in await fetch(agent_server.url, query)}
        await asyncio.to_thread(agent_server.stop, "immediate")
        published_at_crash = len(ids)
        for worker in processes.running:
            worker.send_signal(signal.SIGCONT)
        in_master = await fetch(url, "SELECT id FROM jm_jobs WHERE id = ANY($1::text[])", list(in_agent))
        only_in_agent = in_agent - {r["id"] for r in in_master}
        await wait_until(lambda: _more(ids, published_at_crash + 200), "calls to return during the crash")
        await asyncio.to_thread(agent_server.start)
        await wait_until(lambda: _more(ids, published_at_crash + 400), "calls to return after the restart")
        publisher.kill()
        await reading
        publisher.wait()
        assert set(only_in_agent) <= set(ids)
        await wait_until(lambda: _all_succeeded(url, ids), "every published job to succeed", 120)
        assert await asyncio.to_thread(processes.stop_all) == [0, 0]
    finally:
        for worker in processes.running:
            worker.send_signal(signal.SIGCONT)
        await asyncio.to_thread(processes.stop_all)
        agent_server.destroy()

    assert len(only_in_agent) >= 200, f"only {len(only_in_agent)} job(s) were only in the agent at the crash"
    books = await account(url, cluster_id, ids)
    assert all(len(runs) == 1 for runs in books.runs.values()), "a job ran twice"
    print(
        f"\nagent crash: {published_at_crash} calls returned before it, {len(ids)} in all;"
        f" {len(only_in_agent)} job(s) only in the agent at the crash; all ran once"
    )


async def _publish_then_pause_workers(
    processes: FaultProcesses, agent: str, parallelism_factor: float, first: int
) -> tuple[subprocess.Popen[bytes], asyncio.Task[None], list[str]]:
    """Workers `a` and `b` on `agent` and a `stream` publisher, whose returned ids are collected in
    the list returned; once `first` calls returned the workers are SIGSTOPped for 300 more, so that
    hundreds of jobs wait only in the agent whatever the machine's pace (the caller SIGCONTs them)."""
    ids: list[str] = []
    for name in ("a", "b"):
        processes.worker(name, [{"name": name, "agent": agent, "parallelism_factor": parallelism_factor}])
    await wait_registered(processes.master, processes.cluster, 2)
    publisher = processes.stream()
    reading = asyncio.create_task(_read_ids(publisher, ids))
    await wait_until(lambda: _more(ids, first), f"{first:,} schedule calls to return")
    for worker in processes.running:
        worker.send_signal(signal.SIGSTOP)
    unread = len(ids)
    await wait_until(lambda: _more(ids, unread + 300), "300 calls to return while no worker reads")
    return publisher, reading, ids


async def _more(ids: list[str], count: int) -> bool:
    return len(ids) >= count


async def test_drainer_killed_mid_drain(
    private_master: PrivatePostgres, cluster_id: str, tmp_path: Path
) -> None:
    """A drainer SIGKILLed while it empties a dead worker's bucket of 6,000 messages into the master
    (asserted: the bucket is Draining, its own, partly moved and still holding messages when it
    dies) leaves the
    bucket to the next drainer, which adopts it again from the dead drainer and
    finishes; every job runs, once."""
    url = private_master.url
    await create_runs_table(url)
    agent_url = await _second_database(url, "agent")
    processes = FaultProcesses(url, cluster_id, tmp_path)
    processes.agents = {"agent": agent_url}
    processes.settings = LEASES
    master = make_master(url, cluster_id)
    agent = make_agent(agent_url, cluster_id, "agent")
    try:
        dead = processes.worker("dead", [{"name": "dead", "agent": "agent", "mode": "execution"}])
        await wait_registered(url, cluster_id, 1)
        await master.open()
        await agent.open()
        bucket = next(b.id for b in await master.list_buckets() if ".Medium." in b.id)
        dead.kill()
        dead.wait()
        # what publishers that still saw the bucket pushed into it: the only copies of these jobs
        jobs = [make_job(definition_id="e2e_app.work", data={"n": n}) for n in range(6000)]
        for first in range(0, len(jobs), 1000):
            await agent.push_jobs(bucket, jobs[first : first + 1000])
        drainer = processes.worker("drainer", [{"name": "drainer", "agent": "agent", "mode": "drain"}])
        drainer_id = await worker_id(url, cluster_id, "drainer")

        ids = [job.id for job in jobs]

        async def midway() -> tuple[int, int, list[Bucket]]:
            moved = await fetch(url, "SELECT count(*) FROM jm_jobs WHERE id = ANY($1::text[])", ids)
            owned = [b for b in await master.list_buckets(BucketStatus.Draining) if b.id == bucket]
            return moved[0][0], await agent.count(bucket), owned

        async def partly_drained() -> bool:
            moved, left, owned = await midway()
            return moved > 0 and left > 0 and bool(owned) and owned[0].worker_id == drainer_id

        await wait_until(partly_drained, "the drainer to move part of the bucket")
        drainer.kill()
        drainer.wait()
        moved, left, owned = await midway()
        assert moved and left and owned and owned[0].worker_id == drainer_id, "it was not mid-drain"
        processes.worker("rescuer", [{"name": "rescuer", "agent": "agent", "parallelism_factor": 8.0}])
        await wait_until(lambda: _all_succeeded(url, ids), "every job to succeed", 240)

        async def gone() -> bool:
            return all(b.id != bucket for b in await master.list_buckets()) and await agent.count(bucket) == 0

        await wait_until(gone, "the bucket to be drained and deleted")
        assert log_lines(processes, "rescuer", f"adopting bucket {bucket} of dead worker {drainer_id}")
        assert await asyncio.to_thread(processes.stop_all) == [-signal.SIGKILL, -signal.SIGKILL, 0]
    finally:
        await asyncio.to_thread(processes.stop_all)
        await agent.close()
        await master.close()

    books = await account(url, cluster_id, ids)
    assert all(len(runs) == 1 for runs in books.runs.values()), "a job ran twice"
    print(f"\ndrainer killed with {moved} job(s) moved and {left} message(s) left; all ran once")


async def _second_database(url: str, name: str) -> str:
    """A new database `name` on the server of `url`: an agent of its own, not the master's job table."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return url.rsplit("/", 1)[0] + f"/{name}"


@pytest.mark.parametrize("any_agent", ["nats"], indirect=True)
async def test_publisher_killed_on_the_yes_path_to_nats(
    any_agent: str, private_master: PrivatePostgres, cluster_id: str, tmp_path: Path
) -> None:
    """A publisher with a PostgreSQL master and a NATS agent, scheduling jobs due now (the YES path:
    straight into a bucket on NATS), SIGKILLed mid-stream while some of its jobs exist only in NATS
    (asserted): every job whose schedule call returned runs, once, having gone through NATS.

    The workers are SIGSTOPped for the last few hundred calls (well within `worker_timeout`, so the
    publisher still sees their buckets): fast workers would otherwise leave nothing only in NATS."""
    url = private_master.url
    await create_runs_table(url)
    processes = FaultProcesses(url, cluster_id, tmp_path)
    processes.agents = {"agent": any_agent}
    # long leases: a lapse on a loaded machine would send jobs through the master, off the path tested
    processes.settings = {**LEASES, **RELAXED_LEASES}
    try:
        publisher, reading, ids = await _publish_then_pause_workers(processes, "agent", 2.0, 1200)
        publisher.kill()
        await reading
        publisher.wait()
        in_master = await fetch(url, "SELECT id FROM jm_jobs WHERE id = ANY($1::text[])", ids)
        only_in_nats = set(ids) - {r["id"] for r in in_master}
        for worker in processes.running:
            worker.send_signal(signal.SIGCONT)
        await wait_until(lambda: _all_succeeded(url, ids), "every job whose call returned to succeed", 120)
        assert await asyncio.to_thread(processes.stop_all) == [0, 0]
    finally:
        for worker in processes.running:
            worker.send_signal(signal.SIGCONT)
        await asyncio.to_thread(processes.stop_all)

    assert publisher.returncode == -signal.SIGKILL
    assert len(only_in_nats) >= 300, f"only {len(only_in_nats)} job(s) were only in NATS at the kill"
    books = await account(url, cluster_id, ids)
    assert all(len(runs) == 1 for runs in books.runs.values()), "a job ran twice"
    versions = await fetch(url, "SELECT version FROM jm_jobs WHERE id = ANY($1::text[])", ids)
    assert all(r["version"] <= YES_PATH_MAX_VERSION for r in versions), "a job skipped the YES path"
    print(
        f"\npublisher killed after {len(ids)} calls returned, {len(only_in_nats)} job(s) then only"
        " in NATS; all ran once"
    )


@pytest.mark.parametrize("write", ["take", "start", "adopt"])
async def test_a_claim_answered_after_its_lease_starts_nothing(
    write: str, private_master: PrivatePostgres, tmp_path: Path
) -> None:
    """A worker's write that makes due jobs its own (`take`: from its bucket in the job table, started
    at once; `start`: of jobs it buffered ahead; `adopt`: of messages read from an agent, started at
    once) reaches the master, and its answer, held by the relay, comes after the lease it asked for
    ran out, when the fleet has recovered those jobs (a `lost` attempt each) and run them: the
    worker runs none of them, and runs new jobs afterwards.

    The relay holds every answer from the first request that is that write: a take names the bucket
    and the worker and comes once the jobs are due (the worker's intake sleeps until then); a start
    names the jobs but not the worker; an adopt names the jobs and the bucket. Until then the worker
    heartbeats as usual, so the write is made before anyone can think it dead, however loaded the
    machine (docs/decisions.md, 2026-12-05: a late answer never read).
    """
    url = private_master.url
    await create_runs_table(url)
    proxy = PausableProxy(private_master.port)
    await proxy.start()
    fleet, cut = _fleet_and_cut(private_master, proxy, f"late-{uuid.uuid4().hex[:8]}", tmp_path)
    agent: dict[str, str] = {}
    if write == "adopt":
        fleet.agents = cut.agents = {"agent": await _second_database(url, "agent")}
        agent = {"agent": "agent"}
    # take and adopt: nothing buffered, due jobs are made its own and started in one write; start:
    # buffered ahead, and started by a write of their own once due
    lead = 15.0 if write == "start" else 0.0

    async def victim_runs() -> list[asyncpg.Record]:
        query = "SELECT job_id FROM e2e_runs WHERE job_id = ANY($1::text[]) AND worker_id = $2"
        return await fetch(url, query, ids, victim)

    try:
        cut.worker("victim", [{**VICTIM, **agent, "bucket_buffer_lead_time": lead}])
        fleet.worker("brain", [{"name": "brain", "mode": "coordinator", **agent}])
        await wait_registered(url, fleet.cluster, 2)
        victim = await worker_id(url, fleet.cluster, "victim")
        plan = [{"name": "jobs", "handler": "e2e_app.work", "count": 20, "delay": 4.5}]
        ids = (await asyncio.to_thread(fleet.publish, plan))["jobs"]

        async def in_its_bucket() -> list[asyncpg.Record]:
            """The jobs in the master (assigned, or saved from the agent), all in the victim's bucket."""
            query = "SELECT scheduled_at FROM jm_jobs WHERE id = ANY($1::text[]) AND bucket_id LIKE $2"
            rows = await fetch(url, query, ids, f"{victim}.%")
            return rows if len(rows) == len(ids) else []

        due = min(r[0] for r in await wait_until(in_its_bucket, "the jobs to reach the victim's bucket"))
        named, worker, bucket = [i.encode() for i in ids], victim.encode(), f"{victim}.Medium.".encode()

        def the_write(request: bytes) -> bool:
            if write == "take":  # names the bucket and the worker; the ones before `due` took nothing
                return time.time() >= due and bucket in request and worker in request
            if not any(job_id in request for job_id in named):
                return False
            return bucket in request if write == "adopt" else worker not in request

        assert time.time() < due, "the jobs came due before the cut could be placed"
        held = proxy.hold_answers_after(the_write)
        await wait_until(lambda: _is_set(held), f"the {write} to reach the master")
        fleet.worker("rescuer", [{"name": "rescuer", "parallelism_factor": 4.0, **agent}])
        await wait_until(lambda: _all_succeeded(url, ids), "every job to succeed", 120)
        await _wait_buckets_adopted(url, victim)
        proxy.resume()

        async def answered() -> bool:
            return bool(log_lines(cut, "victim", LATE_ANSWER) or await victim_runs())

        await wait_until(answered, "the victim to read the late answer")
        assert not await victim_runs(), "the victim ran jobs whose lease ran out before it knew them"
        await _victim_runs_again(cut, fleet, victim)
        assert await asyncio.to_thread(fleet.stop_all) == [0, 0]
        assert await asyncio.to_thread(cut.stop_all) == [0]
    finally:
        await asyncio.to_thread(fleet.stop_all)
        await asyncio.to_thread(cut.stop_all)
        await proxy.close()

    books = await account(url, fleet.cluster, ids, faulty="victim")
    lost = [a for rows in books.attempts.values() for a in rows if a.outcome == "lost"]
    assert lost and all(a.worker_id == victim for a in lost), f"the late {write} claimed nothing"
    print(f"\nlate {write}: {len(lost)} job(s) made its own by a write answered late; none ran there")


async def _is_set(event: asyncio.Event) -> bool:
    return event.is_set()
