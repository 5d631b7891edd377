"""Starlette and FastAPI: a lifespan that opens the cluster, and a dependency that returns it.

```python
from fastapi import Depends, FastAPI
from jobmaster.contrib.starlette import get_jobmaster, lifespan

app = FastAPI(lifespan=lifespan(jm))                  # a publisher: the web process only schedules
app = FastAPI(lifespan=lifespan(jm, workers=True))    # or the app's workers run in this process too

@app.post("/signup")
async def signup(email: str, jm: JobMaster = Depends(get_jobmaster)) -> dict[str, str]:
    return {"job_id": await jm.schedule(send_welcome, {"email": email})}
```

Embedded workers run in every process that runs the lifespan: `uvicorn --workers 4` runs four sets,
and `--reload` stops and starts them with each reload. The recommended layout is a web process that
only schedules and a separate `jobmaster worker` (docs/web.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

from jobmaster.contrib import missing_extra

try:
    from starlette.requests import HTTPConnection
except ModuleNotFoundError as exc:
    raise missing_extra(__name__, "web", exc) from exc

from jobmaster.app import JobMaster
from jobmaster.durations import duration_within
from jobmaster.errors import ConfigError

log = logging.getLogger("jobmaster.contrib.starlette")

#: The key of the app in the lifespan state (`request.state.jobmaster`) and on `app.state`.
STATE_KEY = "jobmaster"
#: How much longer than the workers' `shutdown_grace` a stop may take by default: the time to write
#: back what they give back once the grace is over.
STOP_MARGIN = 5.0

Lifespan = Callable[[Any], contextlib.AbstractAsyncContextManager[dict[str, Any]]]


def lifespan(
    jm: JobMaster,
    *,
    workers: bool = False,
    start_timeout: float | str | None = 0,
    shutdown_timeout: float | str | None = None,
) -> Lifespan:
    """The lifespan of an ASGI app that schedules on `jm` (and with `workers`, runs its workers).

    It opens `jm` at startup (failing the startup at once if the master cannot be reached, or
    after `start_timeout`), yields it as the lifespan state `jobmaster` (and sets
    `app.state.jobmaster`), and closes it at shutdown. With `workers`, the app's workers run in the
    background (`jm.running()`, no signal handlers: the server owns them), and stopping them is
    bounded by `shutdown_timeout` (default: the workers' `shutdown_grace` plus 5 s): running jobs
    get the grace, buffered ones go back, and whatever is left when the time is up is interrupted
    (it runs again when its lease lapses), so the shutdown fits the server's own stop timeout.
    """
    if not isinstance(jm, JobMaster):
        raise ConfigError(f"lifespan() needs a JobMaster object, got {type(jm).__name__}")
    if workers and not jm.config.workers:
        raise ConfigError(
            "lifespan(workers=True) needs workers to run: configure them on the JobMaster"
            " (add_worker() or a [[workers]] table), or drop workers=True to only schedule"
        )
    stop_within = jm.config.shutdown_grace + STOP_MARGIN
    if shutdown_timeout is not None:
        try:
            stop_within = duration_within(shutdown_timeout, 3600.0, "1 hour", "shutdown_timeout")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    @contextlib.asynccontextmanager
    async def run(app: Any) -> AsyncIterator[dict[str, Any]]:
        app.state.jobmaster = jm
        if not workers:
            await jm.open(start_timeout=start_timeout)
            try:
                yield {STATE_KEY: jm}
            finally:
                await jm.close()
            return
        running = jm.running(start_timeout=start_timeout)
        await running.__aenter__()
        log.info("embedded jobmaster workers started in process %d", os.getpid())
        try:
            yield {STATE_KEY: jm}
        finally:
            await _stop(running, stop_within)

    return run


async def _stop(running: contextlib.AbstractAsyncContextManager[Any], within: float) -> None:
    """Leave `jm.running()`, cutting the graceful stop short after `within` seconds."""
    try:
        await asyncio.wait_for(running.__aexit__(None, None, None), within)
    except TimeoutError:
        log.warning(
            "embedded workers did not stop within %gs: the jobs still running were interrupted"
            " and run again when their lease lapses",
            within,
        )


def get_jobmaster(conn: HTTPConnection) -> JobMaster:
    """The app's JobMaster, for `Depends(get_jobmaster)` in FastAPI (or call it with a request)."""
    found = getattr(conn.state, STATE_KEY, None) or getattr(conn.app.state, STATE_KEY, None)
    if not isinstance(found, JobMaster):
        raise ConfigError(
            "this app has no JobMaster: create it with"
            " lifespan=jobmaster.contrib.starlette.lifespan(jm) (or enter that lifespan in your own)"
        )
    return found
