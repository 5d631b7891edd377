"""A real cluster in the test's process, on a temporary SQLite file, drained on demand.

`async with cluster(jm) as c:` points `jm` at a fresh SQLite master in a temporary directory, gives
it one full worker per lane its handlers use, starts the workers with `jm.running()`, and restores
the app's own configuration afterwards. Jobs go through the whole engine (master, bucket, executor,
retries, middleware, events), so a test sees what production would, without a server.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobmaster.errors import ConfigError, InvalidTransitionError
from jobmaster.handlers.registry import HandlerFunc
from jobmaster.jobs.model import DEFAULT_LANE, FINAL_STATUSES, Job, JobStatus
from jobmaster.testing.recording import Recording

if TYPE_CHECKING:
    from jobmaster.app import JobMaster

#: Settings of the test cluster: retries and heartbeats in milliseconds rather than seconds.
TEST_SETTINGS: dict[str, Any] = {
    "heartbeat_interval": 0.3,
    "job_lease": 5.0,
    "worker_timeout": 3.0,
    "retry_backoff_base": 0.05,
    "retry_backoff_cap": 0.2,
    "shutdown_grace": 5.0,
    # A fresh file: even an app that only checks its schema (`migrate="check"`) needs it created.
    "migrate": "auto",
}
#: Most jobs one listing of `drain` reads (`list_jobs`' own limit).
LIST_LIMIT = 10_000
NOT_FINAL = tuple(s for s in JobStatus if s not in FINAL_STATUSES)


class TestCluster:
    """The running test cluster (`jobmaster.testing.cluster`)."""

    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, app: JobMaster, recording: Recording, database: Path) -> None:
        self.app = app
        self.recording = recording
        #: The SQLite file of the master (inspect it after a failure).
        self.database = database
        self._reported: set[str] = set()

    def scheduled_jobs(self, handler: str | HandlerFunc | None = None) -> list[Job]:
        """The jobs scheduled since the cluster started, as the calls made them."""
        return self.recording.scheduled_jobs(handler)

    async def drain(self, *, timeout: float = 30.0, with_scheduled: bool = False) -> list[Job]:
        """Wait until every job due now is final; returns the jobs that ended since the last drain,
        in the order they finished, as the master holds them (status, attempts, error).

        Jobs a handler schedules while draining run too, and so do retries (the test cluster's
        back-off is capped at `retry_backoff_cap`, 0.2 s). A job due later than that (a `delay`, a
        snooze, a handler's own longer `RetryPolicy`) is left waiting unless `with_scheduled`, which
        makes it due now. After
        `timeout` seconds it raises an AssertionError naming the jobs still unfinished.
        """
        deadline = time.monotonic() + timeout
        while pending := await self._pending(with_scheduled):
            if time.monotonic() > deadline:
                shown = "; ".join(f"{j.id} {j.definition_id} {j.status.name} ({j.lane})" for j in pending[:9])
                raise AssertionError(f"drain: {len(pending)} job(s) unfinished after {timeout:g}s: {shown}")
            await asyncio.sleep(0.02)
        ended = await self.app.list_jobs(status=tuple(FINAL_STATUSES), limit=LIST_LIMIT)
        fresh = sorted((j for j in ended if j.id not in self._reported), key=lambda j: j.finished_at or 0.0)
        self._reported.update(j.id for j in fresh)
        return fresh

    async def _pending(self, with_scheduled: bool) -> list[Job]:
        if not with_scheduled:
            # A retry is due after the back-off, which the test settings keep under a second.
            horizon = datetime.fromtimestamp(time.time() + self.app.config.retry_backoff_cap, UTC)
            return await self.app.list_jobs(status=NOT_FINAL, scheduled_to=horizon, limit=LIST_LIMIT)
        pending = await self.app.list_jobs(status=NOT_FINAL, limit=LIST_LIMIT)
        for job in pending:
            if job.scheduled_at > time.time() and job.status is not JobStatus.Processing:
                # Raced by a worker that took it meanwhile: it runs anyway, so the drain goes on.
                with contextlib.suppress(InvalidTransitionError):
                    await self.app.reschedule(job.id, delay=0)
        return pending

    async def jobs(self, handler: str | HandlerFunc | None = None) -> list[Job]:
        """Every job of the cluster (of `handler`, when given) as the master holds it now."""
        return await self.app.list_jobs(handler=handler, limit=LIST_LIMIT)


def _lanes(app: JobMaster, extra: Iterable[str]) -> list[str]:
    """Every lane a job of this app may be scheduled to, so each has a worker."""
    lanes = {DEFAULT_LANE, *extra, *(w.lane for w in app.config.workers)}
    lanes.update(h.defaults.lane for h in app.registry if h.defaults.lane is not None)
    return sorted(lanes)


@contextlib.asynccontextmanager
async def cluster(
    app: JobMaster, *, lanes: Iterable[str] = (), start_timeout: float = 30.0, **settings: Any
) -> AsyncIterator[TestCluster]:
    """Run `app`'s handlers in a real in-process cluster on a temporary SQLite file.

    One full worker runs per lane (the Default lane, the lanes of the app's workers and handlers,
    and `lanes`); `settings` override the test settings (`TEST_SETTINGS`) and the app's own. The
    app's startup and shutdown hooks run as in a worker. Leaving the block stops the workers and
    gives the app its configuration back.
    """
    if app.is_open:
        raise ConfigError(
            "jobmaster.testing.cluster() needs a JobMaster that is not open: it points the app at a"
            " temporary SQLite master (close it first, or do not open it at import time)"
        )
    saved = app.config, dict(app.config_sources)
    with tempfile.TemporaryDirectory(prefix="jobmaster-test-") as directory:
        database = Path(directory) / "jobmaster.db"
        app._reconfigure(
            master=f"sqlite:///{database}",
            agents=[],
            workers=[{"name": f"test-{i}", "lane": lane} for i, lane in enumerate(_lanes(app, lanes))],
            **{**TEST_SETTINGS, **settings},
        )
        recording = Recording(app)
        recording.start()
        try:
            async with app.running(start_timeout=start_timeout):
                yield TestCluster(app, recording, database)
        finally:
            recording.stop()
            app.config, app.config_sources = saved
