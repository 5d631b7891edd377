"""Inline and capture modes: scheduling without a cluster, for unit tests.

In inline mode `schedule` (and `schedule_many`, and their sync twins) runs each job's handler at once,
in the caller's process, through the app's run middleware, and returns when it is done; nothing is
written and no database is opened. Capture mode only records the jobs. Both plug in as the innermost
schedule middleware, so the app's own schedule middleware still runs first.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any

import orjson

from jobmaster.errors import JobTimeoutError
from jobmaster.handlers.context import context_for
from jobmaster.handlers.registry import Handler, HandlerFunc
from jobmaster.jobs import codec
from jobmaster.jobs.model import Job, JobStatus
from jobmaster.jobs.outcomes import Discard, Snooze
from jobmaster.runtime.executor.invoke import invoke
from jobmaster.runtime.executor.outcome import error_details
from jobmaster.testing.recording import Recording

if TYPE_CHECKING:
    from jobmaster.app import JobMaster

#: The worker id inline runs carry (`ctx.worker_id`, `job.worker_id`).
INLINE_WORKER = "inline"


@dataclass(frozen=True, slots=True)
class Run:
    """One inline run: the job as it ended (its `result` as the master would store it: the return
    value through JSON), and what the handler raised."""

    job: Job
    error: BaseException | None = None

    @property
    def status(self) -> JobStatus:
        return self.job.status

    @property
    def result(self) -> Any:
        return self.job.result


class Capture:
    """Records what an app schedules, writing and running nothing (`jobmaster.testing.capture`)."""

    def __init__(self, app: JobMaster) -> None:
        self.app = app
        self.recording = Recording(app, self._take)

    async def _take(self, jobs: list[Job]) -> None:
        """Capture mode keeps the jobs only (the recording has them)."""

    def scheduled_jobs(self, handler: str | HandlerFunc | None = None) -> list[Job]:
        return self.recording.scheduled_jobs(handler)

    def __enter__(self) -> Capture:
        self.recording.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.recording.stop()

    async def __aenter__(self) -> Capture:
        return self.__enter__()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(kind, exc, tb)


class Inline(Capture):
    """Runs every job at once in the scheduling call (`jobmaster.testing.inline`).

    Each job runs once, retries aside: an exception the handler raises comes out of the scheduling
    call when `raise_errors` (so `pytest.raises` catches it), and is kept in `runs` either way. A
    job's `timeout` holds for async handlers. `Discard` ends the run Failed without raising, and
    `Snooze` leaves the job held for later (it does not run again inline). Handlers that schedule
    jobs run those inline too, before they return.
    """

    def __init__(self, app: JobMaster, *, raise_errors: bool = True) -> None:
        super().__init__(app)
        self.raise_errors = raise_errors
        #: Every inline run, in the order they finished.
        self.runs: list[Run] = []
        self._threads: ThreadPoolExecutor | None = None

    async def _take(self, jobs: list[Job]) -> None:
        for job in jobs:
            run = await self._run(self.app.registry.resolve(job.definition_id), job)
            self.runs.append(run)
            if self.raise_errors and run.error is not None and not isinstance(run.error, Discard):
                raise run.error

    async def _run(self, handler: Handler, job: Job) -> Run:
        started = time.time()
        job = job.copy(status=JobStatus.Processing, attempts=1, started_at=started, worker_id=INLINE_WORKER)
        args = (context_for(job, INLINE_WORKER, self.app.state),) if handler.wants_context else ()
        call = partial(invoke, handler, args, job.data, self._thread_pool())
        deadline = asyncio.timeout(job.timeout_s)
        try:
            async with deadline:
                result = await (call() if handler.chain is None else handler.chain(call, job))
            if result is not None and not isinstance(result, Exception):
                stored = codec.encode_result(result, job.definition_id, self.app.config.max_result_bytes)
                result = orjson.loads(stored)
        except Exception as exc:
            # A TimeoutError the handler raised itself is its own error, not the job's timeout.
            expired = deadline.expired()
            result = JobTimeoutError(f"job ran past its timeout of {job.timeout_s}s") if expired else exc
        if isinstance(result, Snooze):
            return Run(job.copy(status=JobStatus.HeldOnMaster, scheduled_at=time.time() + result.seconds))
        if isinstance(result, Exception):
            return Run(self._ended(job, JobStatus.Failed, result), error=result)
        ended = self._ended(job, JobStatus.Succeeded, None)
        ended.result = result
        return Run(ended)

    @staticmethod
    def _ended(job: Job, status: JobStatus, error: BaseException | None) -> Job:
        last_error = None if error is None else error_details(error)
        return job.copy(status=status, finished_at=time.time(), last_error=last_error)

    def _thread_pool(self) -> ThreadPoolExecutor:
        """Sync handlers run in a thread, as in a worker (lazily: most tests have none)."""
        if self._threads is None:
            self._threads = ThreadPoolExecutor(4, thread_name_prefix="jobmaster-inline")
        return self._threads

    def results(self, handler: str | HandlerFunc | None = None) -> list[Any]:
        """What the handler (every handler, when None) returned, run by run, through JSON as the
        master stores it (None for a run that failed)."""
        wanted = None if handler is None else self.app.registry.resolve(handler).definition_id
        return [r.result for r in self.runs if wanted is None or r.job.definition_id == wanted]

    def __enter__(self) -> Inline:
        super().__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        super().__exit__(kind, exc, tb)
        if self._threads is not None:
            self._threads.shutdown(wait=True)
            self._threads = None

    async def __aenter__(self) -> Inline:
        return self.__enter__()


def inline(app: JobMaster, *, raise_errors: bool = True) -> Inline:
    """`with inline(jm) as runs:` (or `async with`): scheduling runs the handler at once."""
    return Inline(app, raise_errors=raise_errors)


def capture(app: JobMaster) -> Capture:
    """`with capture(jm):` (or `async with`): scheduling records the jobs, writes and runs nothing."""
    return Capture(app)
