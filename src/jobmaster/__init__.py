"""JobMaster for Python: a distributed, tunable background job engine with an asyncio core."""

from jobmaster.app import JobMaster
from jobmaster.cluster.model import BucketStatus, WorkerMode, WorkerStatus
from jobmaster.config.settings import AgentConfig, ClusterConfig, WorkerConfig
from jobmaster.errors import (
    ClusterArchivedError,
    ConfigError,
    InvalidTransitionError,
    JobCancelledError,
    JobMasterError,
    JobNotFoundError,
    JobNotSucceededError,
    JobTimeoutError,
    NotOpenError,
    PayloadError,
    QueryError,
    ResultError,
    ResultTimeoutError,
    ScheduleError,
    ScheduleNotFoundError,
    UnavailableError,
    UnknownHandlerError,
)
from jobmaster.handlers.context import JobContext
from jobmaster.jobs.model import Attempt, Job, JobStatus, Priority
from jobmaster.jobs.options import HandlerOptions, JobOptions, JobQuery
from jobmaster.jobs.outcomes import Discard, Snooze
from jobmaster.jobs.paging import JobPage
from jobmaster.jobs.retry import RetryPolicy
from jobmaster.runtime.process import run_worker_process, tune_worker_gc
from jobmaster.schedules import Schedule, parse_schedule
from jobmaster.schedules.operations import ScheduleInfo
from jobmaster.sync import SyncJobMaster

__all__ = [
    "AgentConfig",
    "Attempt",
    "BucketStatus",
    "ClusterArchivedError",
    "ClusterConfig",
    "ConfigError",
    "Discard",
    "HandlerOptions",
    "InvalidTransitionError",
    "Job",
    "JobCancelledError",
    "JobContext",
    "JobMaster",
    "JobMasterError",
    "JobNotFoundError",
    "JobNotSucceededError",
    "JobOptions",
    "JobPage",
    "JobQuery",
    "JobStatus",
    "JobTimeoutError",
    "NotOpenError",
    "PayloadError",
    "Priority",
    "QueryError",
    "ResultError",
    "ResultTimeoutError",
    "RetryPolicy",
    "Schedule",
    "ScheduleError",
    "ScheduleInfo",
    "ScheduleNotFoundError",
    "Snooze",
    "SyncJobMaster",
    "UnavailableError",
    "UnknownHandlerError",
    "WorkerConfig",
    "WorkerMode",
    "WorkerStatus",
    "parse_schedule",
    "run_worker_process",
    "tune_worker_gc",
]
