"""The one interface every master database implements.

The master is the source of truth. Every method that changes a job is a compare-and-swap on the job's
version (the fencing token) and works on batches, so the engine makes one round trip per batch of jobs,
never one per job. Backends live one per module in this package and declare the URL schemes they serve.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from jobmaster.cluster.model import Bucket, BucketStatus, WorkerRecord, WorkerStatus
from jobmaster.jobs.model import Attempt, Completion, Job, JobFilter, JobStatus, Priority
from jobmaster.jobs.retry import DEFAULT_RETRY, RetryPolicy

Route = tuple[str, Priority]


class Assignment(NamedTuple):
    """Where the coordinator puts a claimed job: a bucket, its owner, and the status it lands in."""

    job_id: str
    bucket_id: str
    worker_id: str
    status: JobStatus
    lease_until: float


#: Pure function run inside the claim transaction: claimed jobs in, assignments out. Jobs it leaves
#: out stay HeldOnMaster.
Assigner = Callable[[list[Job]], list[Assignment]]


class Fence(NamedTuple):
    """A job id with the version the writer last saw; the write happens only if it still matches."""

    job_id: str
    version: int


@dataclass(slots=True, frozen=True)
class StartNow:
    """Jobs of an `adopt` that go straight to Processing: the worker has free slots for them.

    Starting them in the write that adopts them saves the separate start write, a commit on the
    path of every job that goes through an agent.
    """

    ids: frozenset[str]
    at: float

    def _adoption(self, job: Job) -> tuple[JobStatus, int, float | None]:
        """Status, attempts and start time of the job as adopted: Processing with its attempt
        counted if it starts now, else Queued."""
        if job.id in self.ids:
            return JobStatus.Processing, job.attempts + 1, self.at
        return JobStatus.Queued, job.attempts, job.started_at

    def adopted(self, job: Job, **placed: Any) -> Job:
        """A copy of the job as adopted, with `placed` (owner, lease...) set. One copy: adoption
        is on every job's path."""
        status, attempts, started_at = self._adoption(job)
        return job.copy(status=status, attempts=attempts, started_at=started_at, **placed)

    def adoption_columns(self, jobs: Sequence[Job]) -> dict[str, list[Any]]:
        """What `adopted` changes, one list per field, for a backend that writes jobs column by
        column: it then need not copy every job."""
        adoptions = [self._adoption(j) for j in jobs]
        return {
            "status": [a[0] for a in adoptions],
            "attempts": [a[1] for a in adoptions],
            "started_at": [a[2] for a in adoptions],
        }


NO_START = StartNow(frozenset(), 0.0)


@dataclass(slots=True, frozen=True)
class StatusCount:
    status: JobStatus
    priority: Priority
    lane: str
    count: int


