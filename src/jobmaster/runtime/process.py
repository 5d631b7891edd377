"""Tuning of a process that runs workers: the event loop it runs on and its garbage collector.

The published figures (docs/benchmarks.md) were measured on processes tuned this way.
`jobmaster worker` runs the application through `run_worker_process`; an application that runs
its workers itself calls the same function (`run_worker_process(jm.run())`). Where a server
already owns the loop (an ASGI lifespan under uvicorn, which picks uvloop itself where installed),
`tune_worker_gc()` before `jm.running()` is the part that still applies.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from jobmaster.errors import ConfigError

T = TypeVar("T")

#: `auto` is uvloop where it is installed, else asyncio's own loop.
EVENT_LOOPS = ("auto", "uvloop", "asyncio")

#: Tracked allocations between the garbage collector's young-generation passes (Python's default: 700).
WORKER_GC_THRESHOLD = 10_000

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def uvloop_factory() -> LoopFactory | None:
    """uvloop's loop factory, or None where uvloop is not installed (Windows, or removed)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def event_loop_factory(event_loop: str = "auto") -> LoopFactory | None:
    """The `loop_factory` of `asyncio.Runner` for a choice of `EVENT_LOOPS`; None is asyncio's own.

    uvloop's loop, handles and transports are written in C: it took a tenth of the CPU off a
    worker process per job (docs/benchmarks.md), where the standard loop's Python shows in every
    profile.
    """
    if event_loop not in EVENT_LOOPS:
        raise ConfigError(f"event loop {event_loop!r} is not one of {', '.join(EVENT_LOOPS)}")
    if event_loop == "asyncio":
        return None
    factory = uvloop_factory()
    if factory is None and event_loop == "uvloop":
        raise ConfigError("event loop 'uvloop' is chosen but uvloop is not installed: pip install uvloop")
    return factory


def tune_worker_gc() -> None:
    """Keep the garbage collector off a worker process's hot path.

    A worker allocates several tracked objects per job (the job, its task and coroutine), so a full
    collection ran every ten thousand jobs or so, and each walked every module, class and function
    loaded at start: about a tenth of a busy worker's CPU. Frozen objects are never collected;
    what start-up made is meant to live as long as the process does. With that done, the young
    passes remained: one every 126 jobs with Python's default threshold, each about 200 us (a NATS
    pack alone brings a thousand new objects), 7% of the worker's CPU in the NATS bench. At 10,000
    they took 0.05 s per 100,000 jobs instead of 0.3, for a few MB more of garbage waiting.

    Call it once the application's modules are imported (what is frozen then is never collected),
    in a process whose main work is running jobs.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(WORKER_GC_THRESHOLD, middle, old)


def run_worker_process(main: Coroutine[Any, Any, T], *, event_loop: str = "auto") -> T:
    """Run `main` (usually `jm.run()`) as `jobmaster worker` does: the collector tuned
    (`tune_worker_gc`) and on the chosen event loop, uvloop where installed by default."""
    try:
        factory = event_loop_factory(event_loop)
    except ConfigError:
        main.close()
        raise
    tune_worker_gc()
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
