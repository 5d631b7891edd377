"""The one handler that runs every Django task: no task is registered with jobmaster one by one.

A job of this handler carries the task's import path and arguments; the worker imports the task,
calls it (with a `TaskContext` if it takes one), and sends Django's `task_started` and
`task_finished` signals around the call. Stale database connections are closed before and after
each task in the thread that runs it, as Django does around a request and its own worker around a
task, so a connection the database dropped meanwhile is never reused.
"""

from __future__ import annotations

import asyncio
import traceback
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from django.utils import timezone

from jobmaster.contrib.django._compat import (
    BaseTaskBackend,
    InvalidTask,
    Task,
    TaskContext,
    TaskError,
    TaskResult,
    TaskResultStatus,
    normalize_json,
    task_finished,
    task_started,
)
from jobmaster.contrib.django.results import TaskData, restore_task, task_result
from jobmaster.handlers.context import JobContext
from jobmaster.jobs.model import Job
from jobmaster.middleware import RunNext

if TYPE_CHECKING:
    from jobmaster.app import JobMaster

#: The handler's id: the same in every process, so any worker of the cluster runs any Django task.
HANDLER_ID = "jobmaster.contrib.django.run_task"

#: The job being run, set by the handler's own run middleware: the handler reads its creation time
#: and run count from it instead of reading the job back from the master.
_running_job: ContextVar[Job] = ContextVar("jobmaster_django_job")


async def remember_job(call_next: RunNext, job: Job) -> Any:
    token = _running_job.set(job)
    try:
        return await call_next()
    finally:
        _running_job.reset(token)


def register(jm: JobMaster, backend_class: type[BaseTaskBackend]) -> None:
    """Register the task runner on `jm` once (several TASKS aliases may share one JobMaster)."""
    if jm.registry.get(HANDLER_ID) is not None:
        return

    async def run_task(
        ctx: JobContext,
        task_path: str,
        args: list[Any],
        kwargs: dict[str, Any],
        backend: str,
        queue_name: str,
        priority: int,
        run_after: float | None,
    ) -> Any:
        job = _running_job.get()
        data = TaskData(
            task_path=task_path,
            args=args,
            kwargs=kwargs,
            backend=backend,
            queue_name=queue_name,
            priority=priority,
            run_after=run_after,
        )
        task = restore_task(data)
        # The first run needs no read: its history is empty. A retry reads its earlier runs.
        history = await jm.job_attempts(job.id) if job.attempts > 1 else []
        result = task_result(job, history, task)
        if len(result.worker_ids) < job.attempts:
            result.worker_ids.append(ctx.worker_id)
        object.__setattr__(result, "status", TaskResultStatus.RUNNING)
        object.__setattr__(result, "last_attempted_at", timezone.now())
        if asyncio.iscoroutinefunction(task.func):
            return await _run_async(task, result, backend_class)
        return await asyncio.to_thread(_run_sync, task, result, backend_class)

    jm.handler(run_task, name=HANDLER_ID, middleware=[remember_job])


def _arguments(task: Task[Any, Any], result: TaskResult[Any]) -> tuple[list[Any], dict[str, Any]]:
    args = list(result.args)
    if task.takes_context:
        args.insert(0, TaskContext(task_result=result))
    return args, dict(result.kwargs)


def _run_sync(task: Task[Any, Any], result: TaskResult[Any], sender: type[BaseTaskBackend]) -> Any:
    """Run a plain function in this worker thread, with Django's connection care and signals."""
    close_old_connections()
    try:
        task_started.send(sender=sender, task_result=result)
        args, kwargs = _arguments(task, result)
        try:
            value = _returned(task, task.func(*args, **kwargs))
        except BaseException as exc:
            _ended(result, exc)
            task_finished.send(sender=sender, task_result=result)
            raise
        _ended(result, None, value)
        task_finished.send(sender=sender, task_result=result)
        return value
    finally:
        close_old_connections()


async def _run_async(task: Task[Any, Any], result: TaskResult[Any], sender: type[BaseTaskBackend]) -> Any:
    """Run a coroutine function on the worker's loop; Django's own connection care runs in the thread
    where async code's ORM calls run (`sync_to_async`'s)."""
    await sync_to_async(close_old_connections)()
    try:
        await task_started.asend(sender=sender, task_result=result)
        args, kwargs = _arguments(task, result)
        try:
            value = _returned(task, await task.func(*args, **kwargs))
        except BaseException as exc:
            _ended(result, exc)
            await task_finished.asend(sender=sender, task_result=result)
            raise
        _ended(result, None, value)
        await task_finished.asend(sender=sender, task_result=result)
        return value
    finally:
        await sync_to_async(close_old_connections)()


def _returned(task: Task[Any, Any], value: Any) -> Any:
    """The return value as JSON stores it; one that is not JSON fails the run, naming the task."""
    try:
        return normalize_json(value)
    except (TypeError, ValueError) as exc:
        raise InvalidTask(f"task {task.module_path!r} returned a value that is not JSON: {exc}") from None


def _ended(result: TaskResult[Any], error: BaseException | None, value: Any = None) -> None:
    object.__setattr__(result, "finished_at", timezone.now())
    if error is None:
        object.__setattr__(result, "status", TaskResultStatus.SUCCESSFUL)
        object.__setattr__(result, "_return_value", value)
        return
    object.__setattr__(result, "status", TaskResultStatus.FAILED)
    kind = type(error)
    result.errors.append(
        TaskError(
            exception_class_path=f"{kind.__module__}.{kind.__qualname__}",
            traceback="".join(traceback.format_exception(error)),
        )
    )
