"""A Django `TaskResult` read from a jobmaster job and its attempts.

The job's data carries what Django needs back (the task's import path, its arguments, its Django
priority and queue), so any process can rebuild the result from the master alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypedDict

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

from jobmaster.contrib.django._compat import InvalidTask, Task, TaskError, TaskResult, TaskResultStatus
from jobmaster.jobs.model import Attempt, Job, JobStatus

#: Django has no cancelled, scheduled or retrying state: waiting is READY, ended without success FAILED.
STATUSES: dict[JobStatus, TaskResultStatus] = {
    JobStatus.SavePending: TaskResultStatus.READY,
    JobStatus.HeldOnMaster: TaskResultStatus.READY,
    JobStatus.AssignedToBucket: TaskResultStatus.READY,
    JobStatus.Queued: TaskResultStatus.READY,
    JobStatus.Processing: TaskResultStatus.RUNNING,
    JobStatus.Succeeded: TaskResultStatus.SUCCESSFUL,
    JobStatus.Failed: TaskResultStatus.FAILED,
    JobStatus.Cancelled: TaskResultStatus.FAILED,
}


class TaskData(TypedDict):
    """A Django task's job data: what a worker needs to run it, and a reader to rebuild its result."""

    task_path: str
    args: list[Any]
    kwargs: dict[str, Any]
    #: The TASKS alias it was enqueued through.
    backend: str
    queue_name: str
    #: Django's own priority (-100..100), which the job's five-step priority cannot give back.
    priority: int
    #: `run_after` as epoch seconds, None if it had none.
    run_after: float | None


def import_task(path: str) -> Task[Any, Any]:
    """The `Task` a module binds at `path` (the `@task` decorator rebinds the function's name)."""
    try:
        found = import_string(path)
    except ImportError as exc:
        raise InvalidTask(f"task {path!r} cannot be imported: {exc}") from exc
    if not isinstance(found, Task):
        raise InvalidTask(f"{path!r} is not a task (decorate the function with @task), got {found!r}")
    return found


def restore_task(data: TaskData) -> Task[Any, Any]:
    """The task as it was enqueued (priority, queue, run_after, backend), without validating it again.

    Validation ran at enqueue; running it again here could refuse a job of yesterday because today's
    settings changed (a queue removed), and then its result could not even be read.
    """
    task = import_task(data["task_path"])
    restored = object.__new__(type(task))
    for field in dataclasses.fields(task):
        object.__setattr__(restored, field.name, getattr(task, field.name))
    object.__setattr__(restored, "priority", data["priority"])
    object.__setattr__(restored, "queue_name", data["queue_name"])
    object.__setattr__(restored, "backend", data["backend"])
    object.__setattr__(restored, "run_after", moment(data["run_after"]))
    return restored


def moment(ts: float | None) -> datetime | None:
    """Epoch seconds as Django hands out times: aware in UTC under USE_TZ, naive local otherwise."""
    if ts is None:
        return None
    value = datetime.fromtimestamp(ts, UTC)
    return value if settings.USE_TZ else timezone.make_naive(value)


def task_error(error: dict[str, Any]) -> TaskError:
    """A failed run's error as Django's `TaskError` (an importable class path and the traceback)."""
    kind = str(error.get("type") or "Exception")
    return TaskError(
        exception_class_path=kind if "." in kind else f"builtins.{kind}",
        traceback=str(error.get("traceback") or error.get("message") or ""),
    )


def task_result(job: Job, attempts: Sequence[Attempt], task: Task[Any, Any]) -> TaskResult[Any]:
    """The `TaskResult` of `job`: one worker id per run (the running one included), one error per
    failed run, the return value once it succeeded."""
    worker_ids = [a.worker_id or "" for a in attempts]
    if job.status is JobStatus.Processing and job.worker_id is not None and len(worker_ids) < job.attempts:
        worker_ids.append(job.worker_id)
    first_start = attempts[0].started_at if attempts else job.started_at
    result: TaskResult[Any] = TaskResult(
        task=task,
        id=job.id,
        status=STATUSES[job.status],
        enqueued_at=moment(job.created_at),
        started_at=moment(first_start),
        finished_at=moment(job.finished_at) if job.status.is_final else None,
        last_attempted_at=moment(job.started_at),
        args=job.data["args"],
        kwargs=job.data["kwargs"],
        backend=task.backend,
        errors=[task_error(a.error) for a in attempts if a.error is not None],
        worker_ids=worker_ids,
    )
    if job.status is JobStatus.Succeeded:
        object.__setattr__(result, "_return_value", job.result)
    return result
