"""Undecodable agent messages are kept in every master as Failed jobs, and a drain keeps them too."""

from __future__ import annotations

import base64
import time

from helpers import agent_with_bucket, make_job
from jobmaster.agents.base import AgentMessage
from jobmaster.jobs import codec
from jobmaster.jobs.model import JobFilter, JobStatus, new_job_id
from jobmaster.master.base import MasterStore
from jobmaster.runtime.drain import drain_bucket
from jobmaster.runtime.executor import ReadAdoptAck
from jobmaster.runtime.poison import UNDECODABLE, keep_undecodable


def _message(payload: bytes, version: int = 0, job_id: str | None = None) -> AgentMessage:
    return AgentMessage(job_id or new_job_id(), time.time(), version, payload)


async def _kept(master: MasterStore) -> list:
    return await master.list_jobs(JobFilter(definition_id=UNDECODABLE))


async def test_a_message_only_the_agent_held_keeps_its_id_raw_bytes_and_origin(master: MasterStore) -> None:
    message = _message(b"\xff\x00 not a job")
    await keep_undecodable(master, "agent-a", "bucket-1", [(message, "undecodable job message: junk")])
    job = await master.get_job(message.job_id)
    assert job is not None
    assert (job.status, job.definition_id, job.attempts) == (JobStatus.Failed, UNDECODABLE, 0)
    assert base64.b64decode(job.data["payload_base64"]) == message.payload
    assert job.metadata == {
        "agent": "agent-a",
        "bucket": "bucket-1",
        "message_job_id": message.job_id,
        "message_version": 0,
    }
    assert job.last_error is not None
    for part in ("junk", "'agent-a'", "'bucket-1'", message.job_id):
        assert part in job.last_error["message"]
    assert job.finished_at is not None


async def test_keeping_again_after_a_lost_ack_adds_nothing(master: MasterStore) -> None:
    fresh, saved = _message(b"garbage"), _message(b"more garbage", version=3)
    for _ in range(2):
        await keep_undecodable(master, "a", "b", [(fresh, "bad"), (saved, "bad")])
    assert len(await _kept(master)) == 2


async def test_a_copy_of_a_job_the_master_holds_gets_an_id_of_its_own(master: MasterStore) -> None:
    """The master's job is left as it is; the dead letter beside it says which job it copied."""
    held = make_job()
    await master.insert_jobs([held])
    for version in (0, 1):  # version 0 too: an id the master holds already, whatever the message says
        await keep_undecodable(master, "a", "b", [(_message(b"junk", version, held.id), "bad")])
    kept = await _kept(master)
    assert len(kept) == 2 and all(j.id != held.id for j in kept)
    assert {j.metadata["message_job_id"] for j in kept} == {held.id}
    assert any("the master still holds job" in (j.last_error or {})["message"] for j in kept)
    still = await master.get_job(held.id)
    assert still is not None and (still.status, still.definition_id) == (
        JobStatus.HeldOnMaster,
        held.definition_id,
    )


async def test_a_drain_keeps_garbage_and_sends_jobs_back(master: MasterStore, urls: dict[str, str]) -> None:
    good = make_job(status=JobStatus.SavePending)
    async with agent_with_bucket(urls["agent"], "drain") as (agent, bucket):
        garbage = _message(b"[1, 2, 3]")
        await agent.push(
            bucket, [garbage, AgentMessage(good.id, good.scheduled_at, 0, codec.job_to_bytes(good))]
        )
        assert await drain_bucket(master, ReadAdoptAck(agent), bucket) == 2
        assert await agent.count(bucket) == 0
    back = await master.get_job(good.id)
    assert back is not None and back.status is JobStatus.HeldOnMaster
    kept = await master.get_job(garbage.job_id)
    assert kept is not None and kept.status is JobStatus.Failed
    assert base64.b64decode(kept.data["payload_base64"]) == b"[1, 2, 3]"
