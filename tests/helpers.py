"""Small builders shared by tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from jobmaster.agents.base import AgentTransport
from jobmaster.backends import make_agent, make_master
from jobmaster.cluster.model import Bucket, WorkerMode, WorkerRecord
from jobmaster.jobs.model import Job, JobStatus, Priority, new_job_id
from jobmaster.master.base import MasterStore

T = TypeVar("T")

#: The shared NATS server (JetStream on) that tests use; tests that kill a server start their own.
NATS_URL = os.environ.get("JMTEST_NATS", "nats://127.0.0.1:4222")
PG_ADMIN_URL = os.environ.get("JMTEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")


async def recreate_pg_databases(*names: str, create: bool = True) -> None:
    """Drop the PostgreSQL databases `names` (connections and all), then create them afresh unless
    `create` is False."""
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        for name in names:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if create:
                await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def make_job(
    due_in: float = 0.0,
    *,
    priority: Priority = Priority.Medium,
    lane: str = "Default",
    status: JobStatus = JobStatus.HeldOnMaster,
    **fields: Any,
) -> Job:
    now = time.time()
    return Job(
        id=new_job_id(),
        definition_id=fields.pop("definition_id", "tests.noop"),
        scheduled_at=now + due_in,
        created_at=now,
        priority=priority,
        lane=lane,
        status=status,
        **fields,
    )


@contextlib.asynccontextmanager
async def agent_with_bucket(url: str, name: str) -> AsyncIterator[tuple[AgentTransport, str]]:
    """An open, migrated agent of a fresh cluster, and a new bucket in it."""
    agent = make_agent(url, f"{name}-{uuid.uuid4().hex[:8]}", name)
    await agent.open()
    try:
        await agent.migrate()
        bucket = f"bucket-{uuid.uuid4().hex[:10]}"
        await agent.create_bucket(bucket)
        yield agent, bucket
    finally:
        await agent.close()


@contextlib.asynccontextmanager
async def opened_master(url: str, cluster_id: str) -> AsyncIterator[MasterStore]:
    """An open, migrated master of `cluster_id`, closed on the way out."""
    store = make_master(url, cluster_id)
    await store.open()
    try:
        await store.migrate()
        yield store
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def master_with_bucket(url: str, name: str) -> AsyncIterator[tuple[MasterStore, Bucket]]:
    """An open, migrated master of a fresh cluster, and a standalone Medium bucket of worker `w1`."""
    async with opened_master(url, f"{name}-{uuid.uuid4().hex[:8]}") as master:
        bucket_id = f"{name}-{uuid.uuid4().hex[:8]}"
        bucket = Bucket(bucket_id, "standalone", "Default", Priority.Medium, "w1", created_at=time.time())
        await master.add_buckets([bucket])
        yield master, bucket


def make_worker(worker_id: str) -> WorkerRecord:
    """A running full worker's row, as registering it writes."""
    now = time.time()
    return WorkerRecord(
        worker_id, f"name-{worker_id}", WorkerMode.full, "Default", "standalone", "host", 1, now, now
    )


async def drop_agent(url: str, cluster_id: str, name: str) -> None:
    """Remove what an agent holds for a test's cluster (its stream, on the shared NATS server)."""
    agent = make_agent(url, cluster_id, name)
    await agent.open()
    try:
        await agent.drop()
    finally:
        await agent.close()


def app_client(directory: Path, code: str) -> str:
    """Run `code` against the `jm` of `directory/app.py` in a separate publisher process, as a user
    would; returns what it prints."""
    script = f"import app\nfrom app import jm\n{code}\njm.sync.close()\n"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=directory, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def wait_job_status(directory: Path, job_id: str, *statuses: str, timeout: float = 60) -> None:
    """Poll the job through `app_client` until its status is one of `statuses`; a job that went
    straight into a bucket is not in the master until its bucket's owner writes it there."""
    deadline = time.monotonic() + timeout
    read = (
        "from jobmaster import JobNotFoundError\n"
        f"try:\n    print(jm.sync.get_job({job_id!r}).status.name)\n"
        "except JobNotFoundError:\n    print('not in the master yet')"
    )
    while app_client(directory, read) not in statuses:
        assert time.monotonic() < deadline, f"job {job_id} never reached {statuses}"
        time.sleep(0.2)


#: `jobmaster worker` for the `jm` of `app.py` in the working directory.
WORKER = (sys.executable, "-m", "jobmaster.cli.main", "worker", "--app", "app:jm")


def run_worker(
    directory: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `jobmaster worker` for `directory/app.py` to its end (one that must fail to start)."""
    return subprocess.run(
        [*WORKER, *args],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
        env=None if env is None else {**os.environ, **env},
    )


def fails_at_once(directory: Path, *args: str, code: int = 1, env: dict[str, str] | None = None) -> str:
    """Run a worker with a long start timeout that must stop at once with exit status `code`,
    without waiting; returns its stderr."""
    began = time.monotonic()
    done = run_worker(directory, "--start-timeout", "10m", *args, env=env)
    assert done.returncode == code, done.stderr
    assert time.monotonic() - began < 60, "it waited instead of stopping"
    assert "waiting for" not in done.stderr, done.stderr
    return done.stderr


def worker_through_outage(directory: Path, job_id: str, bring_up: Callable[[], None]) -> str:
    """Start `jobmaster worker` for `directory/app.py` while its server is down, `bring_up` the
    server 5 s later, and wait for `job_id` to succeed; returns the worker's log."""
    worker = subprocess.Popen(
        WORKER, cwd=directory, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        time.sleep(5)
        assert worker.poll() is None, "the worker gave up instead of waiting"
        bring_up()
        wait_job_status(directory, job_id, "Succeeded")
    finally:
        worker.send_signal(signal.SIGTERM)
        _, logs = worker.communicate(timeout=60)
    assert worker.returncode == 0, logs
    return logs


async def wait_until(
    check: Callable[[], Awaitable[T]], what: str, timeout: float = 60, every: float = 0.05
) -> T:
    """Await `check()` until it returns something truthy, and return that; fail naming `what` once
    `timeout` seconds have passed. Tests wait for the condition they need, never a fixed time: the
    machine is loaded, so the deadline is generous and the wait usually ends far sooner."""
    deadline = time.monotonic() + timeout
    while not (result := await check()):
        assert time.monotonic() < deadline, f"{what}: not reached within {timeout:.0f}s (last: {result!r})"
        await asyncio.sleep(every)
    return result


def wait_for(check: Callable[[], object], what: str, timeout: float = 60, every: float = 0.05) -> object:
    """`wait_until` for synchronous code."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"{what}: not reached within {timeout:.0f}s"
        time.sleep(every)
    return result
