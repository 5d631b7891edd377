"""SQLite files for Django and the jobmaster master (enqueue does not join transactions here)."""

import os

from shop.settings import *  # noqa: F403
from shop.settings import JOBMASTER, QUEUES

DIRECTORY = os.environ.get("JMTEST_DJANGO_DIR", ".")
NAME = os.path.join(DIRECTORY, "django.sqlite3")
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": NAME,
        # A file, not the test runner's in-memory default, so the worker process shares it.
        "TEST": {"NAME": NAME},
        "OPTIONS": {"timeout": 30},
    }
}
TASKS = {
    "default": {
        "BACKEND": "jobmaster.contrib.django.JobMasterBackend",
        "QUEUES": QUEUES,
        "OPTIONS": {**JOBMASTER, "master": f"sqlite:///{os.path.join(DIRECTORY, 'jobmaster.db')}"},
    }
}
