"""Tasks are plain functions with Django's `@task`; nothing is registered with jobmaster."""

try:  # Django 6
    from django.tasks import task
except ImportError:  # Django 5.2 with the django-tasks backport (Python 3.11)
    from django_tasks import task


@task(queue_name="emails", priority=50)  # the `emails` lane, High priority
def greet(name: str) -> str:
    return f"Hello, {name}!"
