"""The wire format across real processes: a newer publisher during a rolling update, and garbage.

- a publisher of the next version (format FORMAT + 1, a field this version does not know) writes
  while every executor of this version is replaced: every job runs, once;
- bytes that are no job, pushed into a running worker's bucket, end as a Failed job that
  `jobmaster jobs list` and `jobmaster jobs show` display, and leave the agent.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from e2e_support import Processes, create_runs_table, status_counts, wait_executors, wait_registered
from test_durability import _run_counts, _wait_succeeded

from helpers import NATS_URL, drop_agent, wait_until
from jobmaster.agents.base import AgentMessage
from jobmaster.backends import make_agent, make_master
from jobmaster.jobs.model import new_job_id
from jobmaster.runtime.poison import UNDECODABLE

SETTINGS = {"heartbeat_interval": 0.3, "worker_timeout": 1.5, "job_lease": 2}
FAILED = 7


@pytest.fixture(params=["postgresql", "nats"])
def agent_url(request: pytest.FixtureRequest, pg_urls: dict[str, str], cluster_id: str) -> Iterator[str]:
    """The agent of the test's processes; its NATS stream is deleted afterwards (ask for this
    fixture before `processes`, so that the workers stop before the stream goes)."""
    if request.param == "postgresql":
        yield pg_urls["agent"]
        return
    yield NATS_URL
    asyncio.run(drop_agent(NATS_URL, cluster_id, "agent"))


async def test_a_rolling_update_while_a_publisher_writes_the_next_format(
    agent_url: str, processes: Processes, pg_urls: dict[str, str]
) -> None:
    await create_runs_table(pg_urls["master"])
    processes.agents = {"agent": agent_url}
    processes.settings = SETTINGS
    processes.worker("coordinator", [{"name": "brain", "agent": "agent", "mode": "coordinator"}])

    def executor(generation: int) -> subprocess.Popen[bytes]:
        worker = {
            "name": f"exec-{generation}",
            "agent": "agent",
            "mode": "execution",
            "parallelism_factor": 4.0,
        }
        return processes.worker(f"exec-{generation}", [worker])

    old = [executor(g) for g in range(2)]
    await wait_registered(pg_urls["master"], processes.cluster, 3)
    plan = [{"name": "jobs", "handler": "e2e_app.busy", "count": 3000}]
    newer = asyncio.create_task(
        asyncio.to_thread(processes.publish, plan, env={"E2E_NEXT_WIRE_FORMAT": "1"}, name="next")
    )

    async def publishing() -> bool:
        return (await status_counts(pg_urls["master"], processes.cluster))[5] > 0

    await wait_until(publishing, "the publisher's first jobs ran")
    for generation, proc in enumerate(old, start=2):
        executor(generation)  # the new pod first, then the old one is told to stop
        await wait_executors(pg_urls["master"], processes.cluster, 1, name=f"exec-{generation}")
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0
    ids = (await newer)["jobs"]
    await _wait_succeeded(pg_urls["master"], ids, 120)
    runs = await _run_counts(pg_urls["master"], ids)
    assert set(runs) == set(ids) and set(runs.values()) == {1}
    assert (await status_counts(pg_urls["master"], processes.cluster))[FAILED] == 0


def _cli(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "jobmaster.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_garbage_pushed_while_a_worker_runs_is_shown_by_jobmaster_jobs(
    agent_url: str, processes: Processes, pg_urls: dict[str, str]
) -> None:
    await create_runs_table(pg_urls["master"])
    processes.agents = {"agent": agent_url}
    processes.settings = SETTINGS
    processes.worker("worker", [{"name": "w", "agent": "agent"}])
    await wait_executors(pg_urls["master"], processes.cluster, 1)  # its buckets, read below
    master = make_master(pg_urls["master"], processes.cluster)
    agent = make_agent(agent_url, processes.cluster, "agent")
    await master.open()
    await agent.open()
    try:
        bucket = (await master.list_buckets())[0].id
        garbage = {new_job_id(): b"\xff\x00 not a job", new_job_id(): b'{"id": "a dict"}'}
        await agent.push(bucket, [AgentMessage(i, time.time(), 0, raw) for i, raw in garbage.items()])
        deadline = time.monotonic() + 30
        while (await status_counts(pg_urls["master"], processes.cluster))[FAILED] < len(garbage):
            assert time.monotonic() < deadline, "the garbage was not kept in the master"
            await asyncio.sleep(0.1)
        assert await agent.count(bucket) == 0
    finally:
        await agent.close()
        await master.close()
    where = ("--master", pg_urls["master"], "--cluster", processes.cluster)
    listed = _cli("jobs", "list", *where, "--handler", UNDECODABLE, "--status", "Failed")
    assert all(job_id in listed for job_id in garbage)
    for job_id in garbage:
        shown = _cli("jobs", "show", *where, job_id)
        assert "jobmaster.UndecodableMessage" in shown and bucket in shown
