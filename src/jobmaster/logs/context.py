"""The job a record was written for, carried by a context variable from the executor to the record.

The executor sets `CURRENT_JOB` to the job itself when a run starts, in the run's own task (and a
sync handler's thread runs in a copy of that context): one `ContextVar.set` a job, about 50 ns. The
fields are read off the job only when a record is actually written.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

from jobmaster.jobs.model import Job

CURRENT_JOB: ContextVar[Job | None] = ContextVar("jobmaster_current_job", default=None)
#: The record attributes `JobFieldsFilter` adds, in the order formatters print them.
JOB_FIELDS = ("job_id", "handler", "attempt", "lane", "priority")


def job_fields(job: Job) -> dict[str, Any]:
    """A job's identity as record attributes."""
    return {
        "job_id": job.id,
        "handler": job.definition_id,
        "attempt": job.attempts,
        "lane": job.lane,
        "priority": job.priority.name,
    }


class JobFieldsFilter(logging.Filter):
    """Gives each record the fields of the job being run in its context (None outside a job);
    fields a record already carries (the engine's own run lines) are kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "job_id", None) is not None:
            return True
        job = CURRENT_JOB.get()
        if job is None:
            for name in JOB_FIELDS:
                setattr(record, name, None)
        else:
            record.__dict__.update(job_fields(job))
        return True
