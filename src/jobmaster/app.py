"""The application object: configuration, handlers, scheduling, management, running workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
import zoneinfo
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar, Unpack, overload

from jobmaster.config.loading import KEYWORD, load_with_sources, validate
from jobmaster.config.settings import WorkerConfig
from jobmaster.durations import parse_duration
from jobmaster.errors import ConfigError, NotOpenError, QueryError, ScheduleError
from jobmaster.events import EventBus, JobScheduled
from jobmaster.handlers.context import JobContext
from jobmaster.handlers.registry import HandlerFunc, HandlerRegistry
from jobmaster.handlers.typed import ContextJobHandler, HandlerDecorator, JobHandler, handler_object, unwrap
from jobmaster.inspection import Inspector
from jobmaster.jobs.model import Attempt, Job, JobFilter, JobStatus, new_job_ids
from jobmaster.jobs.options import QUERY_NAMES, HandlerOptions, JobOptions, JobQuery, check_names
from jobmaster.jobs.paging import JobPage, decode_cursor, encode_cursor
from jobmaster.jobs.retry import RetryPolicy
from jobmaster.master.base import StatusCount
from jobmaster.middleware import RunMiddleware, ScheduleMiddleware, compose_schedule
from jobmaster.operations.management import Manager
from jobmaster.operations.scheduling import Options, build_job, due_time, prepare
from jobmaster.results import ResultWaiter
from jobmaster.runtime.duties import Duty
from jobmaster.runtime.publisher import Publisher
from jobmaster.runtime.runtime import Runtime
from jobmaster.runtime.services import AppServices
from jobmaster.runtime.startup import StartWait
from jobmaster.schedules.operations import RecurringOptions, ScheduleInfo, Schedules

if TYPE_CHECKING:
    from jobmaster.sync import SyncJobMaster

log = logging.getLogger("jobmaster")

P = ParamSpec("P")
R = TypeVar("R")
HandlerT = TypeVar("HandlerT", bound=HandlerFunc)
RunMiddlewareT = TypeVar("RunMiddlewareT", bound=RunMiddleware)
ScheduleMiddlewareT = TypeVar("ScheduleMiddlewareT", bound=ScheduleMiddleware)
Hook = Callable[[SimpleNamespace], Awaitable[None] | None]


class JobMaster:
    """One cluster as seen from this process.

    A process that only schedules opens it (`async with jm:`) and is a pure publisher; a process that
    runs workers calls `run()`. Both share the same configuration and handler registry.
    """

    def __init__(
        self,
        cluster_id: str | None = None,
        master: str | None = None,
        *,
        config_file: str | Path | None = None,
        agents: dict[str, str] | None = None,
        workers: Sequence[WorkerConfig | dict[str, Any]] | None = None,
        **settings: Any,
    ) -> None:
        extra: dict[str, Any] = {}
        if agents is not None:
            extra["agents"] = [{"name": n, "url": u} for n, u in agents.items()]
        if workers is not None:
            extra["workers"] = [w.model_dump() if isinstance(w, WorkerConfig) else w for w in workers]
        self.config, self.config_sources = load_with_sources(
            config_file, cluster_id=cluster_id, master=master, **extra, **settings
        )
        self.registry = HandlerRegistry()
        #: Typed events of this process's engine: `jm.events.subscribe(JobFailed, callback)`.
        self.events = EventBus()
        self._schedule_middleware: list[ScheduleMiddleware] = []
        #: Background loops of this app's workers besides the built-in ones (`add_duty`).
        self.duties: list[Duty] = []
        #: Recurring schedules: declared with `recurring`, added with `add_schedule`, operated here.
        self.schedules = Schedules(self)
        self.duties.append(self.schedules.duty)
        self.state = SimpleNamespace()
        self._startup: list[Hook] = []
        self._shutdown: list[Hook] = []
        self._runtime: Runtime | None = None
        self._publisher: Publisher | None = None
        self._manager: Manager | None = None
        self._results: ResultWaiter | None = None
        self._stop_requested: asyncio.Event | None = None

    # ---- configuration -----------------------------------------------------------------------

    def _reconfigure(self, **changes: Any) -> None:
        if self._runtime is not None:
            raise ConfigError("configuration cannot change while the cluster is open")
        values = self.config.model_dump()
        values.update(changes)
        self.config = validate(values)
        self.config_sources.update(dict.fromkeys(changes, KEYWORD))

    def add_agent(self, name: str, url: str) -> JobMaster:
        agents = [a.model_dump() for a in self.config.agents]
        self._reconfigure(agents=[*agents, {"name": name, "url": url}])
        return self

    def add_worker(self, **settings: Any) -> JobMaster:
        """Add a worker; settings are those of WorkerConfig (name, agent, lane, mode, buckets...)."""
        name = settings.pop("name", None) or f"worker-{len(self.config.workers) + 1}"
        workers = [w.model_dump() for w in self.config.workers]
        self._reconfigure(workers=[*workers, {"name": name, **settings}])
        return self

    @property
    def timezone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.config.timezone)

    def localize(self, naive: datetime) -> datetime:
        """Read a naive datetime as wall-clock time in the cluster's time zone, explicitly."""
        if naive.tzinfo is not None:
            raise ScheduleError("localize() expects a naive datetime")
        return naive.replace(tzinfo=self.timezone)

    # ---- handlers and hooks ------------------------------------------------------------------

    @overload
    def handler(
        self,
        func: Callable[Concatenate[JobContext, P], R],
        *,
        name: str | None = None,
        retry: RetryPolicy | None = None,
        middleware: Sequence[RunMiddleware] = (),
        **options: Unpack[HandlerOptions],
    ) -> ContextJobHandler[P, R]: ...

    @overload
    def handler(
        self,
        func: Callable[P, R],
        *,
        name: str | None = None,
        retry: RetryPolicy | None = None,
        middleware: Sequence[RunMiddleware] = (),
        **options: Unpack[HandlerOptions],
    ) -> JobHandler[P, R]: ...

    @overload
    def handler(
        self,
        func: None = None,
        *,
        name: str | None = None,
        retry: RetryPolicy | None = None,
        middleware: Sequence[RunMiddleware] = (),
        **options: Unpack[HandlerOptions],
    ) -> HandlerDecorator: ...

    def handler(
        self,
        func: HandlerFunc | None = None,
        *,
        name: str | None = None,
        retry: RetryPolicy | None = None,
        middleware: Sequence[RunMiddleware] = (),
        **options: Unpack[HandlerOptions],
    ) -> Any:
        """Register an `async def` or plain `def` function as a job handler.

        Returns a handler object (`jobmaster.handlers.typed`): callable as the function, and with
        `.schedule(...)`, `.schedule_many(...)`, `.options(...)` and `.sync` typed by its parameters.
        `retry` replaces the cluster's retry policy for this handler; `middleware` wraps its runs,
        inside the app's own run middleware.
        """

        def register(f: HandlerFunc) -> Any:
            plain = unwrap(f)
            registered = self.registry.register(
                plain, name=name, retry=retry, middleware=middleware, **options
            )
            plain.__jobmaster_id__ = registered.definition_id  # type: ignore[attr-defined]
            return handler_object(self, registered)

        return register(func) if func is not None else register

    def recurring(
        self, expression: str | None = None, *, name: str | None = None, **options: Unpack[RecurringOptions]
    ) -> Callable[[HandlerT], HandlerT]:
        """Declare a recurring schedule of the decorated handler (several per handler, each with its
        own `name`; the handler's id by default): a cron or readable `expression`, or `every=`.

        Validated now (a bad expression, zone, interval or name is a `ScheduleError`, with nothing
        written); the workers write it to the master when they start, and retire it once a deploy
        has removed it from the code of every running process (`schedule_retire_after`).
        """
        if self._runtime is not None:
            raise ConfigError("schedules cannot be declared while the cluster is open")
        return self.schedules.recurring(expression, name=name, **options)

    async def add_schedule(
        self,
        handler: str | HandlerFunc,
        expression: str | None = None,
        *,
        name: str | None = None,
        **options: Unpack[RecurringOptions],
    ) -> ScheduleInfo:
        """Add a dynamic schedule at run time: kept in the master until `remove_schedule`."""
        return await self.schedules.add(handler, expression, name=name, **options)

    async def remove_schedule(self, name: str) -> None:
        await self.schedules.remove(name)

    def run_middleware(self, layer: RunMiddlewareT) -> RunMiddlewareT:
        """Wrap every handler's runs in this process: `async def layer(call_next, job)` (see
        `jobmaster.middleware`). The first registered is the outermost."""
        self.registry.add_run_middleware(layer)
        return layer

    def schedule_middleware(self, layer: ScheduleMiddlewareT) -> ScheduleMiddlewareT:
        """Wrap every scheduling call of this process: `async def layer(call_next, jobs)` (see
        `jobmaster.middleware`). The first registered is the outermost."""
        if not callable(layer):
            raise ConfigError(f"schedule middleware must be callable, got {layer!r}")
        self._schedule_middleware.append(layer)
        return layer

    def add_duty(self, duty: Duty) -> Duty:
        """Run `duty` (see `jobmaster.runtime.duties`) in every worker of a mode it wants."""
        if self._runtime is not None:
            raise ConfigError("duties cannot be added while the cluster is open")
        self.duties.append(duty)
        return duty

    def on_startup(self, hook: Hook) -> Hook:
        """Run once per worker process before any job, to set up shared resources on `state`."""
        self._startup.append(hook)
        return hook

    def on_shutdown(self, hook: Hook) -> Hook:
        self._shutdown.append(hook)
        return hook

    # ---- lifecycle ---------------------------------------------------------------------------

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise NotOpenError("JobMaster is not open: use `async with jm:` or `await jm.open()`")
        return self._runtime

    @property
    def services(self) -> AppServices:
        """What this app's runtime is given of it (configuration, handlers, state, events, duties)."""
        return AppServices(self.config, self.registry, self.state, self.events, self.duties)

    @property
    def is_open(self) -> bool:
        return self._runtime is not None

    async def open(self, *, start_timeout: float | str | None = 0) -> None:
        """Connect to the master and agents and apply migrations (no workers run).

        A server that cannot be reached fails at once by default (`start_timeout=0`: a publisher in a
        web request must not hang); `run()` waits for it instead (see there).
        """
        await self._open(StartWait(_seconds(start_timeout, "start_timeout")))

    async def _open(self, waiting: StartWait) -> None:
        if self._runtime is not None:
            return
        runtime = Runtime(self.services)
        await runtime.open(waiting)
        self._runtime = runtime
        self._publisher = Publisher(runtime)
        self._manager = Manager(runtime.master, runtime.agents, self._wake)
        self._results = ResultWaiter(
            runtime.master, self._manager.get, self.events, runtime.hub, self.config.idle_poll_interval
        )

    async def close(self) -> None:
        """Close the connections; the app may be opened again (with a changed configuration too)."""
        if self._runtime is not None:
            runtime, self._runtime = self._runtime, None
            # A scheduling call after this opens the cluster anew instead of reaching the closed one.
            self._publisher = self._manager = self._results = None
            await runtime.close()

    async def __aenter__(self) -> JobMaster:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _wake(self, topic: str) -> None:
        self.runtime.hub.master_topic(topic)
        await self.runtime.master.notify(topic)

    async def _run_hooks(self, hooks: list[Hook]) -> None:
        for hook in hooks:
            result = hook(self.state)
            if asyncio.iscoroutine(result):
                await result

    async def run(self, *, handle_signals: bool = True, start_timeout: float | str | None = None) -> None:
        """Run this process's workers until `stop()` or SIGTERM/SIGINT, then stop gracefully.

        A second signal stops at once; the master's lease recovery then returns whatever was left.
        A master or agent that cannot be reached at start is waited for, with back-off: for as long
        as it takes by default, up to `start_timeout` (seconds or "60s") if given, and not at all
        with 0 (for an orchestrator that restarts the process itself).
        """
        if not self.config.workers:
            raise ConfigError("no workers configured: add_worker() or a [[workers]] table")
        opened_here = self._runtime is None
        # One wait, one deadline: connecting, migrating, and registering the workers and buckets.
        waiting = StartWait(_seconds(start_timeout, "start_timeout"))
        await self._open(waiting)
        self._stop_requested = asyncio.Event()
        main = asyncio.current_task()
        loop = asyncio.get_running_loop()
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._on_signal, main)
        try:
            await self._run_hooks(self._startup)
            async with asyncio.TaskGroup() as group:
                workers = group.create_task(self.runtime.run_workers(waiting))
                await self._stop_requested.wait()
                self.runtime.stop_workers()
                await workers
            await self._run_hooks(self._shutdown)
        finally:
            if handle_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
            if opened_here:
                await self.close()

    def _on_signal(self, main: asyncio.Task[Any] | None) -> None:
        if self._stop_requested is not None and not self._stop_requested.is_set():
            log.info("stop requested: finishing running jobs (signal again to stop at once)")
            self._stop_requested.set()
        elif main is not None:
            log.warning("second stop signal: stopping at once")
            main.cancel()

    def stop(self) -> None:
        if self._stop_requested is not None:
            self._stop_requested.set()

    @contextlib.asynccontextmanager
    async def running(self, *, start_timeout: float | str | None = None) -> AsyncIterator[JobMaster]:
        """Run the workers in the background of an ASGI lifespan (or any async block).

        The host application owns the signals, so none are installed; leaving the block is the
        graceful stop: running jobs finish within `shutdown_grace` and buffered ones go back.
        """
        task = asyncio.create_task(self.run(handle_signals=False, start_timeout=start_timeout))
        # No bound of its own: the start-up's wait is the bound, and ends `task` when it runs out.
        ready = asyncio.create_task(self.wait_ready(None))
        await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            ready.cancel()
            task.result()
        await ready
        try:
            yield self
        finally:
            self.stop()
            await task

    async def wait_ready(self, timeout: float | None = 30.0) -> None:
        """Wait until every local worker has registered its buckets (tests, embedding); None
        waits for as long as it takes."""
        try:
            async with asyncio.timeout(timeout):
                while not self._runtime or len(self._runtime.workers) < len(self.config.workers):
                    await asyncio.sleep(0.01)
                await asyncio.gather(*(w.ready() for w in self._runtime.workers))
        except TimeoutError:
            raise TimeoutError("workers did not start in time") from None

    # ---- scheduling --------------------------------------------------------------------------

    async def schedule(
        self,
        handler: str | HandlerFunc,
        data: dict[str, Any] | None = None,
        *,
        connection: Any = None,
        **options: Unpack[JobOptions],
    ) -> str:
        """Schedule one job; returns its id once the job is durable.

        With `connection` (PostgreSQL), the job is written in the caller's open transaction: it
        exists if and only if that transaction commits, and the commit wakes a coordinator at once.
        """
        resolved = self.registry.resolve(handler)
        job = build_job(resolved, data, Options.of(options, resolved.definition_id), self.config)
        await self._publish([job], connection)
        return job.id

    async def schedule_many(
        self,
        handler: str | HandlerFunc,
        items: Iterable[dict[str, Any]],
        *,
        connection: Any = None,
        **options: Unpack[JobOptions],
    ) -> list[str]:
        """Schedule many jobs of one handler in one batch; all are validated before any is written."""
        resolved = self.registry.resolve(handler)
        template = prepare(resolved, Options.of(options, resolved.definition_id), self.config)
        batch = list(items)
        jobs = [
            template.job(data, job_id) for data, job_id in zip(batch, new_job_ids(len(batch)), strict=True)
        ]
        await self._publish(jobs, connection)
        return [j.id for j in jobs]

    async def _publish(self, jobs: list[Job], connection: Any) -> None:
        if self._schedule_middleware:
            innermost = partial(self._write, connection=connection)
            await compose_schedule(self._schedule_middleware, innermost)(jobs)
        else:
            await self._write(jobs, connection)

    async def _write(self, jobs: list[Job], connection: Any) -> None:
        """The innermost step of a scheduling call: it opens the cluster on first use, so a schedule
        middleware that takes the jobs elsewhere (`jobmaster.testing`'s inline mode) needs no
        database."""
        if self._publisher is None:
            await self.open()
        publisher = self._publisher
        assert publisher is not None
        await publisher.publish(jobs, connection)
        if self.events.wants(JobScheduled):
            for job in jobs:
                self.events.emit(JobScheduled(job))

    # ---- management --------------------------------------------------------------------------

    @property
    def manager(self) -> Manager:
        if self._manager is None:
            raise NotOpenError("JobMaster is not open: use `async with jm:` or `await jm.open()`")
        return self._manager

    async def get_job(self, job_id: str) -> Job:
        return await self.manager.get(job_id)

    async def result(self, job_id: str, *, timeout: float | timedelta | str | None = None) -> Any:
        """Wait for the job to end and return what its handler returned (None if it returned None).

        Raises `JobNotSucceededError` if the job ended Failed or Cancelled, `ResultTimeoutError` if it
        has not ended within `timeout` (seconds, a `timedelta` or "30s"; None waits for as long as it
        takes), and `JobNotFoundError` for an unknown id. The wait is woken by the job's end (see
        `jobmaster.results` for how each master tells it).
        """
        seconds = _seconds(timeout, "timeout")
        if self._results is None:
            raise NotOpenError("JobMaster is not open: use `async with jm:` or `await jm.open()`")
        return await self._results.result(job_id, seconds)

    async def job_attempts(self, job_id: str) -> list[Attempt]:
        return await self.runtime.master.attempts(job_id)

    async def list_jobs(
        self, *, limit: int = 100, offset: int = 0, after: str | None = None, **query: Unpack[JobQuery]
    ) -> list[Job]:
        """Up to `limit` jobs matching every filter given, latest due time first (ties by id,
        descending).

        `after` is a cursor (`JobPage.next_cursor`): the jobs after the position it names. To walk
        more than one page use `list_jobs_page`, which returns the cursor of the next page.
        `offset` is deprecated and kept for compatibility: it skips that many jobs, but the database
        still reads every skipped row, so a deep page gets slower as the table grows, and jobs
        inserted between two calls shift the pages (a job shown twice, or skipped).
        """
        return await self.runtime.master.list_jobs(self._criteria(query, limit, offset, after))

    async def list_jobs_page(
        self, *, limit: int = 100, after: str | None = None, **query: Unpack[JobQuery]
    ) -> JobPage:
        """One page of `list_jobs` and the cursor of the next: pass `page.next_cursor` as `after`
        (with the same filters) until it is None.

        Each page is read from its position by index (keyset paging), so it costs the same however
        deep it is; jobs inserted or changed meanwhile never make a page repeat or skip one of the
        jobs that were listed in their place before.
        """
        criteria = self._criteria(query, limit, 0, after)
        # One job more than the page tells whether another page follows.
        found = await self.runtime.master.list_jobs(replace(criteria, limit=limit + 1))
        jobs = found[:limit]
        return JobPage(jobs, encode_cursor(jobs[-1]) if len(found) > limit else None)

    async def count_jobs(self, **query: Unpack[JobQuery]) -> int:
        return await self.runtime.master.count_jobs(self._criteria(query, 1, 0, None))

    async def counts(self) -> list[StatusCount]:
        return await self.runtime.master.count_by_status()

    async def cancel(self, job_id: str) -> Job:
        return await self.manager.cancel(job_id)

    async def reschedule(
        self,
        job_id: str,
        *,
        at: datetime | None = None,
        delay: float | timedelta | str | None = None,
    ) -> Job:
        return await self.manager.reschedule(job_id, due_time(at, delay, time.time()))

    async def retry(self, job_id: str) -> Job:
        return await self.manager.retry(job_id)

    def _criteria(self, query: JobQuery, limit: int, offset: int, after: str | None) -> JobFilter:
        problem = check_names(query, QUERY_NAMES, "listing jobs")
        if problem is not None:
            raise QueryError(problem)
        status, handler = query.get("status"), query.get("handler")
        if status is None:
            statuses: tuple[JobStatus, ...] = ()
        elif isinstance(status, JobStatus | str):
            statuses = (parse_status(status),)
        else:
            statuses = tuple(parse_status(s) for s in status)
        definition = None
        if handler is not None:
            definition = handler if isinstance(handler, str) else self.registry.resolve(handler).definition_id
        if not 1 <= limit <= 10_000:
            raise QueryError(f"limit must be in 1..10000, got {limit}")
        if after is not None and offset > 0:
            raise QueryError(f"give a cursor (after) or an offset, not both: offset {offset} with a cursor")
        return JobFilter(
            statuses=statuses,
            definition_id=definition,
            lane=query.get("lane"),
            scheduled_from=_timestamp(query.get("scheduled_from"), "scheduled_from"),
            scheduled_to=_timestamp(query.get("scheduled_to"), "scheduled_to"),
            metadata=query.get("metadata"),
            limit=limit,
            offset=max(0, offset),
            after=None if after is None else decode_cursor(after),
        )

    @property
    def inspect(self) -> Inspector:
        """Workers, buckets, agent counts and the drain of dead workers' buckets (`Inspector`)."""
        return Inspector(self)

    # ---- sync entry points -------------------------------------------------------------------

    @property
    def sync(self) -> SyncJobMaster:
        """Blocking wrappers for sync apps (Django, Flask, scripts)."""
        from jobmaster.sync import SyncJobMaster

        return SyncJobMaster.for_app(self)


def parse_status(value: JobStatus | str) -> JobStatus:
    if isinstance(value, JobStatus):
        return value
    for status in JobStatus:
        if status.name.lower() == value.strip().lower():
            return status
    raise QueryError(f"unknown status {value!r}; one of {', '.join(s.name for s in JobStatus)}")


def _timestamp(value: datetime | None, what: str) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise QueryError(f"{what} must be timezone-aware")
    return value.timestamp()


def _seconds(value: float | timedelta | str | None, what: str) -> float | None:
    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise ConfigError(f"{what}: {exc}") from None
    if seconds < 0:
        raise ConfigError(f"{what} must be >= 0, got {value!r}")
    return seconds
