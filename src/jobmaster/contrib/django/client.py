"""One JobMaster per TASKS entry in this process, and the event loop it lives on.

Django makes a backend object per thread (and per async context), and at import time of every
`@task`: the backend itself holds nothing. The JobMaster is made on first use and kept here, and
every call runs on the one loop its connections belong to: a worker's own loop (adopted by a startup
hook), else the loop of `jm.sync`, which lives as long as the process. Sync code submits to it and
waits; async code on it awaits directly; async code on any other loop (an ASGI server's, or the
short-lived one of `async_to_sync`) awaits the submitted call without blocking a thread. A caller's
loop is never adopted: it may close while the connections opened on it are still in use.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from jobmaster.app import JobMaster
from jobmaster.contrib.django._compat import BaseTaskBackend
from jobmaster.contrib.django.runner import register
from jobmaster.contrib.django.transaction import CallerThread

T = TypeVar("T")


class Client:
    def __init__(self, jm: JobMaster, backend_class: type[BaseTaskBackend]) -> None:
        self.jm = jm
        self.loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        register(jm, backend_class)
        jm.on_startup(self._adopt_worker_loop)

    def _adopt_worker_loop(self, state: SimpleNamespace) -> None:
        """In a worker the app runs on the worker's loop: tasks that enqueue tasks use that one."""
        self.loop = asyncio.get_running_loop()

    def _home(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self.loop is None:
                self.loop = self.jm.sync.loop
            return self.loop

    def _submit(self, call: Callable[[], Awaitable[T]]) -> concurrent.futures.Future[T]:
        home = self._home()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is home:
            raise RuntimeError(
                "a Django task backend's sync method was called on the event loop the JobMaster runs on;"
                " use its async twin (aenqueue, aget_result) there"
            )
        return asyncio.run_coroutine_threadsafe(_opened(self.jm, call), home)

    def call(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run `call()` on the app's loop and wait for it (sync code)."""
        return self._submit(call).result()

    def call_waiting(self, call: Callable[[], Awaitable[T]], caller: CallerThread) -> T:
        """As `call`, while running in this thread what the call hands back to it (`CallerThread`)."""
        return caller.wait(self._submit(call))

    async def acall(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run `call()` on the app's loop: directly on that loop (a worker's async task), else
        awaited from the caller's loop without blocking a thread of either."""
        home = self._home()
        if home is asyncio.get_running_loop():
            return await _opened(self.jm, call)
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_opened(self.jm, call), home))


async def _opened(jm: JobMaster, call: Callable[[], Awaitable[T]]) -> T:
    await jm.open()
    return await call()


_clients: dict[tuple[str, str], Client] = {}
_by_app: dict[int, Client] = {}
_lock = threading.Lock()


def client_for(
    alias: str, app_path: str | None, settings: dict[str, Any], backend_class: type[BaseTaskBackend]
) -> Client:
    """The client of TASKS entry `alias`: its `app` (an import path of a JobMaster) or a JobMaster
    made of its other OPTIONS; one per app object, however many entries share it."""
    key = (alias, repr((app_path, sorted(settings.items()))))
    with _lock:
        client = _clients.get(key)
        if client is None:
            jm = _load(alias, app_path, settings)
            client = _by_app.get(id(jm))
            if client is None:
                client = _by_app[id(jm)] = Client(jm, backend_class)
            _clients[key] = client
        return client


def _load(alias: str, app_path: str | None, settings: dict[str, Any]) -> JobMaster:
    if app_path is None:
        return JobMaster(**settings)
    if settings:
        raise ImproperlyConfigured(
            f"TASKS[{alias!r}]['OPTIONS']: give 'app' or jobmaster settings, not both"
            f" (got {', '.join(sorted(settings))} besides 'app'); configure the app object itself"
        )
    found = import_string(app_path.replace(":", "."))
    if not isinstance(found, JobMaster):
        raise ImproperlyConfigured(
            f"TASKS[{alias!r}]['OPTIONS']['app'] = {app_path!r} is not a JobMaster, got {found!r}"
        )
    return found
