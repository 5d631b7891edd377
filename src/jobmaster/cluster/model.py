"""Records the master keeps about the live topology: workers and the buckets they own."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from jobmaster.jobs.model import Priority


class BucketStatus(enum.IntEnum):
    Active = 1
    Completing = 2
    Lost = 3
    Draining = 4
    Drained = 5


class WorkerStatus(enum.IntEnum):
    Running = 1
    Stopping = 2
    Stopped = 3


class WorkerMode(str, enum.Enum):
    full = "full"
    coordinator = "coordinator"
    execution = "execution"
    drain = "drain"

    @property
    def executes(self) -> bool:
        return self in (WorkerMode.full, WorkerMode.execution)

    @property
    def coordinates(self) -> bool:
        return self in (WorkerMode.full, WorkerMode.coordinator)


@dataclass(slots=True, frozen=True)
class Bucket:
    id: str
    agent: str
    lane: str
    priority: Priority
    worker_id: str
    status: BucketStatus = BucketStatus.Active
    created_at: float = 0.0


@dataclass(slots=True, frozen=True)
class WorkerRecord:
    id: str
    name: str
    mode: WorkerMode
    lane: str
    agent: str
    host: str
    pid: int
    started_at: float
    heartbeat_at: float
    status: WorkerStatus = WorkerStatus.Running
