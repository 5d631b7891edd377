"""PostgreSQL for Django and the jobmaster master, in one database: enqueue joins transactions."""

import os

from shop.settings import *  # noqa: F403
from shop.settings import JOBMASTER, QUEUES

NAME = os.environ.get("JMTEST_DJANGO_PG_DB", "jobmaster_django")
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": NAME,
        "USER": "postgres",
        "HOST": "127.0.0.1",
        "PORT": "5432",
        # The test runner's database is this one, so the worker process sees what the tests write.
        "TEST": {"NAME": NAME},
    }
}
TASKS = {
    "default": {
        "BACKEND": "jobmaster.contrib.django.JobMasterBackend",
        "QUEUES": QUEUES,
        "OPTIONS": {
            **JOBMASTER,
            "master": f"postgresql://postgres@127.0.0.1:5432/{NAME}",
            "database": "default",
        },
    }
}
