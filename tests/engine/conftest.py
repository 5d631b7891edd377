"""A running cluster in the test's own event loop, on a real SQLite file or real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from engine_support import FAST, Running

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
