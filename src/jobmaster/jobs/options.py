"""The scheduling options and the listing filters, typed once.

Every signature that takes them (`@jm.handler`, `jm.schedule`, `jm.schedule_many`, their sync twins,
the registry) says `**options: Unpack[...]`, so a new option is one edit here and one where it is
applied, and an IDE and mypy check every call. A keyword the user misspells reaches `**options` at
run time and is refused here with the closest known name, before anything is written.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypedDict

from jobmaster.jobs.model import JobStatus, Priority


class HandlerOptions(TypedDict, total=False):
    """What a handler sets as its defaults, and a scheduling call may override."""

    priority: Priority | int | str | None
    lane: str | None
    timeout: float | str | None
    max_retries: int | None
    metadata: dict[str, Any] | None


class JobOptions(HandlerOptions, total=False):
    """A scheduling call's options: the handler's, plus when the job is due."""

    at: datetime | None
    delay: float | timedelta | str | None


class JobQuery(TypedDict, total=False):
    """What `list_jobs`, `list_jobs_page` and `count_jobs` filter on; every one given narrows."""

    status: JobStatus | str | Sequence[JobStatus | str] | None
    #: A handler id, or the handler function itself.
    handler: str | Callable[..., Any] | None
    lane: str | None
    scheduled_from: datetime | None
    scheduled_to: datetime | None
    metadata: dict[str, Any] | None


HANDLER_OPTION_NAMES = frozenset(HandlerOptions.__annotations__)
QUERY_NAMES = frozenset(JobQuery.__annotations__)
JOB_OPTION_NAMES = frozenset(JobOptions.__annotations__) | HANDLER_OPTION_NAMES


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name `name` most likely misspells, if any is close enough (difflib's 0.6)."""
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return close[0] if close else None


def unknown_option(name: str, known: frozenset[str], where: str) -> str:
    """The message for an option nobody declared, with the closest known name."""
    near = closest(name, known)
    hint = f"; did you mean {near!r}?" if near else f"; known: {', '.join(sorted(known))}"
    return f"{where}: unknown option {name!r}{hint}"


def check_names(options: Mapping[str, Any], known: frozenset[str], where: str) -> str | None:
    """The message for the first option not in `known`, or None when all are known."""
    for name in options:
        if name not in known:
            return unknown_option(name, known, where)
    return None
