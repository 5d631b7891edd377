"""What a handler sees of the job it runs."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobmaster.jobs.model import Job


@dataclass(slots=True)
class JobContext:
    """Passed to handlers that ask for it (a first parameter named `ctx`).

    `cancel_event` is a threading.Event so sync handlers in threads and async handlers alike can
    observe a cancellation or timeout cooperatively; async handlers are also interrupted outright.
    `state` carries the resources the app's startup hooks created (a DB pool, an HTTP client).
    """

    job_id: str
    definition_id: str
    attempt: int
    scheduled_at: datetime
    data: dict[str, Any]
    metadata: dict[str, Any]
    priority: str
    lane: str
    worker_id: str
    logger: logging.Logger
    state: SimpleNamespace
    cancel_event: threading.Event = field(default_factory=threading.Event)

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    @property
    def schedule(self) -> str | None:
        """The recurring schedule that made this job, if one did."""
        name = self.metadata.get("schedule")
        return name if isinstance(name, str) else None

    @property
    def occurrence(self) -> datetime | None:
        """The occurrence (UTC) of the recurring schedule this job runs, if one made it: its
        scheduled time, before any jitter."""
        value = self.metadata.get("occurrence")
        return datetime.fromisoformat(value) if self.schedule and isinstance(value, str) else None

    @staticmethod
    def utc(ts: float) -> datetime:
        return datetime.fromtimestamp(ts, UTC)


def context_for(job: Job, worker_id: str, state: SimpleNamespace) -> JobContext:
    """The context of one run of `job` (a worker's bucket, or `jobmaster.testing`'s inline mode)."""
    return JobContext(
        job_id=job.id,
        definition_id=job.definition_id,
        attempt=job.attempts,
        scheduled_at=JobContext.utc(job.scheduled_at),
        data=job.data,
        metadata=job.metadata,
        priority=job.priority.name,
        lane=job.lane,
        worker_id=worker_id,
        logger=logging.getLogger(f"jobmaster.job.{job.definition_id}"),
        state=state,
    )
