"""Every run that did not succeed, as a log line with the job's identity: a subscriber of the events.

A failed attempt that will be retried is a WARNING with the error, its traceback and when it runs
again; a job that ends Failed is an ERROR; a timeout, a cancellation and an interrupted run are
WARNINGs; a snooze is INFO; each success is DEBUG (or INFO after `log_successes(logging.INFO)`), and
is subscribed to only when that level is enabled at start, so a busy worker builds no event per
success for a line nobody reads (docs/benchmarks.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from jobmaster.events import (
    EventBus,
    JobCancelled,
    JobEnded,
    JobFailed,
    JobInterrupted,
    JobRetried,
    JobSnoozed,
    JobsRecovered,
    JobSucceeded,
)
from jobmaster.logs.context import job_fields

log = logging.getLogger("jobmaster.job")
recovery_log = logging.getLogger("jobmaster.recovery")

_success_level = logging.DEBUG


def log_successes(level: int) -> None:
    """The level of the line each success writes (DEBUG by default); takes effect for runtimes
    opened afterwards."""
    global _success_level
    _success_level = level


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


class RunLog:
    """Subscribes to run events and writes them under `jobmaster.job`."""

    def attach(self, bus: EventBus) -> Callable[[], None]:
        """Subscribe; returns the function that unsubscribes again."""
        handles = [
            bus.subscribe(JobRetried, self.retried),
            bus.subscribe(JobFailed, self.failed),
            bus.subscribe(JobCancelled, self.cancelled),
            bus.subscribe(JobInterrupted, self.interrupted),
            bus.subscribe(JobSnoozed, self.snoozed),
            bus.subscribe(JobsRecovered, self.recovered),
        ]
        if log.isEnabledFor(_success_level):
            handles.append(bus.subscribe(JobSucceeded, self.succeeded))

        def detach() -> None:
            for unsubscribe in handles:
                unsubscribe()

        return detach

    @staticmethod
    def _write(level: int, event: JobEnded, message: str, *args: Any) -> None:
        if not log.isEnabledFor(level):
            return
        job, attempt = event.job, event.attempt
        record = log.makeRecord(
            log.name,
            level,
            __file__,
            0,
            message,
            args,
            None,
            extra=job_fields(job) | {"attempt": attempt.attempt},
        )
        error = attempt.error or {}
        if error.get("traceback"):
            record.exc_text = str(error["traceback"]).rstrip()
        log.handle(record)

    @staticmethod
    def _what(event: JobEnded) -> str:
        job = event.job
        return f"job {job.id} ({job.definition_id}) attempt {event.attempt.attempt}/{job.attempt_limit}"

    @staticmethod
    def _error(event: JobEnded) -> str:
        error = event.attempt.error or {}
        return f"{error.get('type', 'error')}: {error.get('message', '')}"

    def retried(self, event: JobRetried) -> None:
        delay = max(0.0, event.retry_at - event.attempt.finished_at)
        failure = "timed out" if event.attempt.outcome == "timeout" else "failed"
        self._write(
            logging.WARNING,
            event,
            "%s %s: %s; retrying at %s (in %.1fs)",
            self._what(event),
            failure,
            self._error(event),
            _when(event.retry_at),
            delay,
        )

    def failed(self, event: JobFailed) -> None:
        outcome = event.attempt.outcome
        how = {"timeout": "timed out", "discarded": "was discarded by its handler"}.get(outcome, "failed")
        self._write(
            logging.ERROR, event, "%s %s: %s; the job is Failed", self._what(event), how, self._error(event)
        )

    def cancelled(self, event: JobCancelled) -> None:
        self._write(logging.WARNING, event, "%s cancelled: %s", self._what(event), self._error(event))

    def interrupted(self, event: JobInterrupted) -> None:
        error = event.attempt.error or {}
        self._write(
            logging.WARNING,
            event,
            "%s interrupted (%s); it runs again",
            self._what(event),
            error.get("message", "worker stopping"),
        )

    def snoozed(self, event: JobSnoozed) -> None:
        self._write(logging.INFO, event, "%s snoozed until %s", self._what(event), _when(event.until))

    def succeeded(self, event: JobSucceeded) -> None:
        took = (event.attempt.finished_at - event.attempt.started_at) * 1000
        self._write(_success_level, event, "%s succeeded in %.1f ms", self._what(event), took)

    @staticmethod
    def recovered(event: JobsRecovered) -> None:
        recovery_log.warning(
            "worker %s gave back %d job(s) whose workers stopped renewing their leases (crash, "
            "kill or partition); a running one counts a lost attempt and runs again after its back-off",
            event.worker_id,
            event.count,
        )
