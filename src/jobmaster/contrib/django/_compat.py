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
    import importlib

    #: Where each name lives below the package root: the two packages lay the API out alike.
    _NAMES = {
        "": ("TaskContext", "TaskResult", "TaskResultStatus", "task_backends"),
        ".backends.base": ("BaseTaskBackend",),
        ".base": ("DEFAULT_TASK_QUEUE_NAME", "TASK_MAX_PRIORITY", "TASK_MIN_PRIORITY", "Task", "TaskError"),
        ".signals": ("task_enqueued", "task_finished", "task_started"),
        ".exceptions": ("TaskResultDoesNotExist",),
    }

    def _api(root: str, json_module: str) -> dict[str, Any]:
        """The names this package uses, from `root` (`django.tasks` or `django_tasks`)."""
        modules = {part: importlib.import_module(f"{root}{part}") for part in _NAMES}
        found = {name: getattr(modules[part], name) for part, names in _NAMES.items() for name in names}
        exceptions = modules[".exceptions"]
        # Django 6 and the newest backport say InvalidTask, the backport 0.12 InvalidTaskError.
        found["InvalidTask"] = getattr(exceptions, "InvalidTask", None) or exceptions.InvalidTaskError
        found["normalize_json"] = importlib.import_module(json_module).normalize_json
        return found

    try:
        globals().update(_api("django.tasks", "django.utils.json"))
    except ModuleNotFoundError:
        try:
            globals().update(_api("django_tasks", "django_tasks.utils"))
        except ModuleNotFoundError as exc:
            raise missing_extra("jobmaster.contrib.django", "django", exc) from None

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
