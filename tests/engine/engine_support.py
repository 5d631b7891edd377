"""Helpers shared by the engine tests (imported by name, so kept out of conftest.py)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from helpers import wait_until
from jobmaster import JobMaster
from jobmaster.db.mysql import connect_args

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


class Running:
    """A started app plus helpers to wait for outcomes."""

    def __init__(self, app: JobMaster) -> None:
        self.app = app
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> Running:
        self.task = asyncio.create_task(self.app.run(handle_signals=False))
        await self.app.wait_ready(timeout=60)  # a loaded machine: room to open and migrate
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


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    """`helpers.wait_until` at the engine tests' pace (their loops run in this process)."""
    await wait_until(check, "condition", timeout, every=0.02)


#: The database of the `fresh_url` fixture on the PostgreSQL and MySQL servers.
FRESH_DB = f"jobmaster_test_{os.getpid()}_fresh"


async def on_postgres(url: str, statement: str) -> None:
    """Run one statement on its own connection (CREATE DATABASE cannot run in a pool's session)."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def on_mysql(url: str, statement: str) -> None:
    import asyncmy

    conn = await asyncmy.connect(**connect_args(url))
    try:
        async with conn.cursor() as cursor:
            await cursor.execute(statement)
    finally:
        await conn.ensure_closed()


#: The script of `killed_holding_jobs`.
VICTIM = Path(__file__).with_name("victim_app.py")


async def killed_holding_jobs(spec: dict[str, Any]) -> list[str]:
    """Run `victim_app.py` with `spec` as a real process, wait until its buckets hold the jobs it
    scheduled, SIGKILL it, and return the ids of those jobs."""
    tests = str(VICTIM.parent.parent)  # for `helpers`, which engine_support imports
    victim = subprocess.Popen(
        [sys.executable, str(VICTIM), json.dumps(spec)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")])},
    )
    try:
        assert victim.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(victim.stdout.readline), 120)
        assert line, f"the victim exited with {victim.wait()} before its buckets held its jobs"
        ids: list[str] = json.loads(line)
    finally:
        victim.send_signal(signal.SIGKILL)
        code = victim.wait(30)
    assert code == -signal.SIGKILL, f"the victim exited with {code} before the kill"
    return ids
