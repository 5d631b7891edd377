"""Small builders shared by tests."""

from __future__ import annotations

import time
from typing import Any

from jobmaster.jobs.model import Job, JobStatus, Priority, new_job_id


def make_job(
    due_in: float = 0.0,
    *,
    priority: Priority = Priority.Medium,
    lane: str = "Default",
    status: JobStatus = JobStatus.HeldOnMaster,
    **fields: Any,
) -> Job:
    now = time.time()
    return Job(
        id=new_job_id(),
        definition_id=fields.pop("definition_id", "tests.noop"),
        scheduled_at=now + due_in,
        created_at=now,
        priority=priority,
        lane=lane,
        status=status,
        **fields,
    )
