"""The master conformance suite: every master backend must pass all of it, unchanged."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from helpers import make_job, make_worker
from jobmaster.backends import make_master
from jobmaster.cluster.model import (
    Bucket,
    BucketStatus,
    WorkerMode,
    WorkerStatus,
)
from jobmaster.jobs import codec
from jobmaster.jobs.model import Attempt, Completion, Job, JobFilter, JobStatus, Priority
from jobmaster.jobs.retry import RetryPolicy
from jobmaster.master.base import ENDED_TOPIC, Assignment, Fence, MasterStore, StartNow


def assign_all(bucket: str = "b1", worker: str = "w1", status: JobStatus = JobStatus.Queued):
    def assign(jobs: list[Job]) -> list[Assignment]:
        return [Assignment(j.id, bucket, worker, status, time.time() + 30) for j in jobs]

    return assign


async def test_migrate_is_idempotent(master: MasterStore) -> None:
    version = await master.migrate()
    assert version >= 1
    assert await master.migrate() == version
    assert await master.schema_version() == version


async def test_insert_and_get_round_trip(master: MasterStore) -> None:
    job = make_job(5, priority=Priority.High, lane="Heavy", data={"a": [1, 2]}, metadata={"k": "v"})
    assert await master.insert_jobs([job]) == [job.id]
    got = await master.get_job(job.id)
    assert got is not None
    assert (got.status, got.version, got.priority, got.lane) == (
        JobStatus.HeldOnMaster,
        1,
        Priority.High,
        "Heavy",
    )
    assert got.data == {"a": [1, 2]} and got.metadata == {"k": "v"}
    assert abs(got.scheduled_at - job.scheduled_at) < 1e-3
    assert got.attempt_limit == job.max_retries + 1


async def test_a_batch_keeps_every_job_s_own_values(master: MasterStore) -> None:
    """Batches may send a column that is equal for all jobs once; one that differs must not be."""
    same = dict(priority=Priority.Low, lane="Batch", data={"n": 0}, metadata={"m": 1}, timeout_s=7.0)
    jobs = [make_job(1, **same) for _ in range(3)]
    jobs += [
        make_job(2, **{**same, "priority": Priority.High}),
        make_job(3, **{**same, "lane": "Other"}),
        make_job(4, **{**same, "data": {"n": 4}, "metadata": {}}),
        make_job(5, **{**same, "timeout_s": 9.5, "max_retries": 0, "definition_id": "tests.other"}),
    ]
    # a batch of its own: data equal in Python (1 == 1.0 == True), not in JSON
    alike = [make_job(6, **{**same, "data": {"n": n}}) for n in (1, 1.0, True)]
    assert await master.insert_jobs(jobs) == [j.id for j in jobs]
    assert await master.insert_jobs(alike) == [j.id for j in alike]
    jobs += alike
    for job in jobs:
        got = await master.get_job(job.id)
        assert got is not None
        assert (got.definition_id, got.priority, got.lane, got.data, got.metadata) == (
            job.definition_id,
            job.priority,
            job.lane,
            job.data,
            job.metadata,
        )
        assert [type(v) for v in got.data.values()] == [type(v) for v in job.data.values()]
        assert (got.timeout_s, got.max_retries, got.attempt_limit) == (
            job.timeout_s,
            job.max_retries,
            job.attempt_limit,
        )
        assert abs(got.scheduled_at - job.scheduled_at) < 1e-3


async def test_duplicate_insert_is_ignored(master: MasterStore) -> None:
    job = make_job()
    await master.insert_jobs([job])
    again = job.copy(data={"changed": True})
    assert await master.insert_jobs([again]) == []
    got = await master.get_job(job.id)
    assert got is not None and got.data == {}


async def test_claim_due_respects_horizon_routes_order_and_limit(master: MasterStore) -> None:
    now = time.time()
    late = make_job(100)
    other_lane = make_job(-5, lane="Other")
    other_prio = make_job(-5, priority=Priority.Critical)
    due = [make_job(-3), make_job(-2), make_job(-1)]
    await master.insert_jobs([late, other_lane, other_prio, *due])
    claimed = await master.claim_due(now + 10, [("Default", Priority.Medium)], 2, assign_all())
    assert [j.id for j in claimed] == [due[0].id, due[1].id]
    for job in claimed:
        stored = await master.get_job(job.id)
        assert stored is not None
        assert (stored.status, stored.bucket_id, stored.worker_id) == (JobStatus.Queued, "b1", "w1")
        assert stored.version == job.version == 2
    rest = await master.claim_due(now + 10, [("Default", Priority.Medium)], 10, assign_all())
    assert [j.id for j in rest] == [due[2].id]
    for job in (late, other_lane, other_prio):
        stored = await master.get_job(job.id)
        assert stored is not None and stored.status is JobStatus.HeldOnMaster


async def test_claim_over_several_routes_takes_the_earliest_due_of_all(master: MasterStore) -> None:
    """Each route is read as its own range of the due index; the claim still merges them by due time."""
    medium = [make_job(-10 + 2 * i) for i in range(4)]
    high = [make_job(-9 + 2 * i, priority=Priority.High) for i in range(4)]
    await master.insert_jobs([*medium, *high])
    routes = [("Default", Priority.Medium), ("Default", Priority.High)]
    claimed = await master.claim_due(time.time(), routes, 5, assign_all())
    earliest = sorted([*medium, *high], key=lambda j: j.scheduled_at)[:5]
    assert [j.id for j in claimed] == [j.id for j in earliest]


async def test_claim_leaves_unassigned_jobs_held(master: MasterStore) -> None:
    jobs = [make_job(-1), make_job(-1)]
    await master.insert_jobs(jobs)

    def assign_first(found: list[Job]) -> list[Assignment]:
        return [Assignment(found[0].id, "b1", "w1", JobStatus.AssignedToBucket, time.time() + 30)]

    claimed = await master.claim_due(time.time(), [("Default", Priority.Medium)], 10, assign_first)
    assert len(claimed) == 1 and claimed[0].status is JobStatus.AssignedToBucket
    left = next(j for j in jobs if j.id != claimed[0].id)
    stored = await master.get_job(left.id)
    assert stored is not None and stored.status is JobStatus.HeldOnMaster


async def test_concurrent_claims_never_share_a_job(master: MasterStore, urls, cluster_id) -> None:
    jobs = [make_job(-1) for _ in range(400)]
    await master.insert_jobs(jobs)
    other = make_master(urls["master"], cluster_id)
    await other.open()
    try:

        async def drain(store: MasterStore, name: str) -> list[str]:
            got: list[str] = []
            while True:
                batch = await store.claim_due(
                    time.time(), [("Default", Priority.Medium)], 25, assign_all(worker=name)
                )
                if not batch:
                    return got
                got += [j.id for j in batch]

        a, b = await asyncio.gather(drain(master, "w1"), drain(other, "w2"))
    finally:
        await other.close()
    assert len(a) + len(b) == 400
    assert set(a).isdisjoint(b)


async def test_adopt_inserts_fresh_and_fences_stale(master: MasterStore) -> None:
    fresh = make_job(status=JobStatus.SavePending)
    assert fresh.version == 0
    owned = await master.adopt([fresh], "b1", "w1", time.time() + 30)
    assert owned == [fresh.id]
    stored = await master.get_job(fresh.id)
    assert stored is not None and (stored.status, stored.version) == (JobStatus.Queued, 1)
    # the same unsaved copy again (redelivered after a crash) is stale
    assert await master.adopt([fresh], "b1", "w1", time.time() + 30) == []

    saved = make_job()
    await master.insert_jobs([saved])
    [assigned] = await master.claim_due(
        time.time(),
        [("Default", Priority.Medium)],
        1,
        assign_all(status=JobStatus.AssignedToBucket),
    )
    stale = assigned.copy(version=assigned.version - 1)
    assert await master.adopt([stale], "b1", "w1", time.time() + 30) == []
    assert await master.adopt([assigned], "b1", "w1", time.time() + 30) == [assigned.id]
    stored = await master.get_job(assigned.id)
    assert stored is not None
    assert (stored.status, stored.version) == (JobStatus.Queued, assigned.version + 1)


async def test_adopt_starts_the_jobs_named_to_start(master: MasterStore) -> None:
    run_fresh, keep_fresh = make_job(status=JobStatus.SavePending), make_job(status=JobStatus.SavePending)
    saved = [make_job(), make_job()]
    await master.insert_jobs(saved)
    assigned = await master.claim_due(
        time.time(), [("Default", Priority.Medium)], 2, assign_all(status=JobStatus.AssignedToBucket)
    )
    run_saved, keep_saved = sorted(assigned, key=lambda j: j.id != saved[0].id)
    now, lease = time.time(), time.time() + 30
    start = StartNow(frozenset({run_fresh.id, run_saved.id}), now)
    owned = await master.adopt([run_fresh, keep_fresh, run_saved, keep_saved], "b1", "w1", lease, start)
    assert sorted(owned) == sorted([run_fresh.id, keep_fresh.id, run_saved.id, keep_saved.id])
    for job, running in ((run_fresh, True), (keep_fresh, False), (run_saved, True), (keep_saved, False)):
        stored = await master.get_job(job.id)
        assert stored is not None
        assert stored.status is (JobStatus.Processing if running else JobStatus.Queued)
        assert (stored.attempts, stored.version) == (int(running), max(job.version, 0) + 1)
        assert stored.started_at == (pytest.approx(now) if running else None)
        assert (stored.bucket_id, stored.worker_id) == ("b1", "w1")
        assert stored.lease_expires_at == pytest.approx(lease)


async def test_save_pending_persists_once(master: MasterStore) -> None:
    job = make_job(60, status=JobStatus.SavePending)
    assert await master.save_pending([job], "b1", "w1", 30) == [job.id]
    assert await master.save_pending([job], "b1", "w1", 30) == []
    stored = await master.get_job(job.id)
    assert stored is not None
    assert (stored.status, stored.version, stored.bucket_id) == (
        JobStatus.AssignedToBucket,
        1,
        "b1",
    )
    assert stored.lease_expires_at is not None
    assert abs(stored.lease_expires_at - (job.scheduled_at + 30)) < 1e-3


async def _queued(master: MasterStore, n: int = 1, **fields) -> list[Job]:
    jobs = [make_job(-1, **fields) for _ in range(n)]
    await master.insert_jobs(jobs)
    return await master.claim_due(time.time(), [("Default", Priority.Medium)], n, assign_all())


async def test_start_is_fenced_and_counts_attempts(master: MasterStore) -> None:
    a, b = await _queued(master, 2)
    now = time.time()
    started = await master.start([Fence(a.id, a.version), Fence(b.id, b.version - 1)], now, now + 30)
    assert started == [a.id]
    stored = await master.get_job(a.id)
    assert stored is not None
    assert (stored.status, stored.attempts, stored.version) == (
        JobStatus.Processing,
        1,
        a.version + 1,
    )
    assert stored.started_at is not None and abs(stored.started_at - now) < 1e-3


def _attempt(job: Job, n: int, outcome: str, error=None) -> Attempt:
    return Attempt(job.id, n, "w1", time.time() - 0.01, time.time(), outcome, error)


def _first_run(job: Job, status: JobStatus, outcome: str, run_error=None, **fields: Any) -> Completion:
    """The end of `job`'s first run as its worker reports it (fenced on the started version);
    `run_error` is the attempt's, `fields` the completion's own (`error`, `scheduled_at`...)."""
    return Completion(job.id, job.version + 1, status, _attempt(job, 1, outcome, run_error), **fields)


async def test_complete_writes_outcomes_and_history(master: MasterStore) -> None:
    ok, retry, fail, stale = await _queued(master, 4)
    now = time.time()
    fences = [Fence(j.id, j.version) for j in (ok, retry, fail, stale)]
    assert len(await master.start(fences, now, now + 30)) == 4
    err = {"type": "ValueError", "message": "boom", "traceback": "Traceback..."}
    done = await master.complete(
        [
            _first_run(ok, JobStatus.Succeeded, "succeeded"),
            _first_run(retry, JobStatus.HeldOnMaster, "failed", err, scheduled_at=now + 42, error=err),
            _first_run(fail, JobStatus.Failed, "failed", err, error=err),
            Completion(stale.id, stale.version, JobStatus.Succeeded, _attempt(stale, 1, "succeeded")),
        ]
    )
    assert sorted(done) == sorted([ok.id, retry.id, fail.id])
    s_ok, s_retry, s_fail, s_stale = [await master.get_job(j.id) for j in (ok, retry, fail, stale)]
    assert s_ok is not None and s_ok.status is JobStatus.Succeeded and s_ok.finished_at
    assert s_retry is not None and s_retry.status is JobStatus.HeldOnMaster
    assert abs(s_retry.scheduled_at - (now + 42)) < 1e-3 and s_retry.bucket_id is None
    assert s_retry.last_error == err
    assert s_fail is not None and s_fail.status is JobStatus.Failed and s_fail.last_error == err
    assert s_stale is not None and s_stale.status is JobStatus.Processing
    history = await master.attempts(fail.id)
    assert [(a.attempt, a.outcome, a.error) for a in history] == [(1, "failed", err)]
    assert await master.attempts(stale.id) == []


async def test_results_are_stored_with_their_jobs_and_fenced(master: MasterStore) -> None:
    """Any JSON value a handler returned comes back as it went in; a run that returned None stores
    nothing; a stale completion stores no result; results and plain successes share a batch."""
    values: list[object] = [{"total": 3, "items": [1, "a", None]}, [1, 2.5], "text", 7, True]
    jobs = await _queued(master, len(values) + 2)
    now = time.time()
    assert len(await master.start([Fence(j.id, j.version) for j in jobs], now, now + 30)) == len(jobs)
    plain, stale, returned = jobs[0], jobs[1], jobs[2:]
    done = await master.complete(
        [
            _first_run(plain, JobStatus.Succeeded, "succeeded"),
            Completion(
                stale.id, stale.version, JobStatus.Succeeded, _attempt(stale, 1, "succeeded"), result='"lost"'
            ),
            *(
                _first_run(j, JobStatus.Succeeded, "succeeded", result=codec.dumps(v).decode())
                for j, v in zip(returned, values, strict=True)
            ),
        ]
    )
    assert sorted(done) == sorted([plain.id, *(j.id for j in returned)])
    for job, value in zip(returned, values, strict=True):
        stored = await master.get_job(job.id)
        assert stored is not None and stored.status is JobStatus.Succeeded and stored.finished_at
        assert stored.result == value and type(stored.result) is type(value)
    s_plain, s_stale = await master.get_job(plain.id), await master.get_job(stale.id)
    assert s_plain is not None and (s_plain.status, s_plain.result) == (JobStatus.Succeeded, None)
    assert s_stale is not None and (s_stale.status, s_stale.result) == (JobStatus.Processing, None)
    listed = await master.list_jobs(JobFilter(statuses=(JobStatus.Succeeded,), limit=100))
    assert {j.id: j.result for j in listed}[returned[0].id] == values[0]


async def test_a_watched_job_s_end_is_announced_by_masters_that_notify(master: MasterStore) -> None:
    """`watch_end` leaves the version alone (the owner keeps its fence); a master that notifies
    then announces the job's final status, from any write, and nothing for unwatched jobs or for a
    run that goes back to wait; the others answer False, so waiters read again instead."""
    topics: list[str] = []
    await master.listen(topics.append)
    watched, failed, retried, unwatched = await _queued(master, 4)
    assert await master.watch_end("no-such-job") is False
    for job in (watched, failed, retried):
        assert await master.watch_end(job.id) is master.supports_notify
    stored = await master.get_job(watched.id)
    assert stored is not None and stored.version == watched.version
    now = time.time()
    jobs = (watched, failed, retried, unwatched)
    assert len(await master.start([Fence(j.id, j.version) for j in jobs], now, now + 30)) == 4
    err = {"type": "ValueError", "message": "boom", "traceback": ""}
    await master.complete(
        [
            _first_run(watched, JobStatus.Succeeded, "succeeded", result="1"),
            _first_run(failed, JobStatus.Failed, "failed", err),
            _first_run(retried, JobStatus.HeldOnMaster, "failed", err, scheduled_at=now + 60, error=err),
            _first_run(unwatched, JobStatus.Succeeded, "succeeded"),
        ]
    )
    if not master.supports_notify:
        assert not [t for t in topics if t.startswith(ENDED_TOPIC)]
        return
    expected = {f"{ENDED_TOPIC}{watched.id}", f"{ENDED_TOPIC}{failed.id}"}
    deadline = time.monotonic() + 30
    while not expected <= set(topics):
        assert time.monotonic() < deadline, f"announced: {topics}"
        await asyncio.sleep(0.02)
    await master.notify("marker")  # sent after the writes: once it arrives, so has all they sent
    while "marker" not in topics:
        assert time.monotonic() < deadline, f"announced: {topics}"
        await asyncio.sleep(0.02)
    assert sorted(t for t in topics if t.startswith(ENDED_TOPIC)) == sorted(expected)


async def test_a_result_goes_with_its_pruned_job(master: MasterStore) -> None:
    (job,) = await _queued(master, 1)
    now = time.time()
    await master.start([Fence(job.id, job.version)], now, now + 30)
    finished = Attempt(job.id, 1, "w1", now - 100, now - 100, "succeeded")
    done = await master.complete(
        [Completion(job.id, job.version + 1, JobStatus.Succeeded, finished, result='{"kept": false}')]
    )
    assert done == [job.id]
    stored = await master.get_job(job.id)
    assert stored is not None and stored.result == {"kept": False}
    assert await master.prune(now - 50, 100) == 1
    assert await master.get_job(job.id) is None


async def test_a_snooze_grants_its_run_back(master: MasterStore) -> None:
    """A snoozed run goes back due later and grows the attempt limit, so it spends no retry; a
    plain retry in the same batch leaves the limit alone."""
    snoozed, retried = await _queued(master, 2)
    now = time.time()
    assert len(await master.start([Fence(j.id, j.version) for j in (snoozed, retried)], now, now + 30)) == 2
    limit = snoozed.attempt_limit
    done = await master.complete(
        [
            _first_run(snoozed, JobStatus.HeldOnMaster, "snoozed", scheduled_at=now + 5, grant=1),
            _first_run(retried, JobStatus.HeldOnMaster, "failed", scheduled_at=now + 5),
        ]
    )
    assert sorted(done) == sorted([snoozed.id, retried.id])
    s_snoozed, s_retried = [await master.get_job(j.id) for j in (snoozed, retried)]
    assert s_snoozed is not None and s_snoozed.status is JobStatus.HeldOnMaster
    assert (s_snoozed.attempts, s_snoozed.attempt_limit) == (1, limit + 1)
    assert abs(s_snoozed.scheduled_at - (now + 5)) < 1e-3
    assert s_retried is not None and s_retried.attempt_limit == limit
    assert [a.outcome for a in await master.attempts(snoozed.id)] == ["snoozed"]


async def test_opposite_batches_on_the_same_jobs_never_deadlock(master: MasterStore) -> None:
    """Two workers' batches naming the same jobs in opposite orders: one wins each job, none fails.

    Rows locked in batch order would deadlock here (the database would abort one batch).
    """
    jobs = await _queued(master, 1500)
    now = time.time()
    assert len(await master.start([Fence(j.id, j.version) for j in jobs], now, now + 30)) == len(jobs)

    def batch(order: list[Job], status: JobStatus) -> list[Completion]:
        return [_first_run(j, status, "failed") for j in order]

    forward, backward = await asyncio.gather(
        master.complete(batch(jobs, JobStatus.Succeeded)),
        master.complete(batch(jobs[::-1], JobStatus.Failed)),
    )
    assert not set(forward) & set(backward)
    assert set(forward) | set(backward) == {j.id for j in jobs}


async def test_release_returns_buffered_jobs(master: MasterStore) -> None:
    a, b = await _queued(master, 2)
    assert await master.release([Fence(a.id, a.version), Fence(b.id, 99)]) == [a.id]
    stored = await master.get_job(a.id)
    assert stored is not None
    assert (stored.status, stored.worker_id, stored.bucket_id) == (
        JobStatus.HeldOnMaster,
        None,
        None,
    )


async def test_renew_extends_leases_and_reports_cancels(master: MasterStore) -> None:
    now = time.time()
    await master.register_worker(make_worker("w1"))
    a, b, forgotten = await _queued(master, 3)
    await master.start(
        [Fence(a.id, a.version), Fence(b.id, b.version), Fence(forgotten.id, forgotten.version)],
        now,
        now + 1,
    )
    assert await master.request_cancel(b.id, b.version + 1)
    cancels = await master.renew("w1", now, now + 60, [a.id, b.id])
    assert cancels == [b.id]
    stored = await master.get_job(a.id)
    assert stored is not None and stored.lease_expires_at == now + 60
    # a job stamped with the worker's id that it does not hold is left to expire
    stale = await master.get_job(forgotten.id)
    assert stale is not None and stale.lease_expires_at == now + 1
    [worker] = await master.list_workers()
    assert worker.heartbeat_at == now


async def test_recover_expired_leases(master: MasterStore) -> None:
    now = time.time()
    queued, running, cancelled, exhausted = await _queued(master, 4)
    exhausted_v = exhausted.version
    await master.start([Fence(j.id, j.version) for j in (running, cancelled)], now, now + 0.01)
    await master.request_cancel(cancelled.id, cancelled.version + 1)
    changed = await master.update_job(exhausted.id, exhausted_v, {"attempt_limit": 1})
    assert changed is not None
    await master.start([Fence(exhausted.id, changed.version)], now, now + 0.01)
    await master.update_job(queued.id, queued.version, {"lease_expires_at": now - 1})
    recovered = await master.recover_expired(now + 1, 100)
    assert recovered == 4
    states = {j.id: await master.get_job(j.id) for j in (queued, running, cancelled, exhausted)}
    assert states[queued.id].status is JobStatus.HeldOnMaster  # type: ignore[union-attr]
    assert states[running.id].status is JobStatus.HeldOnMaster  # type: ignore[union-attr]
    assert states[running.id].last_error["type"] == "WorkerLost"  # type: ignore[index,union-attr]
    assert states[cancelled.id].status is JobStatus.Cancelled  # type: ignore[union-attr]
    assert states[exhausted.id].status is JobStatus.Failed  # type: ignore[union-attr]
    assert [a.outcome for a in await master.attempts(running.id)] == ["lost"]
    assert await master.recover_expired(now + 1, 100) == 0


async def test_a_lost_run_comes_back_after_the_retry_back_off(master: MasterStore) -> None:
    """A job whose worker died running it is due again after the back-off a failed run gets, so a
    job that kills its worker is not claimed again the moment its lease lapses; one that was only
    waiting in the dead worker's hands is due again at its own time."""
    now = time.time()
    running, waiting = await _queued(master, 2)
    await master.start([Fence(running.id, running.version)], now, now + 0.01)
    await master.update_job(waiting.id, waiting.version, {"lease_expires_at": now - 1})
    retry = RetryPolicy(base=30.0, cap=1000.0, jitter=0.0)
    assert await master.recover_expired(now + 1, 100, retry) == 2
    lost = await master.get_job(running.id)
    assert lost is not None
    assert lost.status is JobStatus.HeldOnMaster
    assert lost.scheduled_at == pytest.approx(now + 1 + 30.0)
    assert lost.last_error is not None and lost.last_error["type"] == "WorkerLost"
    assert (lost.bucket_id, lost.worker_id, lost.lease_expires_at) == (None, None, None)
    assert [a.outcome for a in await master.attempts(running.id)] == ["lost"]
    back = await master.get_job(waiting.id)
    assert back is not None
    assert (back.status, back.scheduled_at) == (JobStatus.HeldOnMaster, pytest.approx(waiting.scheduled_at))
    # only the waiting job is due now; the lost run waits out its back-off
    claimed = await master.claim_due(now + 2, [("Default", Priority.Medium)], 10, assign_all())
    assert [j.id for j in claimed] == [waiting.id]


