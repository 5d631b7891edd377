"""Emptying a bucket back into the master.

Used when a worker stops (its own buckets) and, later, by drain workers adopting lost buckets. Every
message goes back as HeldOnMaster: unsaved ones are inserted, saved ones are released with a version
check (a stale copy changes nothing). The bucket is destroyed only once it is empty, and the agent
refuses to destroy a bucket that still holds messages, so a publisher that pushed at the last moment
from a stale cache cannot lose its job: the loop simply drains again.
"""

from __future__ import annotations

import logging

from jobmaster.agents.base import AgentTransport
from jobmaster.jobs import codec
from jobmaster.jobs.model import JobStatus
from jobmaster.master.base import Fence, MasterStore
from jobmaster.runtime.hub import HELD

log = logging.getLogger("jobmaster.drain")

#: Beyond any real timestamp: claim every message, whatever its due or visibility time.
EVER = 1e15
BATCH = 1000


async def drain_bucket(master: MasterStore, agent: AgentTransport, bucket_id: str) -> int:
    moved = 0
    while True:
        messages = await agent.claim(bucket_id, BATCH, EVER, EVER, EVER)
        if not messages:
            if await agent.destroy_bucket(bucket_id):
                return moved
            continue
        unsaved, saved = [], []
        for message in messages:
            try:
                job = codec.job_from_bytes(message.payload)
            except ValueError as exc:
                log.error("bucket %s: dropping poison message %s: %s", bucket_id, message.job_id, exc)
                continue
            if message.version == 0:
                unsaved.append(job.copy(status=JobStatus.HeldOnMaster, version=0))
            else:
                saved.append(Fence(job.id, message.version))
        if unsaved:
            await master.insert_jobs(unsaved)
        if saved:
            await master.release(saved)
        await agent.ack(bucket_id, [m.job_id for m in messages])
        await master.notify(HELD)
        moved += len(messages)
