"""The one interface every agent transport implements.

An agent holds only in-flight jobs, partitioned by bucket. Messages are claimed, never destructively
read: a claimed message stays in the agent, invisible to other claimers until `visible_at`, and
leaves only when its owner acks it after the master holds the job. A crash at any point therefore
leaves the message to be claimed again, and the job's version decides whether that copy is stale.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import NamedTuple

from jobmaster.errors import JobMasterError
from jobmaster.jobs import codec
from jobmaster.jobs.model import Job


class BucketGoneError(JobMasterError):
    """The bucket no longer exists on the agent; the caller must route the job elsewhere."""


#: How many of a bucket's earliest messages `next_due_at` looks at.
NEXT_DUE_SCAN = 100

#: Where an owner's reads of its bucket have got to: the `(due_at, job_id)` of the last message read.
ReadCursor = tuple[float, str]


class AgentMessage(NamedTuple):
    """One job's message in a bucket. A named tuple, not a frozen dataclass: two are made per job
    (the push and the owner's read), and a frozen dataclass costs twice as much to make."""

    job_id: str
    due_at: float
    #: 0 while the job exists only here (SavePending); otherwise the master version it was sent with.
    version: int
    payload: bytes

    @property
    def read_key(self) -> ReadCursor:
        """Its place in the order the owner reads its bucket in."""
        return (self.due_at, self.job_id)


class BucketQueue(abc.ABC):
    """In-flight job queues of one agent connection, one queue per bucket: what every kind of queue
    does, whether its jobs are messages (`AgentTransport`) or rows of the master's own job table
    (`agents/master_queue.py`). How a bucket's owner takes jobs out differs between the two, and is
    the runtime's intake (`runtime/executor/intake.py`)."""

    supports_notify: bool = False

    def __init__(self, url: str, cluster_id: str, name: str) -> None:
        self.url = url
        self.cluster_id = cluster_id
        self.name = name

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def migrate(self) -> None: ...

    async def drop(self) -> None:
        """Remove what `migrate` made for this cluster alone (tests, benchmarks, decommissioning).

        The SQL agents keep every cluster's messages in shared tables, where destroyed buckets leave
        nothing behind, so by default there is nothing to remove; NATS deletes the cluster's stream.
        """
        return None

    async def listen(self, callback: Callable[[str], None]) -> None:
        """Call `callback(bucket_id)` when a message lands in a bucket; a no-op when polled."""
        return None

    @abc.abstractmethod
    async def create_bucket(self, bucket_id: str) -> None: ...

    @abc.abstractmethod
    async def destroy_bucket(self, bucket_id: str) -> bool:
        """Remove the bucket if it holds no message; False (and nothing removed) otherwise.

        Refusing while messages remain is what makes destruction safe against a publisher pushing
        at the same moment: no message can be deleted along with its bucket.
        """

    @abc.abstractmethod
    async def push(self, bucket_id: str, messages: Sequence[AgentMessage]) -> None:
        """Store messages (one transaction); a message with a known job id replaces the old copy.

        Raises BucketGoneError if the bucket does not exist (it was drained and destroyed).
        """

    async def push_jobs(self, bucket_id: str, jobs: Sequence[Job]) -> None:
        """`push` for jobs: a job's master version (0 if the master does not hold it) travels along."""
        await self.push(
            bucket_id, [AgentMessage(j.id, j.scheduled_at, j.version, codec.job_to_bytes(j)) for j in jobs]
        )

    @abc.abstractmethod
    async def next_due_at(self, bucket_id: str, now: float) -> float | None:
        """When the next message is due and visible, to time the next read: the earliest of
        `max(due_at, visible_at)` among the bucket's first `NEXT_DUE_SCAN` messages by due time.

        A hint (an intake sleeps 5 s at most), so it must not cost a scan of the whole bucket: over
        every message it took 38 ms a call on PostgreSQL with 100,000 jobs due later waiting, on
        every wake-up of an idle intake.
        """

    @abc.abstractmethod
    async def count(self, bucket_id: str) -> int:
        """Messages in the bucket, claimed or not: the truthful answer to `has jobs?`."""

    @abc.abstractmethod
    async def find(self, job_id: str) -> AgentMessage | None:
        """Look a job up by id in any bucket, so a SavePending job can be shown and cancelled."""


class AgentTransport(BucketQueue):
    """A queue of messages: claimed, never destructively read. A claimed message stays in the agent,
    invisible to other claimers until `visible_at`, and leaves only when its owner acks it after the
    master holds the job."""

    @abc.abstractmethod
    async def claim(
        self, bucket_id: str, limit: int, due_before: float, now: float, visible_at: float
    ) -> list[AgentMessage]:
        """Claim visible messages due by `due_before`, earliest first, hidden until `visible_at`."""

    async def read_due(
        self,
        bucket_id: str,
        limit: int,
        due_before: float,
        now: float,
        visible_at: float,
        after: ReadCursor | None = None,
    ) -> list[AgentMessage]:
        """Visible messages due by `due_before`, earliest first, for the bucket's owner to adopt.

        Unlike `claim`, an agent may leave them visible: the owner reads, adopts and acknowledges in
        turn, so it never reads again what it has not acknowledged yet, and a second reader (a drain
        of a bucket whose owner only seemed dead) is fenced by the master, which adopts each job
        once. Hiding a message is a write per message; agents where that costs more than the read
        override this with a plain read. The default claims.

        `after` is the `(due_at, job_id)` of the last message the owner read and acknowledged: an
        agent may leave out every message at or before it, so that a read under a backlog does not
        walk what acknowledgements left behind (the dead index entries of a SQL table). Ties in
        `due_at` are read in `job_id` order, so the cursor never skips one. Ignoring it is correct
        too, since everything the owner read before it is acknowledged.
        """
        return await self.claim(bucket_id, limit, due_before, now, visible_at)

    @abc.abstractmethod
    async def claim_unsaved(
        self, bucket_id: str, limit: int, due_after: float, now: float, visible_at: float
    ) -> list[AgentMessage]:
        """Claim visible messages due after `due_after` whose job the master does not hold yet.

        Messages due sooner are left alone: their owner adopts them shortly anyway, and saving them
        first would cost a second master write per job under a backlog.
        """

    @abc.abstractmethod
    async def ack(self, bucket_id: str, job_ids: Sequence[str]) -> None:
        """Remove messages whose jobs the master now holds.

        The SQL agents remove the bucket's message for each job id; the NATS agent removes exactly
        the claimed copies, so a newer copy pushed meanwhile survives there. Either is safe: a newer
        copy removed here belongs to a job whose master row still leases it, and the lease brings it
        back.
        """