async def test_prune_deletes_only_old_final_jobs(master: MasterStore) -> None:
    old, recent, waiting = await _queued(master, 3)
    now = time.time()
    await master.start([Fence(old.id, old.version), Fence(recent.id, recent.version)], now, now + 30)
    await master.complete(
        [
            Completion(
                old.id,
                old.version + 1,
                JobStatus.Succeeded,
                Attempt(old.id, 1, "w1", now - 100, now - 100, "succeeded"),
            ),
            Completion(
                recent.id,
                recent.version + 1,
                JobStatus.Succeeded,
                Attempt(recent.id, 1, "w1", now, now, "succeeded"),
            ),
        ]
    )
    assert await master.prune(now - 50, 100) == 1
    assert await master.get_job(old.id) is None
    assert await master.attempts(old.id) == []
    assert await master.get_job(recent.id) is not None
    assert await master.get_job(waiting.id) is not None


async def test_list_count_and_filters(master: MasterStore) -> None:
    a = make_job(1, definition_id="mod.a", metadata={"tenant": "acme", "n": 3})
    b = make_job(2, definition_id="mod.b", metadata={"tenant": "other"}, lane="Heavy")
    c = make_job(3, definition_id="mod.a", priority=Priority.Critical)
    await master.insert_jobs([a, b, c])
    assert await master.count_jobs(JobFilter()) == 3
    assert {j.id for j in await master.list_jobs(JobFilter(definition_id="mod.a"))} == {a.id, c.id}
    assert [j.id for j in await master.list_jobs(JobFilter(lane="Heavy"))] == [b.id]
    assert [j.id for j in await master.list_jobs(JobFilter(metadata={"tenant": "acme"}))] == [a.id]
    assert [j.id for j in await master.list_jobs(JobFilter(metadata={"n": 3}))] == [a.id]
    window = JobFilter(scheduled_from=a.scheduled_at + 0.5, scheduled_to=c.scheduled_at - 0.5)
    assert [j.id for j in await master.list_jobs(window)] == [b.id]
    assert await master.count_jobs(JobFilter(statuses=(JobStatus.Succeeded,))) == 0
    page = await master.list_jobs(JobFilter(limit=2))
    assert [j.id for j in page] == [c.id, b.id]
    assert [j.id for j in await master.list_jobs(JobFilter(limit=2, offset=2))] == [a.id]
    counts = {(s.status, s.priority, s.lane): s.count for s in await master.count_by_status()}
    assert counts == {
        (JobStatus.HeldOnMaster, Priority.Medium, "Default"): 1,
        (JobStatus.HeldOnMaster, Priority.Medium, "Heavy"): 1,
        (JobStatus.HeldOnMaster, Priority.Critical, "Default"): 1,
    }


