"""The job record and its state machine.

Times are UTC epoch seconds (floats) everywhere below the public API: every backend stores them in a
typed numeric column, comparisons are cheap, and no time-zone conversion can creep into the hot path.
"""

from __future__ import annotations

import enum
import os
import random
import time
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any, NamedTuple


class JobStatus(enum.IntEnum):
    """Persisted as small integers; the numbers never change once released."""

    SavePending = 1
    HeldOnMaster = 2
    AssignedToBucket = 3
    Processing = 4
    Succeeded = 5
    Queued = 6
    Failed = 7
    Cancelled = 8

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset({JobStatus.Succeeded, JobStatus.Failed, JobStatus.Cancelled})
#: Statuses in which a worker holds the job and must keep renewing its lease.
OWNED_STATUSES = frozenset({JobStatus.AssignedToBucket, JobStatus.Queued, JobStatus.Processing})


class Priority(enum.IntEnum):
    VeryLow = 0
    Low = 1
    Medium = 2
    High = 3
    Critical = 4

    @classmethod
    def parse(cls, value: Priority | int | str) -> Priority:
        """Accept names case-insensitively so TOML, env vars and the CLI can all say `critical`."""
        if isinstance(value, Priority):
            return value
        if isinstance(value, bool):
            raise ValueError(f"priority must be one of {PRIORITY_NAMES}, got {value!r}")
        if isinstance(value, int):
            try:
                return cls(value)
            except ValueError:
                raise ValueError(f"priority must be one of {PRIORITY_NAMES} or 0..4, got {value!r}") from None
        if isinstance(value, str):
            for member in cls:
                if member.name.lower() == value.strip().lower():
                    return member
        raise ValueError(f"priority must be one of {PRIORITY_NAMES}, got {value!r}")


PRIORITY_NAMES = ", ".join(p.name for p in Priority)

#: Base running slots per bucket, from the tuning guide (parameter 5).
BASE_SLOTS: dict[Priority, int] = {
    Priority.VeryLow: 2,
    Priority.Low: 3,
    Priority.Medium: 4,
    Priority.High: 5,
    Priority.Critical: 6,
}

DEFAULT_LANE = "Default"


def run_capacity(priority: Priority, parallelism_factor: float) -> int:
    """Run Capacity = Round(Base Slots x ParallelismFactor), never below one slot."""
    return max(1, round(BASE_SLOTS[priority] * parallelism_factor))


#: The random part of job ids. A generator of its own, seeded from the OS: a syscall per id
#: (`os.urandom`) was most of the cost of making one, and the shared `random` generator would repeat
#: ids in every process of an application that seeds it. A forked child reseeds, or it would make
#: its parent's ids.
_ID_BITS = random.Random()
os.register_at_fork(after_in_child=_ID_BITS.seed)


def new_job_id() -> str:
    """32 hex digits: milliseconds since the epoch (12), then 80 random bits (20), as in a UUIDv7.

    Ids made close in time sort close together, so a batch of new jobs lands in a few right-hand
    pages of a primary-key B-tree instead of one random page each: fewer pages dirtied, read and
    logged per insert, and the jobs being run sit in pages that are still cached. 80 random bits per
    millisecond keep ids as unique as a UUID's.
    """
    return new_job_ids(1)[0]


def new_job_ids(count: int) -> list[str]:
    """`count` ids as `new_job_id` makes them, sharing one timestamp: a `schedule_many` makes one per
    job, and drawing the random bits for all of them at once costs a fifth of drawing them one by one.
    """
    prefix = f"{time.time_ns() // 1_000_000:012x}"
    digits = f"{_ID_BITS.getrandbits(80 * count):0{20 * count}x}"
    return [prefix + digits[i : i + 20] for i in range(0, 20 * count, 20)]


@dataclass(slots=True)
class Job:
    """One job as the master stores it.

    `version` is the fencing token: every master write is a compare-and-swap on it, so a copy of the
    job left in an agent or in a dead worker's memory can never overwrite newer state.
    """

    id: str
    definition_id: str
    scheduled_at: float
    created_at: float
    priority: Priority = Priority.Medium
    lane: str = DEFAULT_LANE
    data: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    timeout_s: float = 300.0
    max_retries: int = 3
    #: Runs allowed in all; starts at max_retries + 1 and grows when a user retries by hand.
    attempt_limit: int = 0
    status: JobStatus = JobStatus.SavePending
    attempts: int = 0
    version: int = 0
    original_scheduled_at: float | None = None
    bucket_id: str | None = None
    worker_id: str | None = None
    lease_expires_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    cancel_requested: bool = False
    last_error: dict[str, Any] | None = None
    #: What the handler returned, any JSON value; None if it returned None or has not succeeded.
    #: Stored with the job in the master only: agent messages never carry it.
    result: Any = None
    #: The NOTIFY channel (PostgreSQL) told when the job ends, set by `jm.result` while it waits:
    #: only jobs someone waits for cost a notification (`jobmaster/results.py`).
    notify_channel: str | None = None

    def __post_init__(self) -> None:
        if self.original_scheduled_at is None:
            self.original_scheduled_at = self.scheduled_at
        if self.attempt_limit <= 0:
            self.attempt_limit = self.max_retries + 1

    def copy(self, **changes: Any) -> Job:
        """A shallow copy with `changes` applied: a sixth of `dataclasses.replace`'s cost."""
        clone = Job(*_job_fields(self))
        for name, value in changes.items():
            setattr(clone, name, value)
        return clone


#: Every field of a job in declaration order, read at C speed for `Job.copy`.
_job_fields = attrgetter(*(f.name for f in fields(Job)))


class Attempt(NamedTuple):
    """One run of a job, kept so users can see every failure, not only the last.

    A named tuple, like `Completion`: a worker builds one per job it runs, and a frozen dataclass
    cost five times as much to build (about 2 us against 0.4).
    """

    job_id: str
    attempt: int
    worker_id: str | None
    started_at: float
    finished_at: float
    outcome: str
    error: dict[str, Any] | None = None


@dataclass(slots=True, frozen=True)
class JobFilter:
    """Criteria for listing and counting jobs; every field narrows the result."""

    statuses: tuple[JobStatus, ...] = ()
    definition_id: str | None = None
    lane: str | None = None
    scheduled_from: float | None = None
    scheduled_to: float | None = None
    metadata: dict[str, Any] | None = None
    limit: int = 100
    offset: int = 0
    #: Only jobs after this `(scheduled_at, id)` position in the listing order (latest due first,
    #: then id descending): the position of the last job of the previous page (`jobs/paging.py`).
    after: tuple[float, str] | None = None


class Completion(NamedTuple):
    """The outcome of one run, written back in a batch with other completions."""

    job_id: str
    version: int
    status: JobStatus
    attempt: Attempt
    scheduled_at: float | None = None
    error: dict[str, Any] | None = None
    #: Runs added to the job's `attempt_limit`: 1 for a snooze, whose run spends no retry.
    grant: int = 0
    #: The handler's return value as JSON text, None when it returned None: those (most) completions
    #: keep the succeed write that stores nothing more.
    result: str | None = None
