"""Blocking entry points for sync applications.

They wrap the async API instead of duplicating it: one private event loop runs in a daemon thread per
app object, and every call is submitted to it. A sync web app therefore keeps one set of connections
for all its request threads.
"""

from __future__ import annotations

import asyncio
import builtins
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, Unpack

from jobmaster.handlers.registry import HandlerFunc
from jobmaster.jobs.model import Attempt, Job
from jobmaster.jobs.options import JobOptions, JobQuery
from jobmaster.jobs.paging import JobPage
from jobmaster.schedules.operations import RecurringOptions, ScheduleInfo

if TYPE_CHECKING:
    from jobmaster.app import JobMaster

T = TypeVar("T")


class SyncJobMaster:
    _instances: ClassVar[dict[int, SyncJobMaster]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, app: JobMaster) -> None:
        self.app = app
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="jobmaster-sync", daemon=True)
        self._thread.start()
        #: Blocking twins of `jm.schedules`' run-time operations.
        self.schedules = SyncSchedules(self)

    @classmethod
    def for_app(cls, app: JobMaster) -> SyncJobMaster:
        with cls._lock:
            instance = cls._instances.get(id(app))
            if instance is None:
                instance = cls._instances[id(app)] = cls(app)
            return instance

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop the app's calls run on (an integration hands it coroutines of its own)."""
        return self._loop

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def close(self) -> None:
        self._call(self.app.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        with self._lock:
            self._instances.pop(id(self.app), None)

    def schedule(
        self,
        handler: str | HandlerFunc,
        data: dict[str, Any] | None = None,
        **options: Unpack[JobOptions],
    ) -> str:
        return self._call(self.app.schedule(handler, data, **options))

    def schedule_many(
        self,
        handler: str | HandlerFunc,
        items: Iterable[dict[str, Any]],
        **options: Unpack[JobOptions],
    ) -> list[str]:
        return self._call(self.app.schedule_many(handler, list(items), **options))

    def add_schedule(
        self,
        handler: str | HandlerFunc,
        expression: str | None = None,
        *,
        name: str | None = None,
        **options: Unpack[RecurringOptions],
    ) -> ScheduleInfo:
        return self._call(self.app.add_schedule(handler, expression, name=name, **options))

    def remove_schedule(self, name: str) -> None:
        self._call(self.app.remove_schedule(name))

    def get_job(self, job_id: str) -> Job:
        return self._call(self._opened(self.app.get_job, job_id))

    def result(self, job_id: str, *, timeout: float | timedelta | str | None = None) -> Any:
        """Block until the job ends and return its result (see `JobMaster.result`)."""
        return self._call(self._opened(self.app.result, job_id, timeout=timeout))

    def job_attempts(self, job_id: str) -> list[Attempt]:
        return self._call(self._opened(self.app.job_attempts, job_id))

    def list_jobs(
        self, *, limit: int = 100, offset: int = 0, after: str | None = None, **query: Unpack[JobQuery]
    ) -> list[Job]:
        return self._call(self._opened(self.app.list_jobs, limit=limit, offset=offset, after=after, **query))

    def list_jobs_page(
        self, *, limit: int = 100, after: str | None = None, **query: Unpack[JobQuery]
    ) -> JobPage:
        return self._call(self._opened(self.app.list_jobs_page, limit=limit, after=after, **query))

    def count_jobs(self, **query: Unpack[JobQuery]) -> int:
        return self._call(self._opened(self.app.count_jobs, **query))

    def cancel(self, job_id: str) -> Job:
        return self._call(self._opened(self.app.cancel, job_id))

    def reschedule(self, job_id: str, **when: Any) -> Job:
        return self._call(self._opened(self.app.reschedule, job_id, **when))

    def retry(self, job_id: str) -> Job:
        return self._call(self._opened(self.app.retry, job_id))

    async def _opened(self, method: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        await self.app.open()
        return await method(*args, **kwargs)


class SyncSchedules:
    """`jm.sync.schedules`: the recurring schedules' operations (see `jm.schedules`), blocking.
    Each opens the app as its async twin does."""

    def __init__(self, sync: SyncJobMaster) -> None:
        self._sync = sync

    def list(self) -> builtins.list[ScheduleInfo]:
        return self._sync._call(self._sync.app.schedules.list())

    def get(self, name: str) -> ScheduleInfo:
        return self._sync._call(self._sync.app.schedules.get(name))

    def pause(self, name: str) -> ScheduleInfo:
        return self._sync._call(self._sync.app.schedules.pause(name))

    def resume(self, name: str) -> ScheduleInfo:
        return self._sync._call(self._sync.app.schedules.resume(name))

    def trigger(self, name: str) -> str:
        return self._sync._call(self._sync.app.schedules.trigger(name))

    def remove(self, name: str) -> None:
        self._sync._call(self._sync.app.schedules.remove(name))
