"""A running cluster in the test's own event loop, on a real SQLite file or real PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from jobmaster import JobMaster

#: Fast settings so retries, heartbeats and lease expiry take milliseconds, not minutes.
FAST = {
    "heartbeat_interval": 0.3,
    "job_lease": 2.0,
    "worker_timeout": 1.5,
    "retry_backoff_base": 0.05,
    "retry_backoff_cap": 0.2,
    "idle_poll_interval": 0.02,
    "shutdown_grace": 5.0,
}

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


class Running:
    """A started app plus helpers to wait for outcomes."""

    def __init__(self, app: JobMaster) -> None:
        self.app = app
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> Running:
        self.task = asyncio.create_task(self.app.run(handle_signals=False))
        await self.app.wait_ready()
        return self

    async def stop(self) -> None:
        self.app.stop()
        if self.task is not None:
            await asyncio.wait_for(self.task, 30)
            self.task = None

    async def wait_status(self, job_id: str, *statuses: str, timeout: float = 15.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            job = await self.app.get_job(job_id)
            if job.status.name in statuses:
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} is {job.status.name}, expected {statuses}")
            await asyncio.sleep(0.02)


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


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)
