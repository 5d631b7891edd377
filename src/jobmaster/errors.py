"""Exceptions users can catch; each message names the setting or input at fault."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jobmaster.jobs.model import Job


class JobMasterError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(JobMasterError, ValueError):
    """An invalid configuration: raised at start, before anything runs."""


class ScheduleError(JobMasterError, ValueError):
    """A scheduling call, or a recurring schedule's expression, time zone or interval, was refused;
    nothing was written."""


class UnknownHandlerError(ScheduleError):
    pass


class PayloadError(ScheduleError):
    pass


class ClusterArchivedError(ScheduleError):
    """The cluster's mode is Archived: it keeps its history but takes no new jobs."""


class JobNotFoundError(JobMasterError, LookupError):
    pass


class ScheduleNotFoundError(JobMasterError, LookupError):
    """No recurring schedule of that name in the cluster."""


class QueryError(JobMasterError, ValueError):
    """A listing or counting call asked for something that cannot be (a bad status, limit or time)."""


class NotOpenError(JobMasterError, RuntimeError):
    """The call needs an open `JobMaster` (`async with jm:`, `await jm.open()`, or `jm.run()`)."""


class UnavailableError(JobMasterError, ConnectionError):
    """A master or agent server cannot be reached; the message names it, without its password."""


class InvalidTransitionError(JobMasterError):
    """The job's current status does not allow the requested operation."""


class JobTimeoutError(JobMasterError, TimeoutError):
    """A handler ran past its timeout and was interrupted."""


class JobCancelledError(JobMasterError):
    """A running handler was cancelled on request."""


class ResultError(JobMasterError, ValueError):
    """A handler returned what cannot be stored as its job's result (not JSON, or over
    `max_result_bytes`): the job ends Failed with this error, without a retry, since the same code
    would return the same kind of value again."""


class JobNotSucceededError(JobMasterError):
    """`jm.result()` of a job that ended Failed or Cancelled: it has no result. `job` is the job as
    it ended (its `last_error`, `status`)."""

    def __init__(self, message: str, job: Job) -> None:
        super().__init__(message)
        self.job = job


class ResultTimeoutError(JobMasterError, TimeoutError):
    """`jm.result()` gave up: the job had not ended within the timeout (it goes on regardless)."""


class StoreError(JobMasterError):
    """A backend refused a request.

    `transient` marks a refusal that passes by itself (a JetStream cluster electing a leader answers
    "no reply in time" or "temporarily unavailable" for a few seconds): start-up waits for it as
    for a server not reachable yet. Any other refusal stops start-up at once.
    """

    transient: bool = False