class MasterStore(abc.ABC):
    """Durable jobs, workers and buckets of one cluster."""

    #: Set by backends that push notifications (LISTEN/NOTIFY); others are polled.
    supports_notify: bool = False
    #: Whether `insert_jobs(..., connection=)` can join a caller's open transaction.
    joins_transactions: bool = False

    def __init__(self, url: str, cluster_id: str) -> None:
        self.url = url
        self.cluster_id = cluster_id

    # lifecycle
    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @classmethod
    @abc.abstractmethod
    def latest_schema_version(cls) -> int:
        """The schema version `migrate` brings a database to; one below it needs `migrate`."""

    @abc.abstractmethod
    async def migrate(self) -> int:
        """Apply pending schema migrations; return the schema version now in force.

        Safe to call from several processes at once: each migration is applied once.
        """

    @abc.abstractmethod
    async def schema_version(self) -> int:
        """The schema version in force, 0 for a database without the schema (never runs DDL)."""

    async def listen(self, callback: Callable[[str], None]) -> None:
        """Deliver cluster notifications (see `notify`) to `callback`; a no-op when polled."""
        return None

    async def notify(self, topic: str) -> None:
        """Wake listeners in other processes; a no-op for backends that are polled.

        Backends that notify send `held` themselves from every method that writes HeldOnMaster rows
        as part of its own work (insert_jobs, complete, recover_expired); callers notify after
        `release` and for topics of their own.
        """
        return None

    async def watch_end(self, job_id: str) -> bool:
        """Have the master notify this cluster's listeners (`ENDED_TOPIC` + the id) when the job
        reaches a final status, whichever write puts it there; True if it will.

        False, the default, for masters that cannot notify and for a job not in the master yet (only
        in an agent): the caller then re-reads the job (`jobmaster/results.py`).
        """
        return False

    # jobs: writes
    @abc.abstractmethod
    async def insert_jobs(self, jobs: Sequence[Job], connection: Any = None) -> list[str]:
        """Insert new jobs (status as given, version 1); return the ids that were new.

        Ids already present are left untouched, which makes a retried insert harmless. With
        `connection`, the insert joins the caller's open transaction (backends that support it).
        """

    @abc.abstractmethod
    async def adopt(
        self,
        jobs: Sequence[Job],
        bucket_id: str,
        worker_id: str,
        lease_until: float,
        start: StartNow = NO_START,
    ) -> list[str]:
        """Take jobs read from a bucket's agent queue into the worker's hands (status Queued).

        A job never saved (version 0) is inserted; a saved one moves only if its master version still
        equals the copy's. Jobs named in `start` go to Processing instead, their attempt counted.
        Returns the ids now owned (their version moved on by one); the rest are stale copies to drop.
        """

    @abc.abstractmethod
    async def save_pending(
        self, jobs: Sequence[Job], bucket_id: str, worker_id: str, lease_after_due: float
    ) -> list[str]:
        """Persist SavePending jobs still waiting in a bucket as AssignedToBucket (version 1).

        Their lease runs to due time + `lease_after_due`, so a bucket whose owner dies gives its jobs
        back to the master even before a drain worker adopts it. Returns the ids that were new.
        """

    @abc.abstractmethod
    async def claim_due(
        self,
        horizon: float,
        routes: Sequence[Route],
        limit: int,
        assign: Assigner,
    ) -> list[Job]:
        """Claim up to `limit` HeldOnMaster jobs due by `horizon` on `routes` and assign them.

        Claimed rows are locked (SKIP LOCKED where the database has it) so concurrent coordinators
        never hand out a job twice. Returns the assigned jobs with their new versions.
        """

    @abc.abstractmethod
    async def start(self, fences: Sequence[Fence], now: float, lease_until: float) -> list[str]:
        """Mark jobs Processing and count the attempt; returns the ids that may run."""

    @abc.abstractmethod
    async def complete(self, completions: Sequence[Completion]) -> list[str]:
        """Write run outcomes and the attempt rows of unsuccessful runs; returns the ids that held."""

    @abc.abstractmethod
    async def release(self, fences: Sequence[Fence]) -> list[str]:
        """Give jobs a worker holds but has not started back to the master as HeldOnMaster."""

    @abc.abstractmethod
    async def renew(self, worker_id: str, now: float, lease_until: float, held: Sequence[str]) -> list[str]:
        """Heartbeat the worker and extend the leases of the jobs it holds; return ids to cancel.

        Only `held` jobs (in the worker's buffer or running) are renewed, never every job stamped
        with the worker's id: a write whose outcome the worker never learned (the connection died
        after the commit) leaves a job stamped with its id but not in its hands, and that job must
        expire and go back to the master instead of staying leased forever.
        """

    @abc.abstractmethod
    async def recover_expired(self, now: float, limit: int, retry: RetryPolicy = DEFAULT_RETRY) -> int:
        """Return up to `limit` jobs whose lease expired (their worker died) to HeldOnMaster, or
        finish them; returns how many were read.

        What becomes of each is decided by `lifecycle.recover` (a running job is due again after
        `retry`'s back-off, as a failed run is); the store only reads the expired rows, locked, and
        writes the decided ones fenced on their version.
        """

    @abc.abstractmethod
    async def prune(self, finished_before: float, limit: int) -> int:
        """Delete final jobs (and their history) that finished before the cut-off."""

    @abc.abstractmethod
    async def next_due_at(self, routes: Sequence[Route]) -> float | None:
        """The earliest due time of a HeldOnMaster job on `routes`, to time the next claim."""

    # jobs: management
    @abc.abstractmethod
    async def get_job(self, job_id: str) -> Job | None: ...

    @abc.abstractmethod
    async def list_jobs(self, criteria: JobFilter) -> list[Job]: ...

    @abc.abstractmethod
    async def count_jobs(self, criteria: JobFilter) -> int: ...

    @abc.abstractmethod
    async def count_by_status(self) -> list[StatusCount]: ...

    @abc.abstractmethod
    async def attempt_rows(self, job_id: str) -> list[Attempt]:
        """Stored attempts, oldest first: every run that did not succeed.

        A successful run is not stored a second time: the job row already holds its attempt number,
        worker, start and finish, and skipping that insert saves one write per job on the hot path.
        """

    async def attempts(self, job_id: str) -> list[Attempt]:
        """Every run of the job: the stored ones plus the successful one read off the job row."""
        history = await self.attempt_rows(job_id)
        job = await self.get_job(job_id)
        if (
            job is not None
            and job.status is JobStatus.Succeeded
            and job.started_at is not None
            and job.finished_at is not None
            and all(a.attempt != job.attempts for a in history)
        ):
            history.append(
                Attempt(job.id, job.attempts, job.worker_id, job.started_at, job.finished_at, "succeeded")
            )
        return history

    @abc.abstractmethod
    async def update_job(self, job_id: str, version: int, changes: dict[str, Any]) -> Job | None:
        """Compare-and-swap of arbitrary columns; the version moves on. None if it did not hold."""

    @abc.abstractmethod
    async def request_cancel(self, job_id: str, version: int) -> bool:
        """Flag a running job for cooperative cancellation, leaving its version unchanged."""

    # workers and buckets
    @abc.abstractmethod
    async def register_worker(self, worker: WorkerRecord) -> None: ...

    @abc.abstractmethod
    async def set_worker_status(self, worker_id: str, status: WorkerStatus) -> None: ...

    @abc.abstractmethod
    async def list_workers(self) -> list[WorkerRecord]: ...

    @abc.abstractmethod
    async def forget_workers(self, silent_since: float) -> int:
        """Delete records of workers silent since before the cut-off that own no bucket."""

    @abc.abstractmethod
    async def add_buckets(self, buckets: Iterable[Bucket]) -> None: ...

    @abc.abstractmethod
    async def set_bucket_status(
        self,
        bucket_ids: Sequence[str],
        status: BucketStatus,
        expected: BucketStatus | None = None,
        *,
        owner: str | None = None,
        expected_owner: str | None = None,
    ) -> list[str]:
        """Guarded bucket transition: only buckets in `expected` status (and owned by
        `expected_owner`), if given, move; `owner` hands the bucket to a new worker (a drainer), so a
        drainer that dies mid-drain leaves a bucket whose owner is dead, and another can adopt it."""

    @abc.abstractmethod
    async def delete_buckets(self, bucket_ids: Sequence[str]) -> None: ...

    @abc.abstractmethod
    async def list_buckets(self, status: BucketStatus | None = None) -> list[Bucket]: ...


