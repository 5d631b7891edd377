"""Each leg of the test command tests the Django it claims: on Python 3.12 (the Django 6 leg of
scripts/test.sh) Django 6 and its own `django.tasks`; on 3.11 Django 5.2 and the `django-tasks`
backport. Without this, a lock that resolved to the wrong Django would pass both legs unnoticed."""

from __future__ import annotations

import sys

import django

from jobmaster.contrib.django._compat import Task


def test_the_integration_runs_on_the_django_this_python_gets() -> None:
    if sys.version_info >= (3, 12):
        assert django.VERSION[0] >= 6, django.get_version()
        assert Task.__module__ == "django.tasks.base"
    else:
        assert django.VERSION[:2] == (5, 2), django.get_version()
        assert Task.__module__ == "django_tasks.base"
