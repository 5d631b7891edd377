"""A running cluster in the test's own event loop, on a real SQLite file or real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_support import FAST, FRESH_DB, Running, on_mysql, on_postgres

from jobmaster import JobMaster

AppFactory = Callable[..., JobMaster]


@pytest.fixture
def make_app(urls: dict[str, str], cluster_id: str) -> AppFactory:
    def factory(workers: list[dict[str, Any]] | None = None, **settings: Any) -> JobMaster:
        values = {**FAST, **settings}
        return JobMaster(
            cluster_id,
            urls["master"],
            workers=workers if workers is not None else [{"name": "w1", "parallelism_factor": 2}],
            **values,
        )

    return factory


@pytest.fixture
async def start() -> AsyncIterator[Callable[[JobMaster], Awaitable[Running]]]:
    started: list[Running] = []

    async def run(app: JobMaster) -> Running:
        running = await Running(app).start()
        started.append(running)
        return running

    yield run
    for running in started:
        await running.stop()


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A master database nothing has touched yet, next to the session's databases."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/fresh.db"
        return
    if request.param == "postgresql":
        fixture, run, create = "pg_urls", on_postgres, f"CREATE DATABASE {FRESH_DB}"
    else:  # as the session's databases are made (docs/mysql.md)
        fixture, run = "mysql_urls", on_mysql
        create = f"CREATE DATABASE {FRESH_DB} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
    session_db = request.getfixturevalue(fixture)["master"]
    asyncio.run(run(session_db, f"DROP DATABASE IF EXISTS {FRESH_DB}"))
    asyncio.run(run(session_db, create))
    yield f"{session_db.rsplit('/', 1)[0]}/{FRESH_DB}"
    asyncio.run(run(session_db, f"DROP DATABASE {FRESH_DB}"))
