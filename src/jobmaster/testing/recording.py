"""What the scheduling calls of an app made, and the assertions over it.

A `Recording` is a schedule middleware: it sees the validated jobs of every call (after the app's
own layers, so a stamped `metadata` is there) and keeps them in order. `inline`, `capture` and
`cluster` each install one while they are active; `assert_scheduled` and `scheduled_jobs` read the
innermost active one, so a test asserts without holding on to it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from jobmaster.errors import ConfigError
from jobmaster.handlers.registry import HandlerFunc
from jobmaster.jobs.model import Job, Priority
from jobmaster.middleware import ScheduleNext

if TYPE_CHECKING:
    from jobmaster.app import JobMaster

#: The recordings active now, innermost last (a module global, not a context variable: the sync API
#: schedules from its own thread, and a test asserts from another).
_ACTIVE: list[Recording] = []


class Recording:
    """Keeps every job `app` schedules while active. Without `take`, a call goes on to be written
    (a cluster); with it, the call stops here and `take` gets the jobs (inline mode runs them,
    capture mode keeps them only)."""

    def __init__(self, app: JobMaster, take: Callable[[list[Job]], Awaitable[None]] | None = None) -> None:
        self.app = app
        self.take = take
        #: Every job scheduled while active, in the order of the calls.
        self.jobs: list[Job] = []

    async def __call__(self, call_next: ScheduleNext, jobs: list[Job]) -> None:
        self.jobs.extend(jobs)
        await (call_next(jobs) if self.take is None else self.take(jobs))

    def start(self) -> None:
        if any(r.app is self.app for r in _ACTIVE):
            raise ConfigError(
                "this JobMaster already has an active jobmaster.testing mode (inline, capture or"
                " cluster): leave it before entering another"
            )
        # The innermost layer: the app's own schedule middleware has run when it sees the jobs.
        self.app.schedule_middleware(self)
        _ACTIVE.append(self)

    def stop(self) -> None:
        self.app._schedule_middleware.remove(self)
        _ACTIVE.remove(self)

    def scheduled_jobs(self, handler: str | HandlerFunc | None = None) -> list[Job]:
        """The jobs scheduled while active, of `handler` only when given."""
        if handler is None:
            return list(self.jobs)
        definition_id = self.app.registry.resolve(handler).definition_id
        return [j for j in self.jobs if j.definition_id == definition_id]


def active() -> Recording:
    """The innermost active recording; a clear error when no testing mode is on."""
    if not _ACTIVE:
        raise ConfigError(
            "no jobmaster.testing mode is active: wrap the code under test in"
            " `with jobmaster.testing.inline(jm):`, `capture(jm)` or `async with cluster(jm):`"
            " (or use the jobmaster_inline / jobmaster_capture / jobmaster_cluster fixtures)"
        )
    return _ACTIVE[-1]


def scheduled_jobs(handler: str | HandlerFunc | None = None) -> list[Job]:
    """The jobs scheduled (of `handler`, when given) since the active testing mode began."""
    return active().scheduled_jobs(handler)


def assert_scheduled(
    handler: str | HandlerFunc,
    data: dict[str, Any] | None = None,
    *,
    count: int | None = None,
    priority: Priority | int | str | None = None,
    lane: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> list[Job]:
    """Assert that `handler` was scheduled with `data` (the keys given, compared by equality; others
    may be there too), and the `priority`, `lane` and `metadata` keys given; exactly `count` times
    when given, at least once otherwise. Returns the matching jobs.

    The failure message lists every job scheduled for the handler (and the other handlers' counts),
    so the test output shows what happened instead.
    """
    recording = active()
    jobs = recording.scheduled_jobs(handler)
    wanted_priority = None if priority is None else Priority.parse(priority)
    matches = [
        j
        for j in jobs
        if _contains(j.data, data)
        and _contains(j.metadata, metadata)
        and (wanted_priority is None or j.priority is wanted_priority)
        and (lane is None or j.lane == lane)
    ]
    if (count is None and matches) or (count is not None and len(matches) == count):
        return matches
    definition_id = recording.app.registry.resolve(handler).definition_id
    expected = _describe_expectation(data, priority, lane, metadata)
    times = "at least once" if count is None else f"exactly {count} time(s)"
    raise AssertionError(
        f"expected {definition_id!r} scheduled {times}{expected}; {len(matches)} matched.\n"
        + _describe_scheduled(recording, definition_id, jobs)
    )


def assert_not_scheduled(handler: str | HandlerFunc, data: dict[str, Any] | None = None) -> None:
    """Assert that no job of `handler` (with `data`'s keys, when given) was scheduled."""
    assert_scheduled(handler, data, count=0)


def _contains(actual: dict[str, Any], wanted: dict[str, Any] | None) -> bool:
    return wanted is None or all(k in actual and actual[k] == v for k, v in wanted.items())


def _describe_expectation(
    data: dict[str, Any] | None, priority: object, lane: str | None, metadata: dict[str, Any] | None
) -> str:
    parts = [
        f"{name}={value!r}"
        for name, value in (("data", data), ("priority", priority), ("lane", lane), ("metadata", metadata))
        if value is not None
    ]
    return f" with {', '.join(parts)}" if parts else ""


def _describe_scheduled(recording: Recording, definition_id: str, jobs: list[Job]) -> str:
    lines = [f"scheduled for {definition_id!r}: {len(jobs)} job(s)"]
    lines += [
        f"  - data={j.data!r} priority={j.priority.name} lane={j.lane}"
        + (f" metadata={j.metadata!r}" if j.metadata else "")
        for j in jobs
    ]
    others: dict[str, int] = {}
    for job in recording.jobs:
        if job.definition_id != definition_id:
            others[job.definition_id] = others.get(job.definition_id, 0) + 1
    if others:
        lines.append("other handlers: " + ", ".join(f"{name} x{n}" for name, n in sorted(others.items())))
    return "\n".join(lines)
