"""Turning a scheduling call into a Job, refusing bad input before anything is written.

Precedence for every option: the call, then the handler's defaults, then the cluster default.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jobmaster.config.settings import ClusterConfig, parse_duration
from jobmaster.errors import ConfigError, ScheduleError
from jobmaster.handlers.registry import Handler, validate_defaults
from jobmaster.jobs import codec
from jobmaster.jobs.model import DEFAULT_LANE, Job, JobStatus, Priority, new_job_id

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
            seconds = parse_duration(delay)
        except ValueError as exc:
            raise ScheduleError(f"`delay`: {exc}") from None
        if not 0 <= seconds <= MAX_DELAY_S:
            raise ScheduleError(f"`delay` must be between 0 and 100 years, got {delay!r}")
        return now + seconds
    return now


def build_job(
    handler: Handler,
    data: dict[str, Any] | None,
    options: Options,
    cluster: ClusterConfig,
    now: float | None = None,
) -> Job:
    now = time.time() if now is None else now
    if data is not None and not isinstance(data, dict):
        raise ScheduleError(f"job data must be a dict of keyword arguments, got {type(data).__name__}")
    handler.check_arguments(data or {})
    try:
        call = validate_defaults(
            options.priority,
            options.lane,
            options.timeout,
            options.max_retries,
            options.metadata,
            f"scheduling {handler.definition_id!r}",
        )
    except ConfigError as exc:
        raise ScheduleError(str(exc)) from None
    defaults = handler.defaults
    metadata = {**defaults.metadata, **call.metadata}
    payload = {"data": data or {}, "metadata": metadata}
    codec.encode_payload(payload, f"job data for {handler.definition_id!r}", cluster.max_message_bytes)
    max_retries = _first(call.max_retries, defaults.max_retries, cluster.default_max_retries)
    return Job(
        id=new_job_id(),
        definition_id=handler.definition_id,
        scheduled_at=due_time(options.at, options.delay, now),
        created_at=now,
        priority=_first(call.priority, defaults.priority, Priority.Medium),
        lane=_first(call.lane, defaults.lane, DEFAULT_LANE),
        data=dict(data or {}),
        metadata=metadata,
        timeout_s=_first(call.timeout_s, defaults.timeout_s, cluster.default_job_timeout),
        max_retries=max_retries,
        status=JobStatus.SavePending,
    )


def _first(*values: Any) -> Any:
    for value in values:
        if value is not None:
            return value
    return None
