"""`JobMasterBackend`: Django's task framework (`django.tasks`) on a jobmaster cluster.

    TASKS = {
        "default": {
            "BACKEND": "jobmaster.contrib.django.JobMasterBackend",
            "QUEUES": ["default", "emails"],
            "OPTIONS": {"cluster_id": "shop", "master": "postgresql://db/shop", "database": "default"},
        }
    }

OPTIONS are the keywords of `JobMaster(...)` (or `"app": "shop.jobs:jm"`, the import path of a
JobMaster of your own), plus `"database"`: the Django database whose open transaction an enqueue
joins (see `transaction.py`). Nothing connects before the first enqueue or result read: Django makes
this object when it imports a module with an `@task`, and per thread.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import partial
from typing import Any, cast

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.utils import timezone

from jobmaster.config.settings import LANE_PATTERN
from jobmaster.contrib.django._compat import (
    DEFAULT_TASK_QUEUE_NAME,
    BaseTaskBackend,
    InvalidTask,
    Task,
    TaskResult,
    TaskResultDoesNotExist,
    TaskResultStatus,
    normalize_json,
    task_enqueued,
)
from jobmaster.contrib.django.client import Client, client_for
from jobmaster.contrib.django.priority import to_priority
from jobmaster.contrib.django.results import TaskData, import_task, restore_task, task_result
from jobmaster.contrib.django.runner import HANDLER_ID
from jobmaster.contrib.django.transaction import CallerThread, JoinedConnection, join_problem
from jobmaster.errors import JobNotFoundError
from jobmaster.jobs.model import DEFAULT_LANE
from jobmaster.jobs.options import JobOptions


def lane_of(queue_name: str) -> str:
    """Django's default queue runs in jobmaster's default lane; any other queue in the lane of its name."""
    return DEFAULT_LANE if queue_name == DEFAULT_TASK_QUEUE_NAME else queue_name


class JobMasterBackend(BaseTaskBackend):
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        options = dict(self.options)
        self.app_path: str | None = options.pop("app", None)
        #: The Django database alias whose open transaction an enqueue joins (None: never joins).
        self.database: str | None = options.pop("database", None)
        self.jobmaster_settings = options

    @property
    def client(self) -> Client:
        return client_for(self.alias, self.app_path, self.jobmaster_settings, type(self))

    # ---- validation --------------------------------------------------------------------------

    def validate_task(self, task: Task[Any, Any]) -> None:
        super().validate_task(task)
        to_priority(task.priority)
        lane = lane_of(task.queue_name)
        if not re.match(LANE_PATTERN, lane):
            raise InvalidTask(
                f"queue {task.queue_name!r} cannot be a jobmaster lane (letters, digits, '.', '_', '-';"
                " at most 64 characters)"
            )

    def _data(self, task: Task[Any, Any], args: Any, kwargs: Any) -> TaskData:
        if import_task(task.module_path).func is not task.func:
            raise InvalidTask(
                f"task {task.module_path!r} is not the @task bound at that import path, so a worker"
                " could not find it; define tasks at module level under their own name"
            )
        run_after = task.run_after
        if run_after is not None and timezone.is_naive(run_after):
            run_after = timezone.make_aware(run_after)
        return TaskData(
            task_path=task.module_path,
            args=_json(task, "positional arguments", args),
            kwargs=_json(task, "keyword arguments", kwargs),
            backend=self.alias,
            queue_name=task.queue_name,
            priority=task.priority,
            run_after=None if run_after is None else run_after.timestamp(),
        )

    # ---- enqueue -----------------------------------------------------------------------------

    def enqueue(self, task: Task[Any, Any], args: Any, kwargs: Any) -> TaskResult[Any]:
        self.validate_task(task)
        data = self._data(task, args, kwargs)
        connection = self._joined_connection()
        if connection is None:
            job_id = self.client.call(partial(self._schedule, data, None))
        else:
            caller = CallerThread()
            joined = JoinedConnection(connection, caller)
            job_id = self.client.call_waiting(partial(self._schedule, data, joined), caller)
        result = self._enqueued(task, job_id, data)
        task_enqueued.send(type(self), task_result=result)
        return result

    async def aenqueue(self, task: Task[Any, Any], args: Any, kwargs: Any) -> TaskResult[Any]:
        """Native async: no thread; Django's connections are sync-only, so this never joins a
        transaction (an async view has no `atomic()` block of its own)."""
        self.validate_task(task)
        data = self._data(task, args, kwargs)
        job_id = await self.client.acall(partial(self._schedule, data, None))
        result = self._enqueued(task, job_id, data)
        await task_enqueued.asend(type(self), task_result=result)
        return result

    async def _schedule(self, data: TaskData, connection: JoinedConnection | None) -> str:
        options: JobOptions = {
            "priority": to_priority(data["priority"]),
            "lane": lane_of(data["queue_name"]),
        }
        if data["run_after"] is not None:
            options["at"] = datetime.fromtimestamp(data["run_after"], UTC)
        return await self.client.jm.schedule(HANDLER_ID, dict(data), connection=connection, **options)

    def _enqueued(self, task: Task[Any, Any], job_id: str, data: TaskData) -> TaskResult[Any]:
        now = timezone.now()
        return TaskResult(
            task=task,
            id=job_id,
            status=TaskResultStatus.READY,
            enqueued_at=now,
            started_at=None,
            finished_at=None,
            last_attempted_at=None,
            args=data["args"],
            kwargs=data["kwargs"],
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )

    def _joined_connection(self) -> Any:
        """Django's connection when this enqueue runs inside its open transaction and may join it."""
        if self.database is None:
            return None
        connection = connections[self.database]
        if not connection.in_atomic_block:
            return None
        problem = join_problem(
            self.database, connection.settings_dict, connection.vendor, self.client.jm.config.master
        )
        if problem is not None:
            raise ImproperlyConfigured(f"TASKS[{self.alias!r}]: {problem}")
        return connection

    # ---- results -----------------------------------------------------------------------------

    def get_result(self, result_id: str) -> TaskResult[Any]:
        return self.client.call(partial(self._load, result_id))

    async def aget_result(self, result_id: str) -> TaskResult[Any]:
        return await self.client.acall(partial(self._load, result_id))

    async def _load(self, result_id: str) -> TaskResult[Any]:
        jm = self.client.jm
        try:
            job = await jm.get_job(result_id)
        except JobNotFoundError:
            raise TaskResultDoesNotExist(f"no task result with id {result_id!r}") from None
        if job.definition_id != HANDLER_ID:
            raise TaskResultDoesNotExist(
                f"{result_id!r} is a job of jobmaster handler {job.definition_id!r}, not a Django task"
            )
        attempts = await jm.job_attempts(job.id)
        task = restore_task(cast(TaskData, job.data))
        return task_result(job, attempts, task)

    # ---- system checks -----------------------------------------------------------------------

    def check(self, **kwargs: Any) -> Iterable[checks.CheckMessage]:
        """`manage.py check`: the settings are valid, and the joined database is the master's."""
        try:
            client = self.client
        except Exception as exc:
            return [checks.Error(f"TASKS[{self.alias!r}]: {exc}", id="jobmaster.E001")]
        if self.database is None:
            return []
        if self.database not in settings.DATABASES:
            return [
                checks.Error(
                    f"TASKS[{self.alias!r}]: OPTIONS['database'] = {self.database!r} is not in DATABASES",
                    id="jobmaster.E002",
                )
            ]
        connection = connections[self.database]
        problem = join_problem(
            self.database, connection.settings_dict, connection.vendor, client.jm.config.master
        )
        return (
            []
            if problem is None
            else [checks.Error(f"TASKS[{self.alias!r}]: {problem}", id="jobmaster.E003")]
        )


def _json(task: Task[Any, Any], what: str, values: Any) -> Any:
    """Arguments as JSON stores them (tuples become lists); anything else is refused at enqueue."""
    try:
        return normalize_json(values)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"task {task.module_path!r}: its {what} must be JSON (str, int, float, bool, None, lists and"
            f" dicts of them): {exc}; nothing was enqueued"
        ) from None
