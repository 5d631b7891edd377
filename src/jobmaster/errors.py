"""Exceptions users can catch; each message names the setting or input at fault."""

from __future__ import annotations


class JobMasterError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(JobMasterError, ValueError):
    """An invalid configuration: raised at start, before anything runs."""


class ScheduleError(JobMasterError, ValueError):
    """A scheduling call was refused; nothing was written."""


class UnknownHandlerError(ScheduleError):
    pass


class PayloadError(ScheduleError):
    pass


class JobNotFoundError(JobMasterError, LookupError):
    pass


class InvalidTransitionError(JobMasterError):
    """The job's current status does not allow the requested operation."""


class JobTimeoutError(JobMasterError, TimeoutError):
    """A handler ran past its timeout and was interrupted."""


class JobCancelledError(JobMasterError):
    """A running handler was cancelled on request."""


class StoreError(JobMasterError):
    """A backend refused a request in a way the engine cannot retry."""
