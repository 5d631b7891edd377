"""The worker process of `jobmaster bench`, and the app definition both bench processes share.

Workers run in their own process so the benchmark measures what a deployment sees: publisher and
worker talking only through the master and the agent, each with its own event loop and GIL.
Run as `python -m jobmaster.bench.worker CLUSTER_ID` with its settings in the environment
(`cli.common.helper_env`); it prints `ready` and its event loop once its buckets exist, and stops
when its stdin closes (the bench process ended, however abruptly) or on SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from jobmaster.app import JobMaster
from jobmaster.cli.common import event_loop_name, helper_settings, run_worker_coroutine, stdin_closed

BENCH_AGENT = "bench-agent"
#: One handler id per phase, so each phase's jobs can be counted and read back on their own.
PHASES = ("bulk", "single", "latency", "backlog")


async def noop() -> None:
    return None


def handler_id(phase: str) -> str:
    return f"bench.{phase}"


def build_app(settings: dict[str, Any], *, with_worker: bool) -> JobMaster:
    """The same cluster for publisher and worker; only the worker process configures a worker."""
    agent_url = settings.get("agent")
    worker = dict(settings["worker"], name="bench")
    if agent_url:
        worker["agent"] = BENCH_AGENT
    workers = [worker]
    if settings.get("topology") == "split":
        # issue #3's topology: a coordinator-only worker and an execution-only worker, one process
        workers = [
            {**worker, "name": "bench-coordinator", "mode": "coordinator"},
            {**worker, "mode": "execution"},
        ]
    app = JobMaster(
        settings["cluster_id"],
        settings["master"],
        config_file=settings.get("config_file"),
        agents={BENCH_AGENT: agent_url} if agent_url else None,
        workers=workers if with_worker else None,
    )
    for phase in PHASES:
        app.handler(name=handler_id(phase))(noop)
    return app


async def serve(app: JobMaster) -> None:
    loop = asyncio.get_running_loop()
    parent_gone = stdin_closed(loop)
    runner = asyncio.create_task(app.run())
    ready = asyncio.create_task(app.wait_ready(60.0))
    await asyncio.wait({runner, ready}, return_when=asyncio.FIRST_COMPLETED)
    if runner.done():
        ready.cancel()
        runner.result()
        return
    ready.result()
    print(f"ready {event_loop_name()}", flush=True)
    watcher = asyncio.create_task(parent_gone.wait())
    await asyncio.wait({runner, watcher}, return_when=asyncio.FIRST_COMPLETED)
    if watcher.done():
        app.stop()
    else:
        watcher.cancel()
    await runner


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="bench-worker %(levelname)s %(name)s: %(message)s")
    settings = helper_settings()
    app = build_app(settings, with_worker=True)
    run_worker_coroutine(serve(app))


if __name__ == "__main__":
    main()
