"""Where a run leaves its job: the completion the master records, and the event that says so.

Pure decisions, no I/O: the executor reports what happened (the error, if any, and why the worker
interrupted the run), the policy here says what follows, and the master applies it in a batch.
"""

from __future__ import annotations

import traceback
from typing import Any

from jobmaster.errors import JobCancelledError, JobTimeoutError, ResultError
from jobmaster.events import (
    JobCancelled,
    JobEnded,
    JobFailed,
    JobInterrupted,
    JobRetried,
    JobSnoozed,
    JobSucceeded,
)
from jobmaster.jobs.model import Attempt, Completion, Job, JobStatus
from jobmaster.jobs.outcomes import Discard, Snooze
from jobmaster.jobs.retry import RetryPolicy

#: Reasons a running handler is interrupted without being cancelled by a user: the job goes back to
#: the master to run again, instead of ending Cancelled.
SHUTDOWN = "worker shutting down"
LEASE_LOST = "worker lost its lease (master unreachable)"
#: The reason a handler is interrupted when it runs past its job's timeout.
TIMED_OUT = "job ran past its timeout"


def error_details(exc: BaseException) -> dict[str, Any]:
    kind = type(exc)
    return {
        "type": f"{kind.__module__}.{kind.__qualname__}"
        if kind.__module__ != "builtins"
        else kind.__qualname__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
    }


def succeeded(job: Job, worker_id: str, started_at: float, now: float, result: str | None) -> Completion:
    """A run that returned: `result` is its return value as JSON text, None if it returned None."""
    done = Attempt(job.id, job.attempts, worker_id, started_at, now, "succeeded")
    return Completion(job.id, job.version, JobStatus.Succeeded, done, result=result)


def failed(
    job: Job,
    error: BaseException,
    reason: str | None,
    worker_id: str,
    started_at: float,
    now: float,
    policy: RetryPolicy,
) -> Completion:
    """A run that raised, timed out, snoozed, was discarded, was cancelled or returned a value that
    cannot be stored: a retry, a snooze, or a final status."""
    details = error_details(error)

    def attempt(outcome: str) -> Attempt:
        return Attempt(job.id, job.attempts, worker_id, started_at, now, outcome, details)

    if isinstance(error, JobCancelledError):
        if reason in (SHUTDOWN, LEASE_LOST):
            return Completion(
                job.id,
                job.version,
                JobStatus.HeldOnMaster,
                attempt("interrupted"),
                scheduled_at=now,
                error=details,
            )
        return Completion(job.id, job.version, JobStatus.Cancelled, attempt("cancelled"))
    if isinstance(error, Snooze):
        snoozed = Attempt(job.id, job.attempts, worker_id, started_at, now, "snoozed")
        until = now + error.seconds
        return Completion(job.id, job.version, JobStatus.HeldOnMaster, snoozed, scheduled_at=until, grant=1)
    if isinstance(error, Discard):
        return Completion(job.id, job.version, JobStatus.Failed, attempt("discarded"), error=details)
    if isinstance(error, ResultError):
        return Completion(job.id, job.version, JobStatus.Failed, attempt("failed"), error=details)
    outcome = "timeout" if isinstance(error, JobTimeoutError) else "failed"
    if job.attempts < job.attempt_limit:
        retry_at = now + policy.delay(job.attempts)
        return Completion(
            job.id,
            job.version,
            JobStatus.HeldOnMaster,
            attempt(outcome),
            scheduled_at=retry_at,
            error=details,
        )
    return Completion(job.id, job.version, JobStatus.Failed, attempt(outcome), error=details)


def ended_kind(completion: Completion) -> type[JobEnded]:
    """The kind of event that reports `completion`: asked first, so an event nobody listens for
    (a success, where only failures are logged) is never built."""
    status = completion.status
    if status is JobStatus.Succeeded:
        return JobSucceeded
    if status is JobStatus.HeldOnMaster:
        if completion.attempt.outcome == "interrupted":
            return JobInterrupted
        return JobSnoozed if completion.grant else JobRetried
    return JobCancelled if status is JobStatus.Cancelled else JobFailed


def ended_event(kind: type[JobEnded], job: Job, completion: Completion) -> JobEnded:
    """The event of `kind` (`ended_kind(completion)`) that reports `completion` of `job`'s run."""
    if kind is JobSnoozed or kind is JobRetried:
        assert completion.scheduled_at is not None
        return kind(job, completion.attempt, completion.scheduled_at)  # type: ignore[call-arg]
    return kind(job, completion.attempt)