#: Prefix of the notification topic that wakes the owner of a bucket queue: `bucket:<bucket id>`.
BUCKET_TOPIC = "bucket:"
#: Prefix of the notification topic that says a watched job ended: `ended:<job id>` (sent by the
#: trigger of PostgreSQL's migration 8, `watch_end`).
ENDED_TOPIC = "ended:"


class QueueHost(abc.ABC):
    """A master that can hold bucket queues in its job table.

    A standalone agent (the master's own database) then costs one job write where an agent table
    costs three (insert, claim, delete) on top of the master's own; `agents.master_queue` uses it.
    Jobs in such a queue are AssignedToBucket rows with no lease: the bucket's owner takes them
    (Queued, leased), and a drain sends them back as HeldOnMaster when the owner is gone.
    """

    @abc.abstractmethod
    async def queue_jobs(self, bucket_id: str, jobs: Sequence[Job]) -> bool:
        """Insert new jobs into a bucket's queue; False, with nothing written, if it is gone.

        The bucket row is locked while the jobs go in, so a concurrent `remove_empty_bucket` cannot
        strand them. Wakes the bucket's owner.
        """

    @abc.abstractmethod
    async def take_queued(
        self,
        bucket_id: str,
        worker_id: str,
        lease_until: float,
        *,
        now: float,
        start: int,
        due_before: float,
        limit: int,
    ) -> list[Job]:
        """Take the bucket's earliest jobs for the worker, leased until `lease_until`.

        Up to `start` jobs due by `now` go straight to Processing (attempt counted, started at
        `now`): a worker with free slots runs them without first buffering them, which saves a write
        per job. Up to `limit` jobs due after `now` but by `due_before` go to Queued, for the
        worker's buffer. Due jobs beyond `start` stay queued for the next free slot. Returns the
        jobs taken, earliest first, with their new versions and statuses.
        """

    #: True if `take_queued` commits without waiting for its flush to disk: the jobs a take starts
    #: then wait for `flush_takes` before they run (`master/flush.py`).
    takes_skip_flush = False

    async def flush_takes(self, worker_id: str) -> None:
        """Return once every take answered before this call is on disk; raise if that is unknown.

        Only a store whose `takes_skip_flush` is True is asked; the others commit takes durably.
        `worker_id` names the worker that waits, whose own row the store may write to force the flush.
        """
        return None

    @abc.abstractmethod
    async def release_queued(self, bucket_id: str, limit: int) -> int:
        """Send up to `limit` jobs waiting in the bucket back to the master as HeldOnMaster."""

    @abc.abstractmethod
    async def queued_count(self, bucket_id: str) -> int: ...

    @abc.abstractmethod
    async def next_queued_due(self, bucket_id: str) -> float | None: ...

    @abc.abstractmethod
    async def remove_empty_bucket(self, bucket_id: str) -> bool:
        """Delete the bucket if no job waits in it; False (nothing deleted) otherwise."""