async def test_update_job_is_compare_and_swap(master: MasterStore) -> None:
    job = make_job(10)
    await master.insert_jobs([job])
    changed = await master.update_job(job.id, 1, {"status": JobStatus.Cancelled, "finished_at": 5.0})
    assert changed is not None and changed.status is JobStatus.Cancelled and changed.version == 2
    assert await master.update_job(job.id, 1, {"status": JobStatus.HeldOnMaster}) is None
    assert not await master.request_cancel(job.id, 2)


async def test_next_due_at(master: MasterStore) -> None:
    assert await master.next_due_at([("Default", Priority.Medium)]) is None
    a, b = make_job(30), make_job(10)
    await master.insert_jobs([a, b, make_job(1, lane="Other")])
    due = await master.next_due_at([("Default", Priority.Medium)])
    assert due is not None and abs(due - b.scheduled_at) < 1e-3


async def test_workers_and_buckets(master: MasterStore) -> None:
    await master.register_worker(make_worker("w1"))
    await master.set_worker_status("w1", WorkerStatus.Stopping)
    [worker] = await master.list_workers()
    assert worker.status is WorkerStatus.Stopping and worker.mode is WorkerMode.full
    buckets = [
        Bucket("b1", "standalone", "Default", Priority.High, "w1", created_at=1.0),
        Bucket("b2", "standalone", "Default", Priority.Low, "w1", created_at=1.0),
    ]
    await master.add_buckets(buckets)
    assert [b.id for b in await master.list_buckets(BucketStatus.Active)] == ["b1", "b2"]
    moved = await master.set_bucket_status(["b1", "b2"], BucketStatus.Lost, BucketStatus.Active)
    assert moved == ["b1", "b2"]
    assert await master.set_bucket_status(["b1"], BucketStatus.Draining, BucketStatus.Active) == []
    assert await master.set_bucket_status(["b1"], BucketStatus.Draining, BucketStatus.Lost) == ["b1"]
    await master.delete_buckets(["b2"])
    assert [(b.id, b.status) for b in await master.list_buckets()] == [("b1", BucketStatus.Draining)]
    # a drainer takes ownership; a second one guarded by the old owner cannot
    assert await master.set_bucket_status(
        ["b1"], BucketStatus.Draining, BucketStatus.Draining, owner="d1", expected_owner="w1"
    ) == ["b1"]
    assert (
        await master.set_bucket_status(
            ["b1"], BucketStatus.Draining, BucketStatus.Draining, owner="d2", expected_owner="w1"
        )
        == []
    )
    [adopted] = await master.list_buckets()
    assert adopted.worker_id == "d1"


async def test_forget_silent_workers_without_buckets(master: MasterStore) -> None:
    now = time.time()
    for worker_id, beat in (("old", now - 100), ("old-owner", now - 100), ("live", now)):
        await master.register_worker(make_worker(worker_id))
        await master.renew(worker_id, beat, beat + 10, [])
    await master.add_buckets([Bucket("b9", "standalone", "Default", Priority.Low, "old-owner")])
    assert await master.forget_workers(now - 50) == 1
    assert sorted(w.id for w in await master.list_workers()) == ["live", "old-owner"]
