"""Running the e2e app as real OS processes (imported by name, so kept out of conftest.py)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg

from helpers import wait_until
from jobmaster import JobMaster

HERE = Path(__file__).parent
#: The name of the agent on the shared NATS server (the `shared_nats` fixture drops its stream).
NATS_AGENT = "nats-1"
#: Leases long enough that a loaded 2-core machine never lets one lapse: a lapsed lease sends its job
#: back through the master, which is right but not the path a test of the agent counts.
RELAXED_LEASES = {"heartbeat_interval": 1.0, "job_lease": 15.0, "worker_timeout": 10.0}


class Processes:
    #: The app module every process of this set runs (`worker`, `publish PLAN`, `stream N`).
    app_script = HERE / "e2e_app.py"

    def __init__(self, master: str, cluster: str, logs: Path) -> None:
        self.master = master
        self.cluster = cluster
        self.logs = logs
        self.running: list[subprocess.Popen[bytes]] = []
        self.agents: dict[str, str] = {}
        self.settings: dict[str, Any] = {}

    def env(self, workers: list[dict[str, Any]], agents: dict[str, str] | None = None) -> dict[str, str]:
        return {
            **os.environ,
            "E2E_MASTER": self.master,
            "E2E_CLUSTER": self.cluster,
            "E2E_WORKERS": json.dumps(workers),
            "E2E_AGENTS": json.dumps(self.agents if agents is None else agents),
            "E2E_SETTINGS": json.dumps(self.settings),
            "PYTHONPATH": str(HERE),
        }

    def worker(self, name: str, workers: list[dict[str, Any]]) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the process
        proc = subprocess.Popen(
            [sys.executable, str(self.app_script), "worker"],
            env=self.env(workers),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.running.append(proc)
        return proc

    def publish(
        self,
        plan: list[dict[str, Any]],
        timeout: float = 120,
        agents: dict[str, str] | None = None,
        name: str = "plan",
        env: dict[str, str] | None = None,
    ) -> dict[str, list[str]]:
        """Run a pure publisher process; `agents={}` makes it one without agent (NO path only).

        `env` adds to its environment (`E2E_NEXT_WIRE_FORMAT=1`: see e2e_app)."""
        path = self.logs / f"{name}.json"
        path.write_text(json.dumps(plan))
        subprocess.run(
            [sys.executable, str(self.app_script), "publish", str(path)],
            env={**self.env([], agents), **(env or {})},
            check=True,
            timeout=timeout,
        )
        ids: dict[str, list[str]] = json.loads(Path(str(path) + ".ids").read_text())
        return ids

    def stream(self) -> subprocess.Popen[bytes]:
        """A publisher printing each job id as its schedule call returns."""
        return subprocess.Popen(
            [sys.executable, str(self.app_script), "stream", "100000"],
            env=self.env([]),
            stdout=subprocess.PIPE,
        )

    def stop_all(self, timeout: float = 30) -> list[int]:
        for proc in self.running:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = []
        for proc in self.running:
            try:
                codes.append(proc.wait(timeout))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(proc.wait())
        self.running.clear()
        return codes


async def wait_registered(master: str, cluster: str, workers: int, timeout: float = 60) -> None:
    """Until `workers` workers of the cluster are running: their processes migrated the master.

    A fixed sleep was not always long enough on a loaded machine, and a query of `jm_jobs` before
    the first migration fails.
    """
    deadline = time.monotonic() + timeout
    conn = await asyncpg.connect(master)
    try:
        while True:
            try:
                running = await conn.fetchval(
                    "SELECT count(*) FROM jm_workers WHERE cluster_id = $1 AND status = 1", cluster
                )
            except asyncpg.UndefinedTableError:
                running = 0
            if running >= workers:
                return
            assert time.monotonic() < deadline, f"{running} of {workers} workers registered"
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def wait_executors(
    master: str, cluster: str, executors: int, timeout: float = 60, name: str | None = None
) -> None:
    """Until `executors` workers of the cluster (named `name` if given) have active buckets: a
    worker registers before it creates its buckets, and a publisher that finds no bucket takes the
    NO path."""
    conn = await asyncpg.connect(master)
    try:

        async def enough() -> bool:
            try:
                with_buckets: int = await conn.fetchval(
                    "SELECT count(DISTINCT worker_id) FROM jm_buckets WHERE cluster_id = $1 AND status = 1"
                    " AND worker_id LIKE $2",
                    cluster,
                    "%" if name is None else f"{name}-%",
                )
            except asyncpg.UndefinedTableError:
                return False
            return with_buckets >= executors

        await wait_until(enough, f"{executors} workers with active buckets", timeout)
    finally:
        await conn.close()


async def create_runs_table(master: str) -> None:
    """Each handler run is recorded here by the handler itself (see e2e_app)."""
    conn = await asyncpg.connect(master)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS e2e_runs (job_id text, attempt int, worker_id text,"
            " lane text, priority text, due float8, started float8, at timestamptz DEFAULT now())"
        )
    finally:
        await conn.close()


async def status_counts(master: str, cluster: str) -> Counter[int]:
    """How many of the cluster's jobs are in each status, as the master has them."""
    conn = await asyncpg.connect(master)
    try:
        rows = await conn.fetch(
            "SELECT status, count(*) FROM jm_jobs WHERE cluster_id = $1 GROUP BY status", cluster
        )
    finally:
        await conn.close()
    return Counter({r[0]: r[1] for r in rows})


