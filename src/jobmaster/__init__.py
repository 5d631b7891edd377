"""JobMaster for Python: a distributed, tunable background job engine with an asyncio core."""

from jobmaster.app import JobMaster
from jobmaster.cluster.model import BucketStatus, WorkerMode, WorkerStatus
from jobmaster.config.settings import AgentConfig, ClusterConfig, WorkerConfig
from jobmaster.errors import (
    ConfigError,
    InvalidTransitionError,
    JobCancelledError,
    JobMasterError,
    JobNotFoundError,
    JobTimeoutError,
    PayloadError,
    ScheduleError,
    UnknownHandlerError,
)
from jobmaster.handlers.context import JobContext
from jobmaster.jobs.model import Attempt, Job, JobStatus, Priority
from jobmaster.sync import SyncJobMaster

__all__ = [
    "AgentConfig",
    "Attempt",
    "BucketStatus",
    "ClusterConfig",
    "ConfigError",
    "InvalidTransitionError",
    "Job",
    "JobCancelledError",
    "JobContext",
    "JobMaster",
    "JobMasterError",
    "JobNotFoundError",
    "JobStatus",
    "JobTimeoutError",
    "PayloadError",
    "Priority",
    "ScheduleError",
    "SyncJobMaster",
    "UnknownHandlerError",
    "WorkerConfig",
    "WorkerMode",
    "WorkerStatus",
]
