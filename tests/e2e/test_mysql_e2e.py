"""MySQL/MariaDB as master and as agent, with real processes; and the server version check.

Every handler run is recorded by the handler itself (`mysql_app`) into a MariaDB table, so the tests
count real executions, not the engine's own bookkeeping.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncmy
import asyncpg
import pytest
from e2e_support import HERE, Processes, wait_executors

from helpers import opened_master, wait_until
from jobmaster import Priority
from jobmaster.backends import make_agent
from jobmaster.db.mysql import check_server_version, connect_args, parse_server_version
from jobmaster.errors import ConfigError, StoreError

APP = HERE / "mysql_app.py"
RUNS_TABLE = """CREATE TABLE IF NOT EXISTS e2e_mysql_runs (
    cluster VARCHAR(191) NOT NULL, job_id VARCHAR(64) NOT NULL, attempt INT NOT NULL,
    worker_id VARCHAR(191) NOT NULL, lane VARCHAR(64) NOT NULL, priority VARCHAR(16) NOT NULL,
    started DOUBLE NOT NULL, INDEX (cluster, job_id)
) ENGINE=InnoDB"""

ALL_PRIORITIES = {p.name: 1 for p in Priority}


class MysqlProcesses(Processes):
    """`Processes` running `mysql_app` instead of `e2e_app`, recording runs into E2E_RUNS."""

    app_script = APP

    def __init__(self, master: str, runs: str, cluster: str, logs: Path) -> None:
        super().__init__(master, cluster, logs)
        self.runs = runs

    def env(self, workers: list[dict[str, Any]], agents: dict[str, str] | None = None) -> dict[str, str]:
        return {**super().env(workers, agents), "E2E_RUNS": self.runs}


async def _query(url: str, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
    a = connect_args(url)
    conn = await asyncmy.connect(
        host=a["host"], port=a["port"], user=a["user"], password=a["password"], database=a["database"]
    )
    try:
        async with conn.cursor() as cursor:
            await cursor.execute(sql, args)
            rows = list(await cursor.fetchall())
        await conn.commit()
        return rows
    finally:
        await conn.ensure_closed()


async def _create_runs_table(url: str) -> None:
    await _query(url, RUNS_TABLE)


async def _runs(url: str, cluster: str) -> dict[str, list[tuple[Any, ...]]]:
    """job id -> its recorded runs as (attempt, worker_id, lane, priority)."""
    rows = await _query(
        url,
        "SELECT job_id, attempt, worker_id, lane, priority FROM e2e_mysql_runs WHERE cluster = %s",
        (cluster,),
    )
    runs: dict[str, list[tuple[Any, ...]]] = {}
    for job_id, *rest in rows:
        runs.setdefault(job_id, []).append(tuple(rest))
    return runs


@pytest.fixture
def mysql_processes(mysql_urls: dict[str, str], cluster_id: str, tmp_path: Path) -> Iterator[MysqlProcesses]:
    procs = MysqlProcesses(mysql_urls["master"], mysql_urls["master"], cluster_id, tmp_path)
    yield procs
    procs.stop_all()


async def _wait_executors(master: str, cluster: str, executors: int) -> None:
    """`e2e_support.wait_executors` for a MariaDB master."""

    async def enough() -> bool:
        try:
            rows = await _query(
                master,
                "SELECT COUNT(DISTINCT worker_id) FROM jm_buckets WHERE cluster_id = %s AND status = 1",
                (cluster,),
            )
        except asyncmy.errors.ProgrammingError:  # no table before the first worker migrated
            return False
        return int(rows[0][0]) >= executors

    await wait_until(enough, f"{executors} workers with active buckets")


@pytest.mark.timeout(600)
async def test_mariadb_standalone_publisher_and_two_workers(
    mysql_processes: MysqlProcesses, mysql_urls: dict[str, str]
) -> None:
    """MariaDB is master and (standalone) agent; 5,000 jobs over two worker processes, each once."""
    master = mysql_urls["master"]
    await _create_runs_table(master)
    for name in ("proc-a", "proc-b"):
        mysql_processes.worker(name, [{"name": name, "buckets": ALL_PRIORITIES, "parallelism_factor": 4}])
    await _wait_executors(master, mysql_processes.cluster, 2)  # the YES path from the first job
    plan = [
        {"name": p.name, "handler": "mysql_app.work", "count": 1000, "priority": p.name} for p in Priority
    ]
    began = time.monotonic()
    ids = mysql_processes.publish(plan)
    every = [j for group in ids.values() for j in group]
    assert len(every) == len(set(every)) == 5000

    cluster = mysql_processes.cluster
    while True:
        counts = dict(
            await _query(
                master,
                "SELECT status, COUNT(*) FROM jm_jobs WHERE cluster_id = %s GROUP BY status",
                (cluster,),
            )
        )
        if counts.get(5, 0) == 5000:
            break
        assert time.monotonic() - began < 180, counts
        await asyncio.sleep(0.2)
    took = time.monotonic() - began
    assert mysql_processes.stop_all() == [0, 0]

    runs = await _runs(master, cluster)
    assert set(runs) == set(every)
    assert all(len(r) == 1 for r in runs.values()), "a job ran twice"
    workers = Counter(r[0][1].split("-")[0] + "-" + r[0][1].split("-")[1] for r in runs.values())
    assert set(workers) == {"proc-a", "proc-b"}, workers  # both processes took a share
    for job_id in ids["Critical"]:
        assert runs[job_id][0][3] == "Critical"
    print(f"\n5000 jobs, MariaDB standalone, 2 worker processes, {took:.1f}s; per process {dict(workers)}")


@pytest.mark.timeout(600)
async def test_mixed_cluster_postgres_master_with_mariadb_and_postgres_agents(
    pg_urls: dict[str, str], mysql_urls: dict[str, str], cluster_id: str, tmp_path: Path
) -> None:
    """PostgreSQL master; a MariaDB agent for the LongRun lane, a PostgreSQL agent for Default."""
    runs_db = mysql_urls["master"]
    await _create_runs_table(runs_db)
    procs = MysqlProcesses(pg_urls["master"], runs_db, cluster_id, tmp_path)
    procs.agents = {"my-agent": mysql_urls["agent"], "pg-agent": pg_urls["agent"]}
    try:
        procs.worker(
            "long",
            [
                {
                    "name": "longrun",
                    "agent": "my-agent",
                    "lane": "LongRun",
                    "buckets": {"Medium": 2, "VeryLow": 0, "Low": 0, "High": 0, "Critical": 0},
                    "parallelism_factor": 8,
                }
            ],
        )
        procs.worker(
            "default",
            [{"name": "general", "agent": "pg-agent", "buckets": ALL_PRIORITIES, "parallelism_factor": 4}],
        )
        await wait_executors(pg_urls["master"], cluster_id, 2)  # both agents' buckets, asserted below
        plan = [{"name": "long", "handler": "mysql_app.work", "count": 3000, "lane": "LongRun"}]
        plan += [
            {"name": p.name, "handler": "mysql_app.work", "count": 1400, "priority": p.name} for p in Priority
        ]
        began = time.monotonic()
        ids = procs.publish(plan)
        every = [j for group in ids.values() for j in group]
        assert len(every) == len(set(every)) == 10_000

        conn = await asyncpg.connect(pg_urls["master"])
        try:
            placed = await conn.fetch(
                "SELECT DISTINCT agent, lane FROM jm_buckets WHERE cluster_id = $1", cluster_id
            )
            assert {(r[0], r[1]) for r in placed} == {("my-agent", "LongRun"), ("pg-agent", "Default")}
            while True:
                done = await conn.fetchval(
                    "SELECT count(*) FROM jm_jobs WHERE cluster_id = $1 AND status = 5", cluster_id
                )
                if done == 10_000:
                    break
                assert time.monotonic() - began < 180, done
                await asyncio.sleep(0.2)
        finally:
            await conn.close()
        took = time.monotonic() - began
        assert procs.stop_all() == [0, 0]
    finally:
        procs.stop_all()

    runs = await _runs(runs_db, cluster_id)
    assert set(runs) == set(every)
    assert all(len(r) == 1 for r in runs.values()), "a job ran twice"
    long_ids = set(ids["long"])
    for job_id, [(_, worker, lane, _)] in runs.items():
        if job_id in long_ids:
            assert lane == "LongRun" and worker.startswith("longrun-"), (job_id, worker, lane)
        else:
            assert lane == "Default" and worker.startswith("general-"), (job_id, worker, lane)
    print(f"\n10000 jobs, PostgreSQL master + MariaDB and PostgreSQL agents, {took:.1f}s")


# ---- the server version check (pure logic) ------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "flavour", "numbers"),
    [
        ("10.11.19-MariaDB-0+deb12u1", "MariaDB", (10, 11, 19)),
        ("5.5.5-10.6.12-MariaDB-log", "MariaDB", (10, 6, 12)),
        ("11.4.2-MariaDB", "MariaDB", (11, 4, 2)),
        ("8.0.36", "MySQL", (8, 0, 36)),
        ("8.4.0-commercial", "MySQL", (8, 4, 0)),
        ("5.7.44-log", "MySQL", (5, 7, 44)),
    ],
)
def test_server_versions_are_read(version: str, flavour: str, numbers: tuple[int, ...]) -> None:
    assert parse_server_version(version) == (flavour, numbers)


@pytest.mark.parametrize(
    "version", ["10.6.0-MariaDB", "10.11.19-MariaDB-0+deb12u1", "11.4.2-MariaDB", "8.0.1", "9.1.0"]
)
def test_servers_with_skip_locked_are_accepted(version: str) -> None:
    check_server_version(version)


@pytest.mark.parametrize(
    ("version", "minimum"),
    [
        ("10.5.23-MariaDB", "MariaDB 10.6"),
        ("5.5.5-10.4.32-MariaDB", "MariaDB 10.6"),
        ("5.7.44-log", "MySQL 8.0"),
        ("5.6.51", "MySQL 8.0"),
    ],
)
def test_servers_without_skip_locked_are_refused_by_name(version: str, minimum: str) -> None:
    with pytest.raises(StoreError) as refused:
        check_server_version(version)
    assert version in str(refused.value) and minimum in str(refused.value)


def test_unreadable_version_is_refused() -> None:
    with pytest.raises(StoreError):
        check_server_version("not a version")


def test_urls_of_both_schemes_and_their_options() -> None:
    args = connect_args("mariadb://app:p%40ss@db.example:3307/jobs?connect_timeout=5")
    assert (args["host"], args["port"], args["user"], args["password"], args["database"]) == (
        "db.example",
        3307,
        "app",
        "p@ss",
        "jobs",
    )
    assert args["connect_timeout"] == 5
    assert connect_args("mysql://root@127.0.0.1/x")["port"] == 3306
    with pytest.raises(ConfigError):
        connect_args("mysql://root@127.0.0.1/")
    with pytest.raises(ConfigError):
        connect_args("mysql://root@127.0.0.1/x?bogus=1")


# ---- against the real server ------------------------------------------------------------------


@pytest.fixture
async def mysql_master(mysql_urls: dict[str, str]) -> AsyncIterator[Any]:
    async with opened_master(mysql_urls["master"], f"test-{uuid.uuid4().hex[:12]}") as store:
        yield store


async def test_the_real_server_passes_the_check_and_a_master_and_agent_share_one_pool(
    mysql_urls: dict[str, str], mysql_master: Any
) -> None:
    from jobmaster.agents.mysql import MysqlAgent
    from jobmaster.db.mysql import MysqlDatabase

    db = mysql_master.db
    assert isinstance(db, MysqlDatabase)
    check_server_version(db.server_version)
    agent = make_agent(mysql_urls["master"], mysql_master.cluster_id, "standalone")
    assert isinstance(agent, MysqlAgent)
    await agent.open()
    try:
        await agent.migrate()
        assert agent.db is db  # standalone: the master's database, one pool
    finally:
        await agent.close()
    assert mysql_master.supports_notify is False


async def test_insert_joins_the_callers_transaction(mysql_urls: dict[str, str], mysql_master: Any) -> None:
    """With `connection=`, a job exists only if the caller's own transaction commits."""
    from helpers import make_job

    a = connect_args(mysql_urls["master"])
    conn = await asyncmy.connect(
        host=a["host"], port=a["port"], user=a["user"], password=a["password"], database=a["database"]
    )
    try:
        rolled_back, committed = make_job(), make_job()
        await conn.begin()
        assert await mysql_master.insert_jobs([rolled_back], connection=conn) == [rolled_back.id]
        await conn.rollback()
        await conn.begin()
        assert await mysql_master.insert_jobs([committed], connection=conn) == [committed.id]
        assert await mysql_master.get_job(committed.id) is None  # not visible before the commit
        await conn.commit()
    finally:
        await conn.ensure_closed()
    assert await mysql_master.get_job(rolled_back.id) is None
    stored = await mysql_master.get_job(committed.id)
    assert stored is not None and stored.version == 1
