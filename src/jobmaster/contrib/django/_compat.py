"""The `django.tasks` API, from Django 6 or, before it, from the `django-tasks` backport.

Django 6 needs Python 3.12; on Python 3.11 the backport (the same API under `django_tasks`, which
`jobmaster[django]` installs there) runs on Django 5.2. Everything in this package imports the API
from here, so nothing else knows which of the two it got.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jobmaster.contrib import missing_extra

if TYPE_CHECKING:
    from django_tasks import TaskContext, TaskResult, task_backends
    from django_tasks.backends.base import BaseTaskBackend
    from django_tasks.base import (
        DEFAULT_TASK_QUEUE_NAME,
        TASK_MAX_PRIORITY,
        TASK_MIN_PRIORITY,
        Task,
        TaskError,
    )
    from django_tasks.base import TaskResultStatus as _TaskResultStatus
    from django_tasks.exceptions import InvalidTaskError as InvalidTask
    from django_tasks.exceptions import TaskResultDoesNotExist
    from django_tasks.signals import task_enqueued, task_finished, task_started
    from django_tasks.utils import normalize_json

    #: A TextChoices, whose members mypy cannot see without Django's stubs.
    TaskResultStatus: Any = _TaskResultStatus
else:
    try:
        from django.tasks import TaskContext, TaskResult, TaskResultStatus, task_backends
        from django.tasks import exceptions as _exceptions
        from django.tasks.backends.base import BaseTaskBackend
        from django.tasks.base import (
            DEFAULT_TASK_QUEUE_NAME,
            TASK_MAX_PRIORITY,
            TASK_MIN_PRIORITY,
            Task,
            TaskError,
        )
        from django.tasks.signals import task_enqueued, task_finished, task_started
        from django.utils.json import normalize_json
    except ModuleNotFoundError:
        try:
            from django_tasks import TaskContext, TaskResult, TaskResultStatus, task_backends
            from django_tasks import exceptions as _exceptions
            from django_tasks.backends.base import BaseTaskBackend
            from django_tasks.base import (
                DEFAULT_TASK_QUEUE_NAME,
                TASK_MAX_PRIORITY,
                TASK_MIN_PRIORITY,
                Task,
                TaskError,
            )
            from django_tasks.signals import task_enqueued, task_finished, task_started
            from django_tasks.utils import normalize_json
        except ModuleNotFoundError as exc:
            raise missing_extra("jobmaster.contrib.django", "django", exc) from None
    # Django 6 and the newest backport say InvalidTask, the backport 0.12 InvalidTaskError.
    InvalidTask = getattr(_exceptions, "InvalidTask", None) or _exceptions.InvalidTaskError
    TaskResultDoesNotExist = _exceptions.TaskResultDoesNotExist

__all__ = [
    "DEFAULT_TASK_QUEUE_NAME",
    "TASK_MAX_PRIORITY",
    "TASK_MIN_PRIORITY",
    "BaseTaskBackend",
    "InvalidTask",
    "Task",
    "TaskContext",
    "TaskError",
    "TaskResult",
    "TaskResultDoesNotExist",
    "TaskResultStatus",
    "normalize_json",
    "task_backends",
    "task_enqueued",
    "task_finished",
    "task_started",
]
