"""Shared fixtures: every backend under test is a real server or a real file, never a mock."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from helpers import NATS_URL, PG_ADMIN_URL, opened_master, recreate_pg_databases
from jobmaster.agents.base import AgentTransport
from jobmaster.backends import make_agent
from jobmaster.master.base import MasterStore

#: pytester runs a user's test file in a real pytest process (the testing kit's plugin, tests/testing).
pytest_plugins = ["pytester"]

#: The bench CPU test's bulk phases: a few clock ticks on a fast host, and a few dozen.
BENCH_JOBS = (300, 3000)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--bench-jobs",
        type=int,
        action="append",
        default=[],
        metavar="N",
        help="also run the bench CPU test with a bulk phase of N jobs (repeatable), e.g. 300000",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "bench_jobs" in metafunc.fixturenames:
        sizes = [*BENCH_JOBS, *metafunc.config.getoption("--bench-jobs")]
        # the test gives the bench 120 s + 2 ms a job: so does its timeout, on top of the default
        params = [pytest.param(n, marks=pytest.mark.timeout(300 + n / 500)) for n in sizes]
        metafunc.parametrize("bench_jobs", params, ids=[f"{n}-jobs" for n in sizes])


PG_BASE = PG_ADMIN_URL.rsplit("/", 1)[0]
# Per run, so two test runs on one server (a developer's and CI's) never drop each other's data.
PG_MASTER_DB = f"jobmaster_test_{os.getpid()}"
PG_AGENT_DB = f"jobmaster_test_{os.getpid()}_transport"


@pytest.fixture(scope="session")
def pg_urls() -> Iterator[dict[str, str]]:
    """A fresh master database and a fresh transport database for the whole run."""
    asyncio.run(recreate_pg_databases(PG_MASTER_DB, PG_AGENT_DB))
    yield {"master": f"{PG_BASE}/{PG_MASTER_DB}", "agent": f"{PG_BASE}/{PG_AGENT_DB}"}
    asyncio.run(recreate_pg_databases(PG_MASTER_DB, PG_AGENT_DB, create=False))


MYSQL_ADMIN_URL = os.environ.get("JMTEST_MYSQL_ADMIN", "mysql://root@127.0.0.1:3306/test")
MYSQL_BASE = MYSQL_ADMIN_URL.rsplit("/", 1)[0]
MYSQL_MASTER_DB = f"jobmaster_test_{os.getpid()}"
MYSQL_AGENT_DB = f"jobmaster_test_{os.getpid()}_transport"


async def _recreate_mysql(*names: str, create: bool = True) -> None:
    import asyncmy

    from jobmaster.db.mysql import connect_args

    args = connect_args(MYSQL_ADMIN_URL)
    conn = await asyncmy.connect(
        host=args["host"], port=args["port"], user=args["user"], password=args["password"], autocommit=True
    )
    try:
        async with conn.cursor() as cursor:
            for name in names:
                await cursor.execute(
                    "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (name,)
                )
                if await cursor.fetchall():
                    await cursor.execute(f"DROP DATABASE `{name}`")
                if create:
                    await cursor.execute(
                        f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                    )
    finally:
        await conn.ensure_closed()


@pytest.fixture(scope="session")
def mysql_urls() -> Iterator[dict[str, str]]:
    """A fresh MySQL/MariaDB master database and transport database for the whole run."""
    asyncio.run(_recreate_mysql(MYSQL_MASTER_DB, MYSQL_AGENT_DB))
    yield {"master": f"{MYSQL_BASE}/{MYSQL_MASTER_DB}", "agent": f"{MYSQL_BASE}/{MYSQL_AGENT_DB}"}
    asyncio.run(_recreate_mysql(MYSQL_MASTER_DB, MYSQL_AGENT_DB, create=False))


BACKENDS = ["sqlite", "postgresql", "mysql"]
AGENT_BACKENDS = ["sqlite", "postgresql", "nats", "mysql"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def cluster_id() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def urls(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    if backend == "sqlite":
        return {
            "master": f"sqlite:///{tmp_path}/master.db",
            "agent": f"sqlite:///{tmp_path}/agent.db",
        }
    if backend == "mysql":
        my: dict[str, str] = request.getfixturevalue("mysql_urls")
        return my
    pg: dict[str, str] = request.getfixturevalue("pg_urls")
    return pg


@pytest.fixture(params=["sqlite", "postgresql"])
def master_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The master of a test that runs a real app and its worker processes on the two masters they
    are most used with: a SQLite file of the test's own, or the PostgreSQL test database (the test
    picks a fresh cluster id)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/master.db"
    url: str = request.getfixturevalue("pg_urls")["master"]
    return url


@pytest.fixture
async def master(urls: dict[str, str], cluster_id: str) -> AsyncIterator[MasterStore]:
    async with opened_master(urls["master"], cluster_id) as store:
        yield store


@pytest.fixture(params=AGENT_BACKENDS)
def agent_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def agent_url(agent_backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The agent under test; on NATS the unique cluster id gives each test its own stream."""
    if agent_backend == "sqlite":
        return f"sqlite:///{tmp_path}/agent.db"
    if agent_backend == "nats":
        return NATS_URL
    if agent_backend == "mysql":
        return str(request.getfixturevalue("mysql_urls")["agent"])
    pg: dict[str, str] = request.getfixturevalue("pg_urls")
    return pg["agent"]


@pytest.fixture
async def agent(agent_url: str, cluster_id: str) -> AsyncIterator[AgentTransport]:
    transport = make_agent(agent_url, cluster_id, "agent-1")
    await transport.open()
    await transport.migrate()
    try:
        yield transport
    finally:
        await transport.drop()  # NATS: remove the test's stream from the shared server
        await transport.close()
