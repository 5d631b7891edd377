"""`await jm.result(job_id, timeout=...)`: wait for a job to end and return what its handler returned.

The waiter is woken by the job's end, not by a loop of reads:

- A run that ends in this process is announced on the events seam (`JobSucceeded`, `JobFailed`,
  `JobCancelled`) when the worker decides it; the master write follows in the next completions batch,
  so the waiter reads the job again once that batch is written (`BatchFlushed`).
- A master that notifies (PostgreSQL) is asked to tell this cluster's channel when the job ends
  (`MasterStore.watch_end`): the job is stamped, and a trigger sends `ended:<id>` from whichever write
  puts it in a final status (a run's outcome, a recovery, a cancel). Only watched jobs cost a
  notification, so runs nobody waits for keep their write as it was. Every open `JobMaster` already
  listens on that channel.
- A master that cannot notify (SQLite, MySQL/MariaDB) cannot say when a job run by another process
  ends: there the waiter reads the job again after `idle_poll_interval`, doubling the wait after each
  read up to `POLL_CAP` (or `idle_poll_interval`, if longer). A job that only an agent holds yet
  (SavePending) is read the same way until it reaches the master, which can then be asked to notify.

With notifications, a read every `RECHECK` seconds is the safety net for one lost while the
listening connection was being re-established.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from jobmaster.errors import JobNotSucceededError, ResultTimeoutError
from jobmaster.events import BatchFlushed, Event, EventBus, JobCancelled, JobFailed, JobSucceeded
from jobmaster.jobs.model import Job, JobStatus
from jobmaster.master.base import MasterStore
from jobmaster.runtime.hub import Hub

#: Longest wait between reads of a job whose end the master cannot announce.
POLL_CAP = 1.0
#: Longest wait between reads of a job whose end the master will announce (the safety net).
RECHECK = 10.0
#: The events that say a run here ended its job; the kinds that leave it to run again are not waited on.
_FINAL_EVENTS = (JobSucceeded, JobFailed, JobCancelled)


class ResultWaiter:
    """The waits of one open `JobMaster`: one wake-up event per waiting call, by job id."""

    def __init__(
        self,
        master: MasterStore,
        read: Callable[[str], Awaitable[Job]],
        events: EventBus,
        hub: Hub,
        poll: float,
    ) -> None:
        self._master = master
        #: Reads the job as management does (the master, or an agent's SavePending copy).
        self._read = read
        self._events = events
        self._poll = poll
        self._waiting: dict[str, set[asyncio.Event]] = {}
        #: Jobs whose run ended here, whose master write a completions batch still has to make.
        self._ended_here: set[str] = set()
        self._unsubscribe: list[Callable[[], None]] = []
        hub.on_ended(self._wake)

    async def result(self, job_id: str, timeout: float | None) -> Any:
        """What the job's handler returned, once the job has ended; `JobNotSucceededError` if it
        ended Failed or Cancelled, `ResultTimeoutError` after `timeout` seconds (None: no limit)."""
        job = await self.ended(job_id, timeout)
        if job.status is not JobStatus.Succeeded:
            raise JobNotSucceededError(_not_succeeded(job), job)
        return job.result

    async def ended(self, job_id: str, timeout: float | None) -> Job:
        """The job once it is in a final status."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        wake = asyncio.Event()
        self._add(job_id, wake)
        try:
            watched = False
            pause = self._poll
            while True:
                if not watched:
                    watched = await self._master.watch_end(job_id)
                job = await self._read(job_id)
                if job.status.is_final:
                    return job
                wait = RECHECK if watched else pause
                if deadline is not None:
                    left = deadline - loop.time()
                    if left <= 0:
                        raise ResultTimeoutError(
                            f"job {job_id} has not ended after {timeout:g}s: it is {job.status.name}"
                        )
                    wait = min(wait, left)
                try:
                    await asyncio.wait_for(wake.wait(), wait)
                except TimeoutError:
                    pause = min(max(POLL_CAP, self._poll), pause * 2)
                wake.clear()
        finally:
            self._remove(job_id, wake)

    def _add(self, job_id: str, wake: asyncio.Event) -> None:
        if not self._waiting:
            self._unsubscribe = [
                self._events.subscribe(kind, self._on_event) for kind in (*_FINAL_EVENTS, BatchFlushed)
            ]
        self._waiting.setdefault(job_id, set()).add(wake)

    def _remove(self, job_id: str, wake: asyncio.Event) -> None:
        waits = self._waiting.get(job_id)
        if waits is not None:
            waits.discard(wake)
            if not waits:
                del self._waiting[job_id]
                self._ended_here.discard(job_id)
        if not self._waiting:
            for unsubscribe in self._unsubscribe:
                unsubscribe()
            self._unsubscribe = []

    def _on_event(self, event: Event) -> None:
        """Subscribed only while someone waits: a run that nobody waits for builds no event."""
        if isinstance(event, BatchFlushed):
            if event.batcher == "completions":
                for job_id in list(self._ended_here):
                    self._wake(job_id)
        elif isinstance(event, _FINAL_EVENTS) and event.job.id in self._waiting:
            self._ended_here.add(event.job.id)

    def _wake(self, job_id: str) -> None:
        for wake in self._waiting.get(job_id, ()):
            wake.set()


def _not_succeeded(job: Job) -> str:
    error = job.last_error
    cause = f": {error.get('type')}: {error.get('message')}" if error else ""
    return f"job {job.id} ({job.definition_id}) ended {job.status.name}{cause}; it has no result"
