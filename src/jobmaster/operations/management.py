"""Cancel, reschedule and retry: user-driven status changes, each a compare-and-swap loop.

A job may be only in an agent (SavePending) when a user acts on it. The master row is the truth, so
the change is made by writing one: a tombstone (Cancelled) or a HeldOnMaster row at the new time.
The agent's copy then fails its version check when its owner adopts it and is dropped.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from jobmaster.agents.base import BucketQueue
from jobmaster.errors import InvalidTransitionError, JobMasterError, JobNotFoundError
from jobmaster.jobs import codec
from jobmaster.jobs.model import Job, JobStatus
from jobmaster.master.base import MasterStore

#: Attempts at a compare-and-swap before giving up on a job that keeps changing under us.
CAS_ATTEMPTS = 20
_NOT_STARTED = (JobStatus.HeldOnMaster, JobStatus.AssignedToBucket, JobStatus.Queued)


class Manager:
    def __init__(
        self,
        master: MasterStore,
        agents: Mapping[str, BucketQueue],
        wake: Callable[[str], Awaitable[None]],
    ) -> None:
        self.master = master
        self.agents = agents
        self._wake = wake

    async def find(self, job_id: str) -> Job | None:
        """The master's row, or the SavePending copy held by an agent."""
        job = await self.master.get_job(job_id)
        if job is not None:
            return job
        for agent in self.agents.values():
            message = await agent.find(job_id)
            if message is not None and message.version == 0:
                try:
                    pending = codec.job_from_bytes(message.payload)
                except ValueError:
                    continue  # no job to show or change: its bucket's owner keeps it as a Failed job
                pending.status = JobStatus.SavePending
                return pending
        return await self.master.get_job(job_id)

    async def get(self, job_id: str) -> Job:
        job = await self.find(job_id)
        if job is None:
            raise JobNotFoundError(f"no job with id {job_id!r}")
        return job

    async def _change(
        self,
        job_id: str,
        decide: Callable[[Job], dict[str, Any]],
        tombstone: Callable[[Job], Job],
    ) -> Job:
        """Apply `decide(job)` by CAS, or write `tombstone(job)` if the job is only in an agent."""
        for _ in range(CAS_ATTEMPTS):
            job = await self.get(job_id)
            if job.status is JobStatus.SavePending:
                row = tombstone(job)
                if await self.master.insert_jobs([row]):
                    return row.copy(version=1)
                continue
            updated = await self.master.update_job(job_id, job.version, decide(job))
            if updated is not None:
                return updated
        raise JobMasterError(f"job {job_id!r} kept changing; gave up after {CAS_ATTEMPTS} tries")

    async def cancel(self, job_id: str) -> Job:
        """Cancel any non-final job; a running one gets a cooperative cancellation signal."""
        now = time.time()
        for _ in range(CAS_ATTEMPTS):
            job = await self.get(job_id)
            if job.status.is_final:
                raise InvalidTransitionError(f"job {job_id!r} is already {job.status.name}")
            if job.status is JobStatus.SavePending:
                row = job.copy(status=JobStatus.Cancelled, finished_at=now)
                if await self.master.insert_jobs([row]):
                    return row.copy(version=1)
            elif job.status is JobStatus.Processing:
                if await self.master.request_cancel(job_id, job.version):
                    await self._wake("cancel")
                    job.cancel_requested = True
                    return job
            else:
                changes = {
                    "status": JobStatus.Cancelled,
                    "finished_at": now,
                    "lease_expires_at": None,
                }
                updated = await self.master.update_job(job_id, job.version, changes)
                if updated is not None:
                    return updated
        raise JobMasterError(f"job {job_id!r} kept changing; gave up after {CAS_ATTEMPTS} tries")

    async def reschedule(self, job_id: str, when: float) -> Job:
        """Move a job that has not started yet to a new due time."""

        def decide(job: Job) -> dict[str, Any]:
            if job.status not in _NOT_STARTED:
                raise InvalidTransitionError(
                    f"job {job_id!r} is {job.status.name}; only jobs not yet running can be rescheduled"
                )
            return _held(when)

        job = await self._change(
            job_id, decide, lambda j: j.copy(status=JobStatus.HeldOnMaster, scheduled_at=when)
        )
        await self._wake("held")
        return job

    async def retry(self, job_id: str) -> Job:
        """Run a failed or cancelled job again, with a fresh retry budget."""
        now = time.time()

        def decide(job: Job) -> dict[str, Any]:
            if job.status not in (JobStatus.Failed, JobStatus.Cancelled):
                raise InvalidTransitionError(
                    f"job {job_id!r} is {job.status.name}; only Failed or Cancelled jobs can be retried"
                )
            return {
                **_held(now),
                "finished_at": None,
                "cancel_requested": False,
                "attempt_limit": job.attempts + job.max_retries + 1,
            }

        def not_final(job: Job) -> Job:
            raise InvalidTransitionError(f"job {job_id!r} is {job.status.name}; it has not ended")

        job = await self._change(job_id, decide, not_final)
        await self._wake("held")
        return job


def _held(when: float) -> dict[str, Any]:
    return {
        "status": JobStatus.HeldOnMaster,
        "scheduled_at": when,
        "bucket_id": None,
        "worker_id": None,
        "lease_expires_at": None,
    }
