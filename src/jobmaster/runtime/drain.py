"""Emptying a bucket back into the master.

Used when a worker stops (its own buckets), by drain workers and by `jobmaster agents drain`
adopting the buckets of dead workers (and when moving a standalone cluster to distributed agents). Every
message goes back as HeldOnMaster: unsaved ones are inserted, saved ones are released with a version
check (a stale copy changes nothing). The bucket is destroyed only once it is empty, and the agent
refuses to destroy a bucket that still holds messages, so a publisher that pushed at the last moment
from a stale cache cannot lose its job: the loop simply drains again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from jobmaster.agents.base import AgentTransport
from jobmaster.cluster.model import Bucket, BucketStatus, WorkerStatus
from jobmaster.errors import JobMasterError
from jobmaster.jobs.model import JobStatus
from jobmaster.master.base import Fence, MasterStore
from jobmaster.runtime.hub import BUCKETS, HELD
from jobmaster.runtime.poison import decode_messages, keep_undecodable

if TYPE_CHECKING:
    from jobmaster.runtime.executor.intake import Intake

log = logging.getLogger("jobmaster.drain")

#: Beyond any real timestamp: claim every message, whatever its due or visibility time.
EVER = 1e15
BATCH = 1000
#: Refused destructions (messages left, none claimable) tolerated before giving the bucket up:
#: about 20 s for a drainer, about 1.5 s for a stopping worker (whose stop must not outlast the
#: grace period of its supervisor; its buckets are left to drainers, nothing is lost).
MAX_REFUSALS = 20
STOP_REFUSALS = 5


class DrainIncompleteError(JobMasterError):
    """A bucket could not be emptied now; it stays in place for a later drain."""


async def drain_bucket(
    master: MasterStore, intake: Intake, bucket_id: str, max_refusals: int = MAX_REFUSALS
) -> int:
    moved = 0
    refusals = 0
    while True:
        count = await intake.drain_batch(master, bucket_id)
        if count:
            moved += count
            continue
        if await intake.queue.destroy_bucket(bucket_id):
            return moved
        # messages remain that a claim cannot see yet (a racing push, an agent catching up after a
        # restart): wait a little, and give up after a while rather than spin forever
        refusals += 1
        if refusals > max_refusals:
            raise DrainIncompleteError(
                f"bucket {bucket_id} still holds messages no claim returns; left for a drainer"
            )
        await asyncio.sleep(0.1 * refusals)


async def move_batch(master: MasterStore, agent: AgentTransport, bucket_id: str) -> int:
    """Move one batch of the bucket's messages to the master; how many messages it took."""
    messages = await agent.claim(bucket_id, BATCH, EVER, EVER, EVER)
    if not messages:
        return 0
    jobs, poison = decode_messages(messages)
    unsaved = [j.copy(status=JobStatus.HeldOnMaster) for j in jobs if j.version == 0]
    saved = [Fence(j.id, j.version) for j in jobs if j.version != 0]
    if unsaved:
        await master.insert_jobs(unsaved)
    if saved:
        await master.release(saved)
    await keep_undecodable(master, agent.name, bucket_id, poison)
    await agent.ack(bucket_id, [m.job_id for m in messages])
    await master.notify(HELD)
    return len(messages)


async def drain_orphaned_buckets(
    master: MasterStore,
    intakes: Mapping[str, Intake],
    worker_timeout: float,
    agent_name: str | None = None,
    drainer_id: str | None = None,
) -> dict[str, int]:
    """Adopt the buckets of dead or stopped workers and send their jobs back to the master.

    A bucket whose owner is dead goes Lost, then Draining with the drainer as its new owner, each
    step guarded by the status and owner last seen, so of several drainers exactly one adopts it.
    A drainer that dies mid-drain leaves a Draining bucket with a dead owner, which is adopted again.
    Returns jobs moved per drained bucket. Live workers' buckets are never touched.
    """
    now = time.time()
    workers = {w.id: w for w in await master.list_workers()}

    def dead(bucket: Bucket) -> bool:
        owner = workers.get(bucket.worker_id)
        return (
            owner is None or owner.status is WorkerStatus.Stopped or now - owner.heartbeat_at > worker_timeout
        )

    drained: dict[str, int] = {}
    buckets = await master.list_buckets()
    random.shuffle(buckets)  # several drainers start on different buckets and spread the work
    for bucket in buckets:
        intake = intakes.get(bucket.agent)
        if intake is None or (agent_name is not None and bucket.agent != agent_name):
            continue
        unfinished = bucket.status is BucketStatus.Draining and bucket.worker_id == drainer_id
        if not unfinished:
            if not dead(bucket) or not await _adopt(master, bucket, drainer_id):
                continue
            log.warning("adopting bucket %s of dead worker %s", bucket.id, bucket.worker_id)
        try:
            drained[bucket.id] = await drain_bucket(master, intake, bucket.id)
        except Exception:
            # the bucket stays Draining and ours: the next pass resumes it
            log.exception("draining bucket %s failed; will retry", bucket.id)
            continue
        await master.delete_buckets([bucket.id])
        log.warning("bucket %s drained: %d job(s) back to the master", bucket.id, drained[bucket.id])
    if drained:
        await master.notify(BUCKETS)
    return drained


async def _adopt(master: MasterStore, bucket: Bucket, drainer_id: str | None) -> bool:
    status = bucket.status
    if status in (BucketStatus.Active, BucketStatus.Completing):
        if not await master.set_bucket_status(
            [bucket.id], BucketStatus.Lost, status, expected_owner=bucket.worker_id
        ):
            return False
        status = BucketStatus.Lost
    return bool(
        await master.set_bucket_status(
            [bucket.id],
            BucketStatus.Draining,
            status,
            owner=drainer_id,
            expected_owner=bucket.worker_id,
        )
    )
