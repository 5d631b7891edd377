"""Agent messages of other formats run, and undecodable ones are kept in the master, on every agent.

The master is a SQLite file; the agent is each agent backend in turn. Messages are pushed straight
into the running worker's bucket, as a publisher of another version, or something else, would.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from engine_support import FAST, Running, eventually

from helpers import NATS_URL, drop_agent, make_job
from jobmaster import JobMaster
from jobmaster.agents.base import AgentMessage, AgentTransport
from jobmaster.errors import StoreError
from jobmaster.jobs import codec
from jobmaster.jobs.model import Job, JobStatus, new_job_id
from jobmaster.runtime.poison import UNDECODABLE

HANDLER = "tests.wire"

Pusher = Callable[[list[AgentMessage]], Awaitable[None]]


@pytest.fixture
async def cluster(
    agent_url: str, cluster_id: str, tmp_path: Path
) -> AsyncIterator[tuple[Running, list[int], AgentTransport, str]]:
    """A running worker on the agent under test: (running app, what the handler saw, agent, bucket)."""
    seen: list[int] = []
    app = JobMaster(
        cluster_id,
        f"sqlite:///{tmp_path}/master.db",
        agents={"a": agent_url},
        workers=[{"name": "w1", "agent": "a"}],
        **FAST,
    )

    @app.handler(name=HANDLER)
    async def record(n: int) -> None:
        seen.append(n)

    running = await Running(app).start()
    try:
        [bucket] = [b.id for b in await app.runtime.master.list_buckets() if b.priority.name == "Medium"]
        yield running, seen, app.runtime.agents["a"], bucket
    finally:
        await running.stop()
        if agent_url == NATS_URL:
            await drop_agent(NATS_URL, cluster_id, "a")


def _job(n: int) -> Job:
    return make_job(definition_id=HANDLER, data={"n": n}, status=JobStatus.SavePending)


def _fields(job: Job) -> list[Any]:
    return list(orjson.loads(codec.job_to_bytes(job))[1:])


def _message(job_id: str, payload: bytes) -> AgentMessage:
    return AgentMessage(job_id, 0.0, 0, payload)


async def _kept(running: Running, job_id: str) -> Job:
    """The Failed job keeping an undecodable message, once the bucket's owner has stored it."""
    master = running.app.runtime.master

    async def stored() -> bool:
        return await master.get_job(job_id) is not None

    await eventually(stored)
    job: Job = await running.wait_status(job_id, "Failed")
    return job


async def test_messages_of_the_old_and_of_a_newer_format_run(cluster) -> None:
    running, seen, agent, bucket = cluster
    current, old, newer = _job(0), _job(1), _job(2)
    await agent.push(
        bucket,
        [
            _message(current.id, codec.job_to_bytes(current)),
            _message(old.id, orjson.dumps(_fields(old))),  # format 1: left in an agent by an upgrade
            _message(newer.id, orjson.dumps([codec.FORMAT + 1, *_fields(newer), {"added": "later"}])),
        ],
    )
    for job in (current, old, newer):
        await running.wait_status(job.id, "Succeeded")
    assert sorted(seen) == [0, 1, 2]


async def test_garbage_is_kept_as_a_failed_job_and_leaves_the_agent(cluster) -> None:
    running, seen, agent, bucket = cluster
    app: JobMaster = running.app
    good = _job(7)
    garbage = {
        new_job_id(): b"\xff\x00 not a job",
        new_job_id(): orjson.dumps([codec.FORMAT + 1, "too short"]),
    }
    await agent.push(
        bucket,
        [*(_message(i, raw) for i, raw in garbage.items()), _message(good.id, codec.job_to_bytes(good))],
    )
    await running.wait_status(good.id, "Succeeded")
    for job_id, raw in garbage.items():
        kept = await _kept(running, job_id)
        assert kept.definition_id == UNDECODABLE
        assert base64.b64decode(kept.data["payload_base64"]) == raw
        assert "'a'" in kept.last_error["message"] and bucket in kept.last_error["message"]
    listed = await app.list_jobs(handler=UNDECODABLE, status="Failed")
    assert {j.id for j in listed} == set(garbage)
    assert seen == [7]

    async def emptied() -> bool:
        return await agent.count(bucket) == 0

    await eventually(emptied)


@pytest.mark.parametrize("agent_backend", ["sqlite", "nats"])
async def test_an_unreachable_master_leaves_garbage_in_the_agent(cluster, monkeypatch) -> None:
    running, _, agent, bucket = cluster
    master = running.app.runtime.master
    insert = master.insert_jobs
    tries = 0

    async def down(*args: Any, **kwargs: Any) -> list[str]:
        nonlocal tries
        tries += 1
        raise StoreError("master unreachable (test)")

    monkeypatch.setattr(master, "insert_jobs", down)
    job_id = new_job_id()
    await agent.push(bucket, [_message(job_id, b"garbage")])

    async def tried_twice() -> bool:  # the message was read again: the first failure left it there
        return tries >= 2

    await eventually(tried_twice, timeout=30)
    assert await master.get_job(job_id) is None
    assert await agent.count(bucket) == 1  # not acked: the only copy stays
    monkeypatch.setattr(master, "insert_jobs", insert)
    kept = await _kept(running, job_id)
    assert base64.b64decode(kept.data["payload_base64"]) == b"garbage"
