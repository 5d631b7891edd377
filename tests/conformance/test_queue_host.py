"""Bucket queues held in the job table: the `QueueHost` part of the master interface.

Every master that implements it (the ones a standalone agent can live in) must pass all of it.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from helpers import make_job
from jobmaster.backends import make_master
from jobmaster.cluster.model import Bucket
from jobmaster.jobs.model import JobStatus, Priority
from jobmaster.master.base import MasterStore, QueueHost

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgresql"])


async def _bucket(master: MasterStore) -> str:
    bucket = Bucket(
        id=f"w-{uuid.uuid4().hex[:8]}.Medium.0",
        agent="standalone",
        lane="Default",
        priority=Priority.Medium,
        worker_id="w1",
        created_at=time.time(),
    )
    await master.add_buckets([bucket])
    return bucket.id


def _host(master: MasterStore) -> QueueHost:
    assert isinstance(master, QueueHost), f"{type(master).__name__} must host bucket queues"
    return master


async def test_take_starts_due_jobs_in_order_and_buffers_later_ones(master: MasterStore) -> None:
    host, bucket = _host(master), await _bucket(master)
    now = time.time()
    first, second, third = make_job(-3), make_job(-2), make_job(-1)
    soon, later = make_job(0.5), make_job(60)
    assert await host.queue_jobs(bucket, [later, soon, third, first, second])
    assert await host.queued_count(bucket) == 5
    next_due = await host.next_queued_due(bucket)
    assert next_due is not None and abs(next_due - first.scheduled_at) < 1e-3
    queued = await master.get_job(first.id)
    assert queued is not None and queued.status is JobStatus.AssignedToBucket
    assert (queued.bucket_id, queued.lease_expires_at, queued.version) == (bucket, None, 1)

    taken = await host.take_queued(bucket, "w1", now + 30, now=now, start=2, due_before=now + 1, limit=10)
    assert [(j.id, j.status) for j in taken] == [
        (first.id, JobStatus.Processing),
        (second.id, JobStatus.Processing),
        (soon.id, JobStatus.Queued),
    ]
    for job in taken:
        stored = await master.get_job(job.id)
        assert stored is not None and stored.status is job.status
        assert (stored.worker_id, stored.version) == ("w1", 2) == (job.worker_id, job.version)
        assert stored.lease_expires_at is not None and abs(stored.lease_expires_at - (now + 30)) < 1e-3
        running = job.status is JobStatus.Processing
        assert (stored.attempts, job.attempts) == ((1, 1) if running else (0, 0))
        assert stored.started_at == (pytest.approx(now) if running else None)
    # the third due job waited for a slot instead of being buffered
    assert await host.queued_count(bucket) == 2
    rest = await host.take_queued(bucket, "w1", now + 30, now=now, start=5, due_before=now + 1, limit=0)
    assert [(j.id, j.status) for j in rest] == [(third.id, JobStatus.Processing)]
    assert await host.take_queued(bucket, "w1", now + 30, now=now, start=5, due_before=now + 1, limit=5) == []
    assert await host.queued_count(bucket) == 1


async def test_take_with_no_free_slot_leaves_due_jobs_queued(master: MasterStore) -> None:
    host, bucket = _host(master), await _bucket(master)
    now = time.time()
    due, soon = make_job(-1), make_job(0.5)
    assert await host.queue_jobs(bucket, [due, soon])
    taken = await host.take_queued(bucket, "w1", now + 30, now=now, start=0, due_before=now + 1, limit=10)
    assert [(j.id, j.status) for j in taken] == [(soon.id, JobStatus.Queued)]
    stored = await master.get_job(due.id)
    assert stored is not None and (stored.status, stored.version) == (JobStatus.AssignedToBucket, 1)


async def test_queue_refuses_a_bucket_that_does_not_exist(master: MasterStore) -> None:
    job = make_job(-1)
    assert not await _host(master).queue_jobs(f"gone-{uuid.uuid4().hex[:8]}", [job])
    assert await master.get_job(job.id) is None


async def test_a_bucket_with_jobs_is_drained_before_it_can_go(master: MasterStore) -> None:
    host, bucket = _host(master), await _bucket(master)
    jobs = [make_job(-1) for _ in range(7)]
    assert await host.queue_jobs(bucket, jobs)
    assert not await host.remove_empty_bucket(bucket)
    assert bucket in {b.id for b in await master.list_buckets()}
    assert await host.release_queued(bucket, 5) == 5
    assert await host.release_queued(bucket, 5) == 2
    assert await host.release_queued(bucket, 5) == 0
    for job in jobs:
        stored = await master.get_job(job.id)
        assert stored is not None and stored.status is JobStatus.HeldOnMaster
        assert (stored.bucket_id, stored.version) == (None, 2)
    assert await host.remove_empty_bucket(bucket)
    assert bucket not in {b.id for b in await master.list_buckets()}
    late = make_job(-1)
    assert not await host.queue_jobs(bucket, [late])
    assert await master.get_job(late.id) is None


async def test_a_retried_queue_call_writes_each_job_once(master: MasterStore) -> None:
    """A call retried after an unknown outcome names jobs the queue already holds: those are left as
    they are (even when taken meanwhile), the others go in."""
    host, bucket = _host(master), await _bucket(master)
    now = time.time()
    first, second, third = make_job(-2), make_job(-1), make_job(-1)
    assert await host.queue_jobs(bucket, [first, second])
    [taken] = await host.take_queued(bucket, "w1", now + 30, now=now, start=1, due_before=now, limit=0)
    assert taken.id == first.id
    assert await host.queue_jobs(bucket, [first, second, third])
    assert await host.queued_count(bucket) == 2
    stored = await master.get_job(first.id)
    assert stored is not None and (stored.status, stored.version) == (JobStatus.Processing, 2)


async def test_concurrent_takers_never_share_a_job(master: MasterStore, urls, cluster_id) -> None:
    host, bucket = _host(master), await _bucket(master)
    jobs = [make_job(-1) for _ in range(400)]
    assert await host.queue_jobs(bucket, jobs)
    other = make_master(urls["master"], cluster_id)
    await other.open()

    async def take_all(store: MasterStore, worker: str) -> list[str]:
        got: list[str] = []
        host = _host(store)
        while batch := await host.take_queued(
            bucket, worker, time.time() + 30, now=time.time(), start=25, due_before=time.time() + 1, limit=25
        ):
            got += [j.id for j in batch]
        return got

    try:
        a, b = await asyncio.gather(take_all(master, "w1"), take_all(other, "w2"))
    finally:
        await other.close()
    assert len(a) + len(b) == 400
    assert set(a).isdisjoint(b)
