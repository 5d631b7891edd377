"""Turning a scheduling call into a Job, refusing bad input before anything is written.

Precedence for every option: the call, then the handler's defaults, then the cluster default.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jobmaster.config.settings import ClusterConfig
from jobmaster.durations import duration_within
from jobmaster.errors import ConfigError, ScheduleError
from jobmaster.handlers.registry import Handler, validate_defaults
from jobmaster.jobs import codec
from jobmaster.jobs.model import DEFAULT_LANE, Job, JobStatus, Priority, new_job_id
from jobmaster.jobs.options import JOB_OPTION_NAMES, JobOptions, check_names

MAX_DELAY_S = 100 * 365 * 86400.0


@dataclass(slots=True, frozen=True)
class Options:
    """Per-call overrides; None means "inherit"."""

    at: datetime | None = None
    delay: float | timedelta | str | None = None
    priority: Priority | int | str | None = None
    lane: str | None = None
    timeout: float | str | None = None
    max_retries: int | None = None
    metadata: dict[str, Any] | None = None

    @classmethod
    def of(cls, options: JobOptions, handler: str) -> Options:
        """The options of one scheduling call; an unknown keyword is refused with its closest name."""
        problem = check_names(options, JOB_OPTION_NAMES, f"scheduling {handler!r}")
        if problem is not None:
            raise ScheduleError(problem)
        return cls(**options)


def due_time(at: datetime | None, delay: float | timedelta | str | None, now: float) -> float:
    if at is not None and delay is not None:
        raise ScheduleError("pass either `at` or `delay`, not both")
    if at is not None:
        if not isinstance(at, datetime):
            raise ScheduleError(f"`at` must be a datetime, got {type(at).__name__}")
        if at.tzinfo is None or at.utcoffset() is None:
            raise ScheduleError(
                f"`at` is a naive datetime ({at.isoformat()}): pass a timezone-aware datetime, or"
                " attach the cluster time zone explicitly with JobMaster.localize()"
            )
        return at.timestamp()
    if delay is not None:
        try:
            return now + duration_within(delay, MAX_DELAY_S, "100 years", "`delay`")
        except ValueError as exc:
            raise ScheduleError(str(exc)) from None
    return now


@dataclass(slots=True, frozen=True)
class JobTemplate:
    """One scheduling call with its options resolved, validated once for all the jobs it makes."""

    handler: Handler
    scheduled_at: float
    created_at: float
    priority: Priority
    lane: str
    timeout_s: float
    max_retries: int
    metadata: dict[str, Any]
    max_message_bytes: int

    def job(self, data: dict[str, Any] | None, job_id: str) -> Job:
        """A job of this call carrying `data`; refuses data the handler or the transport cannot take.

        Runs once per job of a `schedule_many`, so the job is built positionally and the label of
        an error only when there is one: keywords and the label cost a third of the call.
        """
        if data is None:
            data = {}
        elif not isinstance(data, dict):
            raise ScheduleError(f"job data must be a dict of keyword arguments, got {type(data).__name__}")
        self.handler.check_arguments(data)
        codec.encode_payload({"data": data, "metadata": self.metadata}, self._label, self.max_message_bytes)
        max_retries = self.max_retries
        return Job(
            job_id,
            self.handler.definition_id,
            self.scheduled_at,
            self.created_at,
            self.priority,
            self.lane,
            dict(data),
            dict(self.metadata),
            self.timeout_s,
            max_retries,
            max_retries + 1,
            JobStatus.SavePending,
        )

    def _label(self) -> str:
        return f"job data for {self.handler.definition_id!r}"


def prepare(
    handler: Handler, options: Options, cluster: ClusterConfig, now: float | None = None
) -> JobTemplate:
    """Resolve a call's options (call > handler > cluster default) and its due time."""
    now = time.time() if now is None else now
    try:
        call = validate_defaults(
            {
                "priority": options.priority,
                "lane": options.lane,
                "timeout": options.timeout,
                "max_retries": options.max_retries,
                "metadata": options.metadata,
            },
            f"scheduling {handler.definition_id!r}",
        )
    except ConfigError as exc:
        raise ScheduleError(str(exc)) from None
    defaults = handler.defaults
    return JobTemplate(
        handler=handler,
        scheduled_at=due_time(options.at, options.delay, now),
        created_at=now,
        priority=_first(call.priority, defaults.priority, Priority.Medium),
        lane=_first(call.lane, defaults.lane, DEFAULT_LANE),
        timeout_s=_first(call.timeout_s, defaults.timeout_s, cluster.default_job_timeout),
        max_retries=_first(call.max_retries, defaults.max_retries, cluster.default_max_retries),
        metadata={**defaults.metadata, **call.metadata},
        max_message_bytes=cluster.max_message_bytes,
    )


def build_job(
    handler: Handler,
    data: dict[str, Any] | None,
    options: Options,
    cluster: ClusterConfig,
    now: float | None = None,
) -> Job:
    return prepare(handler, options, cluster, now).job(data, new_job_id())


def _first(*values: Any) -> Any:
    for value in values:
        if value is not None:
            return value
    return None
