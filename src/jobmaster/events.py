"""Typed events: what the engine did, for subscribers (metrics, tracing, a dashboard, logs).

`jm.events.subscribe(JobFailed, callback)` calls `callback(event)` for every such event in this
process; subscribing to a base class (`JobEnded`, or `Event` for all) receives its subclasses too.
Callbacks run inline on the event loop, so they must be quick and must not block: count, record,
or hand the event to a queue of your own. One that raises is logged and the engine goes on.

Emission sites ask `bus.wants(kind)` first, so an event nobody subscribed to is never even built:
unused, the events cost the no-op path one dictionary look-up per job (docs/benchmarks.md).

Per-job events are emitted where the worker decides (a run starts, a run ends); the master write
that records them follows in a batch (`BatchFlushed`), so a run whose lease was lost meanwhile may
still be reported as ended here while the master keeps the newer state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from jobmaster.jobs.model import Attempt, Job

log = logging.getLogger("jobmaster.events")


@dataclass(slots=True, frozen=True)
class Event:
    """Base of every event."""


@dataclass(slots=True, frozen=True)
class JobScheduled(Event):
    """A job is durable: in the master or in an agent's bucket."""

    job: Job


@dataclass(slots=True, frozen=True)
class JobStarted(Event):
    """A worker starts a run of the job (its `attempts` counts this run)."""

    job: Job
    worker_id: str
    bucket_id: str


@dataclass(slots=True, frozen=True)
class JobEnded(Event):
    """A run ended; the subclass says how. `attempt` is the run's record (times, outcome, error)."""

    job: Job
    attempt: Attempt


@dataclass(slots=True, frozen=True)
class JobSucceeded(JobEnded):
    pass


@dataclass(slots=True, frozen=True)
class JobFailed(JobEnded):
    """The run failed and the job ends Failed: no attempt left, or the handler discarded it."""


@dataclass(slots=True, frozen=True)
class JobRetried(JobEnded):
    """The run failed or timed out, and the job runs again at `retry_at` (UTC epoch seconds)."""

    retry_at: float


@dataclass(slots=True, frozen=True)
class JobSnoozed(JobEnded):
    """The handler snoozed: the job runs again at `until` (UTC epoch seconds), spending no retry."""

    until: float


@dataclass(slots=True, frozen=True)
class JobCancelled(JobEnded):
    pass


@dataclass(slots=True, frozen=True)
class JobInterrupted(JobEnded):
    """The worker stopped the run (shutting down, or its lease lost); the job runs again."""


@dataclass(slots=True, frozen=True)
class JobsRecovered(Event):
    """A coordinator gave back `count` jobs whose workers died (their leases lapsed): lost runs."""

    worker_id: str
    count: int


@dataclass(slots=True, frozen=True)
class JobsClaimed(Event):
    """A coordinator claimed `count` due jobs from the master and handed them to buckets."""

    worker_id: str
    count: int


@dataclass(slots=True, frozen=True)
class BatchFlushed(Event):
    """A batcher wrote `size` items to the master in one round trip of `seconds`."""

    batcher: str
    size: int
    seconds: float


E = TypeVar("E", bound=Event)
Callback = Callable[[E], None]


def _event_kinds(root: type[Event] = Event) -> list[type[Event]]:
    kinds = [root]
    for sub in root.__subclasses__():
        kinds += _event_kinds(sub)
    return kinds


class EventBus:
    """Subscriptions, resolved per concrete event class when they change, not when events fire."""

    def __init__(self) -> None:
        self._subscriptions: list[tuple[type[Event], Callable[[Event], None]]] = []
        self._routes: dict[type[Event], tuple[Callable[[Event], None], ...]] = {}
        #: Every event class with a subscriber for it or one of its subclasses.
        self._wanted: frozenset[type[Event]] = frozenset()

    def subscribe(self, kind: type[E], callback: Callable[[E], None]) -> Callable[[], None]:
        """Call `callback` for every event of `kind` or a subclass; returns the unsubscribe function."""
        if not (isinstance(kind, type) and issubclass(kind, Event)):
            raise TypeError(f"subscribe() takes an event class from jobmaster.events, got {kind!r}")
        entry: tuple[type[Event], Callable[[Event], None]] = (kind, callback)  # type: ignore[assignment]
        self._subscriptions.append(entry)
        self._route()

        def unsubscribe() -> None:
            if entry in self._subscriptions:
                self._subscriptions.remove(entry)
                self._route()

        return unsubscribe

    def _route(self) -> None:
        routes: dict[type[Event], tuple[Callable[[Event], None], ...]] = {}
        for kind in _event_kinds():
            callbacks = tuple(cb for base, cb in self._subscriptions if issubclass(kind, base))
            if callbacks:
                routes[kind] = callbacks
        self._routes = routes
        self._wanted = frozenset(base for kind in routes for base in kind.__mro__ if issubclass(base, Event))

    def wants(self, kind: type[Event]) -> bool:
        """Whether anyone listens for `kind` or one of its subclasses: ask before building an event
        on a hot path (`wants(JobEnded)` is true for a subscriber of `JobSnoozed` alone)."""
        return kind in self._wanted

    def emit(self, event: Event) -> None:
        for callback in self._routes.get(type(event), ()):
            try:
                callback(event)
            except Exception:
                log.exception("event subscriber %r failed on %s", callback, type(event).__name__)
