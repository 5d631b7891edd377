"""The app of the results tests: a worker process runs it (`jobmaster worker --app results_app:jm`,
configured by RESULTS_MASTER and RESULTS_CLUSTER), and the test's own process registers the same
handlers with `register`, to schedule them and wait for their results."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from jobmaster import JobMaster

#: How long a held job waits for its gate file before failing: the test opens it within seconds.
GATE_DEADLINE = 120.0


def register(app: JobMaster) -> JobMaster:
    @app.handler(name="results.add")
    async def add(a: int, b: int, gate: str = "") -> dict[str, int]:
        """Returns once the file `gate` exists (if given): the test opens it once it waits."""
        deadline = time.monotonic() + GATE_DEADLINE
        while gate and not Path(gate).exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"gate {gate} never opened")
            await asyncio.sleep(0.01)
        return {"sum": a + b, "pid": os.getpid()}

    @app.handler(name="results.broken", max_retries=0)
    def broken() -> None:
        raise RuntimeError("broken on purpose")

    return app


def worker_app() -> JobMaster:
    return register(
        JobMaster(
            os.environ["RESULTS_CLUSTER"],
            os.environ["RESULTS_MASTER"],
            workers=[{"name": "results-worker"}],
            heartbeat_interval=0.5,
            job_lease=3,
            worker_timeout=2,
        )
    )


jm = worker_app() if "RESULTS_MASTER" in os.environ else None
