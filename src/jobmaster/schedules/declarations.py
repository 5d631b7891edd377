"""What a recurring schedule is, as declared in code or at run time, validated before anything is
written.

A `ScheduleSpec` holds everything the scheduler needs to insert an occurrence's job without the
handler's code: the handler's id, the timing (expression or interval, time zone, jitter), the data,
the job options already resolved (call > handler > cluster default, as `jm.schedule` resolves them),
and the catch-up and overlap policies. It is stored as JSON in the master, so any process (a worker,
the CLI) can run or operate a schedule whatever code it has imported.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Any, Literal, get_args

from jobmaster.config.settings import ClusterConfig
from jobmaster.durations import parse_duration
from jobmaster.errors import ScheduleError
from jobmaster.handlers.registry import Handler
from jobmaster.jobs.model import Priority, new_job_id
from jobmaster.operations.scheduling import Options, prepare
from jobmaster.schedules.expressions import Schedule, parse_schedule

CatchUp = Literal["skip", "latest", "all"]
Overlap = Literal["allow", "skip"]
Source = Literal["code", "dynamic"]

#: How far back catch-up looks by default: an occurrence missed longer ago than this never runs.
DEFAULT_CATCH_UP_WINDOW = 3600.0
#: The most occurrences `catch_up="all"` runs at once by default (the latest ones).
DEFAULT_CATCH_UP_LIMIT = 100
MAX_CATCH_UP_LIMIT = 10_000
MAX_CATCH_UP_WINDOW = 366 * 86400.0

#: A schedule's name: a handler's id by default, so dots, colons and `<locals>` are fine; no blank
#: or control characters, and short enough for every database's key (MySQL's 191 characters).
_NAME = re.compile(r"^[^\s\x00-\x1f]{1,191}$")


@dataclass(frozen=True, slots=True)
class CatchUpPolicy:
    """What a pass does with occurrences that came due while no scheduler ran (see `planning`)."""

    mode: CatchUp = "latest"
    window_s: float = DEFAULT_CATCH_UP_WINDOW
    limit: int = DEFAULT_CATCH_UP_LIMIT


@dataclass(frozen=True)
class ScheduleSpec:
    """One schedule as stored: its timing, its job, and its policies."""

    name: str
    handler: str
    #: The canonical expression (`every=` is stored as its readable form, `every 90 seconds`).
    expression: str
    tz: str
    jitter_s: float | None
    data: dict[str, Any]
    priority: int
    lane: str
    timeout_s: float
    max_retries: int
    metadata: dict[str, Any]
    catch_up: CatchUpPolicy = field(default_factory=CatchUpPolicy)
    overlap: Overlap = "allow"

    @cached_property
    def timing(self) -> Schedule:
        """The parsed timing, shared by every spec of the same timing (a pass reads each due row's
        spec afresh, and thousands of schedules tend to share a few expressions)."""
        return timing_of(self.expression, self.tz, self.jitter_s)

    def to_json(self) -> str:
        """The stored form: sorted keys, so an unchanged declaration is byte-for-byte the same."""
        document = asdict(self)
        document.pop("name")
        return json.dumps(document, sort_keys=True, separators=(",", ":"))

    @classmethod
    @functools.lru_cache(maxsize=65536)
    def from_json(cls, name: str, text: str) -> ScheduleSpec:
        """The stored spec; cached, since a pass reads every due schedule's spec again and a spec
        is immutable (frozen, and its `data` never changed by the scheduler)."""
        document = json.loads(text)
        document["catch_up"] = CatchUpPolicy(**document["catch_up"])
        return cls(name=name, **document)


@functools.lru_cache(maxsize=4096)
def timing_of(expression: str, tz: str, jitter_s: float | None) -> Schedule:
    return parse_schedule(expression, tz=tz, jitter=_delta(jitter_s))


def declare(
    handler: Handler,
    expression: str | None,
    *,
    name: str | None,
    cluster: ClusterConfig,
    tz: str = "UTC",
    data: dict[str, Any] | None = None,
    every: timedelta | float | str | None = None,
    jitter: timedelta | float | str | None = None,
    catch_up: CatchUp = "latest",
    catch_up_window: timedelta | float | str = DEFAULT_CATCH_UP_WINDOW,
    catch_up_limit: int = DEFAULT_CATCH_UP_LIMIT,
    overlap: Overlap = "allow",
    priority: Priority | int | str | None = None,
    lane: str | None = None,
    timeout: float | str | None = None,
    max_retries: int | None = None,
    metadata: dict[str, Any] | None = None,
) -> ScheduleSpec:
    """A validated spec, or a `ScheduleError` that names the schedule and what is wrong with it."""
    label = f"schedule {name or handler.definition_id!r}"
    schedule_name = _check_name(name if name is not None else handler.definition_id, label)
    jitter_s = _optional_seconds(jitter, "jitter", label)
    try:
        timing = parse_schedule(
            expression, tz=tz, every=_delta(_optional_seconds(every, "every", label)), jitter=_delta(jitter_s)
        )
    except ScheduleError as exc:
        raise ScheduleError(f"{label}: {exc}") from None
    if catch_up not in get_args(CatchUp):
        raise ScheduleError(
            f"{label}: catch_up must be one of {', '.join(get_args(CatchUp))}, got {catch_up!r}"
        )
    if overlap not in get_args(Overlap):
        raise ScheduleError(
            f"{label}: overlap must be one of {', '.join(get_args(Overlap))}, got {overlap!r}"
        )
    window = _seconds(catch_up_window, "catch_up_window", label)
    if not 0 < window <= MAX_CATCH_UP_WINDOW:
        raise ScheduleError(
            f"{label}: catch_up_window must be more than 0 and at most 366 days, got {window}s"
        )
    if isinstance(catch_up_limit, bool) or not isinstance(catch_up_limit, int):
        raise ScheduleError(f"{label}: catch_up_limit must be an integer, got {catch_up_limit!r}")
    if not 1 <= catch_up_limit <= MAX_CATCH_UP_LIMIT:
        raise ScheduleError(
            f"{label}: catch_up_limit must be in 1..{MAX_CATCH_UP_LIMIT}, got {catch_up_limit}"
        )
    template = prepare(
        handler,
        Options(priority=priority, lane=lane, timeout=timeout, max_retries=max_retries, metadata=metadata),
        cluster,
    )
    try:
        template.job(data, new_job_id())  # the data fits the handler and the transport
    except ScheduleError as exc:
        raise ScheduleError(f"{label}: {exc}") from None
    return ScheduleSpec(
        name=schedule_name,
        handler=handler.definition_id,
        expression=timing.expression,
        tz=timing.tz,
        jitter_s=jitter_s,
        data=dict(data or {}),
        priority=int(template.priority),
        lane=template.lane,
        timeout_s=template.timeout_s,
        max_retries=template.max_retries,
        metadata=dict(template.metadata),
        catch_up=CatchUpPolicy(catch_up, window, catch_up_limit),
        overlap=overlap,
    )


def check_name(name: str) -> str:
    """A schedule name as the CLI and the operations take it."""
    return _check_name(name, f"schedule {name!r}")


def _check_name(name: Any, label: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ScheduleError(
            f"{label}: a schedule name is 1-191 characters without spaces or control characters, got {name!r}"
        )
    return name


def _delta(seconds: float | None) -> timedelta | None:
    return None if seconds is None else timedelta(seconds=seconds)


def _seconds(value: timedelta | float | str, what: str, label: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ScheduleError(f"{label}: {what}: {exc}") from None


def _optional_seconds(value: timedelta | float | str | None, what: str, label: str) -> float | None:
    return None if value is None else _seconds(value, what, label)
