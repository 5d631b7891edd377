"""The worker side: a process set up as Django's, running the JobMaster of a TASKS entry."""

from __future__ import annotations

import django

from jobmaster.app import JobMaster
from jobmaster.contrib.django._compat import task_backends
from jobmaster.contrib.django.backend import JobMasterBackend, lane_of
from jobmaster.errors import ConfigError


def setup() -> None:
    """`django.setup()`, then the task runner registered on the app of every JobMasterBackend, so a
    worker started with `--app` of one of them runs Django tasks too."""
    django.setup(set_prefix=False)
    for alias in task_backends.settings:
        backend = task_backends[alias]
        if isinstance(backend, JobMasterBackend):
            backend.client  # noqa: B018 - makes the client, which registers the runner


def django_app(alias: str) -> JobMaster:
    """The JobMaster of TASKS entry `alias`; without workers of its own, one per queue of the entry
    (in the queue's lane), so a plain TASKS setting runs everything it can enqueue."""
    if alias not in task_backends.settings:
        raise ConfigError(f"no TASKS entry {alias!r} (configured: {', '.join(task_backends.settings)})")
    backend = task_backends[alias]
    if not isinstance(backend, JobMasterBackend):
        raise ConfigError(f"TASKS[{alias!r}] is a {type(backend).__name__}, not a JobMasterBackend")
    jm = backend.client.jm
    if not jm.config.workers:
        for lane in sorted({lane_of(q) for q in backend.queues} or {lane_of("default")}):
            jm.add_worker(name=f"django-{lane}", lane=lane)
    return jm
