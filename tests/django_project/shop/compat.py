"""Django 6's task API, or the django-tasks backport's on Django 5.2 (Python 3.11)."""

try:
    from django.tasks import TaskResult, default_task_backend, task
    from django.tasks.exceptions import TaskResultDoesNotExist
    from django.tasks.signals import task_enqueued, task_finished, task_started
except ImportError:
    from django_tasks import TaskResult, default_task_backend, task
    from django_tasks.exceptions import TaskResultDoesNotExist
    from django_tasks.signals import task_enqueued, task_finished, task_started

__all__ = [
    "TaskResult",
    "TaskResultDoesNotExist",
    "default_task_backend",
    "task",
    "task_enqueued",
    "task_finished",
    "task_started",
]
