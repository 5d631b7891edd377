"""Middleware: code that wraps every handler run, or every scheduling call, without editing the core.

Two shapes, as in Procrastinate:

- **run middleware**, `async def layer(call_next, job) -> Any`: `await call_next()` runs the handler
  (or the next layer) and returns the handler's result, which the layer returns in turn. It may time
  the run, open a tracing span, set a context variable (sync handlers see it: they run in a copy of
  the caller's context), or raise `Discard`/`Snooze` instead of calling on.
- **schedule middleware**, `async def layer(call_next, jobs) -> None`: sees the validated jobs of one
  scheduling call before anything is written, may change their `metadata` (a trace context, a tenant
  id), then `await call_next(jobs)`. Raising refuses the whole call, and nothing is written.

A chain is composed once, when a layer or a handler is registered: the app's layers first (outermost),
then the handler's own. An empty chain is no chain at all (`None`): the executor then calls the
handler directly, so middleware costs nothing per job until someone uses it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

from jobmaster.jobs.model import Job

RunNext = Callable[[], Awaitable[Any]]
RunMiddleware = Callable[[RunNext, Job], Awaitable[Any]]
#: A composed run chain: call it with the innermost call (the handler) and the job.
RunChain = Callable[[RunNext, Job], Awaitable[Any]]
ScheduleNext = Callable[[list[Job]], Awaitable[None]]
ScheduleMiddleware = Callable[[ScheduleNext, list[Job]], Awaitable[None]]


def compose_run(layers: Sequence[RunMiddleware]) -> RunChain | None:
    """One chain of `layers`, the first outermost; None when there are none (the handler runs bare)."""
    if not layers:
        return None
    ordered = tuple(reversed(layers))

    def chain(call: RunNext, job: Job) -> Awaitable[Any]:
        for layer in ordered:
            call = partial(layer, call, job)
        return call()

    return chain


def compose_schedule(layers: Sequence[ScheduleMiddleware], innermost: ScheduleNext) -> ScheduleNext:
    """`innermost` wrapped in `layers`, the first outermost; `innermost` itself when there are none."""
    call = innermost
    for layer in reversed(layers):
        call = partial(layer, call)
    return call