def claims(logs: Path, name: str) -> int:
    """How many jobs the coordinator of the worker process `name` claimed, as its log says."""
    lines = (logs / f"{name}.log").read_text(errors="replace").splitlines()
    return sum(int(line.split()[1]) for line in lines if line.startswith("claimed "))


#: Statuses of a job a worker holds: assigned to its bucket, buffered in its memory, or running.
HELD_STATUSES = [3, 4, 6]


async def held_by(master: str, cluster: str, worker_name: str) -> int:
    """How many jobs the master has owned by the worker of `worker_name` (in its buckets or memory):
    asked right before a kill, it shows whether the kill can matter."""
    conn = await asyncpg.connect(master)
    try:
        held: int = await conn.fetchval(
            "SELECT count(*) FROM jm_jobs WHERE cluster_id = $1 AND worker_id LIKE $2"
            " AND status = ANY($3::smallint[])",
            cluster,
            f"{worker_name}-%",
            HELD_STATUSES,
        )
    finally:
        await conn.close()
    return held


async def check_runs_against_attempts(master: str, cluster: str, ids: list[str], killed: list[str]) -> int:
    """Cross-check every handler run recorded in `e2e_runs` with the master's `attempts` and the
    attempts `job_attempts()` returns, for jobs that all succeeded; returns how many runs were lost.

    Each job's attempt rows are numbered 1..`attempts`; the last succeeded and every earlier one is
    `lost` on a worker of `killed`; each recorded run is one of those attempts, on the same worker,
    and no attempt ran twice. A lost attempt may have no recorded run (killed before the handler
    wrote it); the succeeded one always has.
    """
    conn = await asyncpg.connect(master)
    try:
        jobs = await conn.fetch("SELECT id, attempts, worker_id FROM jm_jobs WHERE id = ANY($1::text[])", ids)
        rows = await conn.fetch(
            "SELECT job_id, attempt, worker_id, outcome FROM jm_attempts WHERE job_id = ANY($1::text[])", ids
        )
        runs = await conn.fetch(
            "SELECT job_id, attempt, worker_id FROM e2e_runs WHERE job_id = ANY($1::text[])", ids
        )
    finally:
        await conn.close()
    # As `MasterStore.attempts` (behind `job_attempts()`) has them: the stored rows of the runs that
    # did not succeed, and the succeeded one read off the job row.
    attempts = {job["id"]: job["attempts"] for job in jobs}
    recorded: dict[str, dict[int, tuple[str, str]]] = {
        job["id"]: {job["attempts"]: (job["worker_id"], "succeeded")} for job in jobs
    }
    for row in rows:
        assert row["attempt"] not in recorded[row["job_id"]], f"a stored attempt is the succeeded one: {row}"
        recorded[row["job_id"]][row["attempt"]] = (row["worker_id"], row["outcome"])
    ran: dict[str, dict[int, str]] = {j: {} for j in ids}
    for run in runs:
        assert run["attempt"] not in ran[run["job_id"]], f"attempt ran twice: {run}"
        ran[run["job_id"]][run["attempt"]] = run["worker_id"]
    lost = 0
    for job_id in ids:
        mine = recorded[job_id]
        assert sorted(mine) == list(range(1, attempts[job_id] + 1)), (job_id, attempts[job_id], mine)
        for number, (worker, outcome) in mine.items():
            if number == attempts[job_id]:
                assert outcome == "succeeded" and ran[job_id].get(number) == worker, (job_id, mine)
            else:
                assert outcome == "lost", (job_id, mine)
                assert any(worker.startswith(f"{k}-") for k in killed), (job_id, mine, "not killed")
                lost += 1
        for number, worker in ran[job_id].items():
            assert mine.get(number, ("", ""))[0] == worker, (job_id, number, worker, mine)
    # and through the API itself, for every job that ran more than once
    app = JobMaster(cluster, master)
    async with app:
        for job_id in (j for j in ids if attempts[j] > 1):
            seen = [(a.attempt, a.worker_id, a.outcome) for a in await app.job_attempts(job_id)]
            assert seen == [(n, *recorded[job_id][n]) for n in sorted(recorded[job_id])], (job_id, seen)
    return lost
