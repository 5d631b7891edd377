"""`jobmaster bench`: the project's benchmark, measured from the master's own records.

The workers run in one separate process (`jobmaster.bench.worker`) and this process only publishes, as in a
deployment. Rates and latencies come from the timestamps the engine wrote (scheduled, started,
finished), not from this process's view, so polling delays here do not distort them.
"""

from __future__ import annotations

import asyncio
import math
import os
import platform
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import psutil

from jobmaster.app import JobMaster
from jobmaster.backends import make_agent
from jobmaster.bench.cpu_meter import CpuMeter
from jobmaster.bench.worker import BENCH_AGENT, build_app, handler_id
from jobmaster.cli.common import (
    CliError,
    emit_report,
    event_loop_name,
    helper_env,
    json_option,
    run_coroutine,
)
from jobmaster.config.urls import redact
from jobmaster.jobs.model import Job, JobStatus, Priority, run_capacity

MB = 1024 * 1024
#: Rows per read when collecting a phase's jobs back from the master.
READ_PAGE = 10_000
POLL_S = 0.05
POLL_MAX_S = 5.0
WORKER_START_TIMEOUT = 60.0
WORKER_STOP_TIMEOUT = 30.0
BACKLOG_DELAY = "1h"
BACKLOG_CHUNK = 10_000
BACKLOG_SETTLE_S = 3.0


class RssSampler:
    """Peak resident memory of the worker process, sampled in a thread.

    A thread, not a task: the event loop is busy publishing exactly when memory peaks. The worker
    starts no processes of its own, and looking for some read every process's `/proc` entry ten
    times a second: about 4% of a core, taken from the engine being measured.
    """

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self._process = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self.peak = 0

    def sample(self) -> int:
        try:
            rss = int(self._process.memory_info().rss)
        except psutil.Error:
            return self.peak
        self.peak = max(self.peak, rss)
        return rss

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.sample()

    def start(self) -> None:
        self.sample()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


class WorkerProcess:
    def __init__(self, settings: dict[str, Any]) -> None:
        self._settings = settings
        self._process: asyncio.subprocess.Process | None = None
        #: The loop the worker reported it runs on (it inherits the bench process's choice).
        self.event_loop = ""

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    async def start(self) -> None:
        # A session of its own: Ctrl-C reaches only this process, which then stops the worker once
        # and gracefully instead of the worker also seeing the signal and stopping abruptly.
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "jobmaster.bench.worker",
            self._settings["cluster_id"],  # names the process in `ps`; the settings go in its environment
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=helper_env(self._settings),
            start_new_session=True,
        )
        assert self._process.stdout is not None
        try:
            line = await asyncio.wait_for(self._process.stdout.readline(), WORKER_START_TIMEOUT)
        except TimeoutError:
            raise CliError(f"bench worker did not start within {WORKER_START_TIMEOUT:.0f}s") from None
        word, _, self.event_loop = line.decode().strip().partition(" ")
        if word != "ready":
            await self._process.wait()
            raise CliError(
                f"bench worker exited with code {self._process.returncode} before it was ready "
                "(its error is above)"
            )

    def check_alive(self) -> None:
        if self._process is not None and self._process.returncode is not None:
            raise CliError(f"bench worker died with exit code {self._process.returncode}")

    async def stop(self) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        if process.stdin is not None:
            process.stdin.close()
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), WORKER_STOP_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()


async def wait_succeeded(
    app: JobMaster, phase: str, expected: int, timeout: float, check: Callable[[], None]
) -> None:
    """Poll the master's count when the rate so far says the phase should be done.

    Counting 100,000 rows costs the database tens of milliseconds; polling that at a fixed 20 Hz
    took a whole core from the engine being measured, and even halving the estimate each time cost
    it a dozen counts (about 6% of the server's time in a 100,000-job run). The figures come from
    stored timestamps, so a later poll only delays noticing the end, never changes the result.
    """
    deadline = time.monotonic() + timeout
    handler = handler_id(phase)
    began = seen_at = time.monotonic()
    seen = 0
    while True:
        done = await app.count_jobs(status=JobStatus.Succeeded, handler=handler)
        if done >= expected:
            return
        check()
        now = time.monotonic()
        if now > deadline:
            raise CliError(f"bench {phase}: only {done} of {expected} jobs succeeded within {timeout:.0f}s")
        # The rate since the last poll: jobs finished while this process was still scheduling
        # would make a rate since the start of the wait look many times faster than it is.
        rate = (done - seen) / max(now - seen_at, 1e-3)
        seen, seen_at = done, now
        # With nothing done yet there is no rate: wait as long again as the phase has waited, so
        # that a phase of a few hundred jobs, done in milliseconds, is not measured over seconds.
        eta = (expected - done) / rate if rate > 0 else now - began
        await asyncio.sleep(min(POLL_MAX_S, max(POLL_S, eta)))


async def read_jobs(app: JobMaster, phase: str) -> list[Job]:
    """Every job of the phase, a page after the other: each read from its cursor, not an offset
    that makes the database read every row before it again."""
    found: list[Job] = []
    cursor = None
    while True:
        page = await app.list_jobs_page(handler=handler_id(phase), limit=READ_PAGE, after=cursor)
        found += page.jobs
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile: an observed value, never an interpolation."""
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def _rate(count: int, seconds: float) -> float:
    return round(count / max(seconds, 1e-9), 1)


async def bulk_phase(
    app: JobMaster, jobs: int, chunk: int, timeout: float, check: Callable[[], None], meter: CpuMeter
) -> dict[str, Any]:
    cpu = meter.read()
    started = time.perf_counter()
    for offset in range(0, jobs, chunk):
        size = min(chunk, jobs - offset)
        await app.schedule_many(handler_id("bulk"), ({} for _ in range(size)))
    scheduling = time.perf_counter() - started
    await wait_succeeded(app, "bulk", jobs, timeout, check)
    wall = time.perf_counter() - started
    spent = meter.per_job(cpu, jobs, "bulk_")
    done = await read_jobs(app, "bulk")
    first_due = min(j.scheduled_at for j in done)
    last_final = max(j.finished_at or 0.0 for j in done)
    return {
        "scheduled_per_s": _rate(jobs, scheduling),
        "completed_per_s": _rate(jobs, last_final - first_due),
        "bulk_completed_s": round(last_final - first_due, 3),
        "bulk_wall_s": round(wall, 3),
        **spent,
    }


async def single_phase(
    app: JobMaster, jobs: int, timeout: float, check: Callable[[], None]
) -> dict[str, Any]:
    handler = handler_id("single")
    started = time.perf_counter()
    for _ in range(jobs):
        await app.schedule(handler)
    scheduling = time.perf_counter() - started
    # Drained before the latency phase so its jobs do not queue behind these.
    await wait_succeeded(app, "single", jobs, timeout, check)
    return {"single_jobs": jobs, "single_scheduled_per_s": _rate(jobs, scheduling)}


async def latency_phase(
    app: JobMaster, rate: int, seconds: float, timeout: float, check: Callable[[], None]
) -> dict[str, Any]:
    handler = handler_id("latency")
    total = max(1, round(rate * seconds))
    sent = 0
    started = time.perf_counter()
    while sent < total:
        due = min(total, int((time.perf_counter() - started) * rate) + 1)
        if due > sent:
            await app.schedule_many(handler, ({} for _ in range(due - sent)))
            sent = due
        await asyncio.sleep(max(0.0, started + sent / rate - time.perf_counter()))
    await wait_succeeded(app, "latency", total, timeout, check)
    latencies = sorted(
        (j.started_at or j.scheduled_at) - j.scheduled_at for j in await read_jobs(app, "latency")
    )
    return {
        "latency_jobs": total,
        "p50_ms": _ms(percentile(latencies, 0.50)),
        "p99_ms": _ms(percentile(latencies, 0.99)),
        "max_ms": _ms(latencies[-1]),
    }


async def backlog_phase(app: JobMaster, jobs: int, sampler: RssSampler) -> dict[str, Any]:
    before = sampler.sample()
    started = time.perf_counter()
    for offset in range(0, jobs, BACKLOG_CHUNK):
        size = min(BACKLOG_CHUNK, jobs - offset)
        await app.schedule_many(handler_id("backlog"), ({} for _ in range(size)), delay=BACKLOG_DELAY)
    scheduling = time.perf_counter() - started
    await asyncio.sleep(BACKLOG_SETTLE_S)
    return {
        "backlog_jobs": jobs,
        "backlog_scheduled_per_s": _rate(jobs, scheduling),
        "rss_before_backlog_mb": round(before / MB, 1),
        "rss_with_backlog_mb": round(sampler.sample() / MB, 1),
    }


async def settle_disk() -> None:
    """Write the machine's dirty pages out before a phase, so that no phase pays for the last.

    The kernel writes a page back about 30 s after it was dirtied. On one disk shared by the
    database and the agent's server, the pages of a 100,000-job bulk phase were written back in the
    middle of the latency phase (90 MB in 150 ms), and a PostgreSQL commit waited 285 ms for its
    WAL flush behind them: a p99 of 250 ms that a latency run on its own never showed.
    """
    await asyncio.to_thread(os.sync)


async def run_bench(settings: dict[str, Any], plan: dict[str, Any]) -> dict[str, Any]:
    # SIGTERM unwinds like Ctrl-C does, so the worker process is stopped on the way out.
    main = asyncio.current_task()
    assert main is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
    worker = WorkerProcess(settings)
    sampler: RssSampler | None = None
    results: dict[str, Any] = {}
    try:
        await worker.start()
        sampler = RssSampler(worker.pid)
        sampler.start()
        app = build_app(settings, with_worker=False)
        timeout, check = plan["timeout"], worker.check_alive
        async with app:
            if plan["mode"] in ("bulk", "both"):
                await settle_disk()
                results |= await bulk_phase(
                    app, plan["jobs"], plan["chunk"], timeout, check, CpuMeter(worker.pid)
                )
            if plan["mode"] in ("single", "both"):
                await settle_disk()
                results |= await single_phase(app, plan["single_jobs"], timeout, check)
            if plan["latency_seconds"] > 0:
                await settle_disk()
                results |= await latency_phase(
                    app, plan["latency_rate"], plan["latency_seconds"], timeout, check
                )
            if plan["backlog_jobs"] > 0:
                results |= await backlog_phase(app, plan["backlog_jobs"], sampler)
            worker.check_alive()
    finally:
        if sampler is not None:
            sampler.stop()
        await worker.stop()
        if settings.get("agent"):
            await _drop_agent(settings)
    assert sampler is not None
    results["peak_rss_mb"] = round(sampler.peak / MB, 1)
    results["worker_event_loop"] = worker.event_loop
    return results


async def _drop_agent(settings: dict[str, Any]) -> None:
    """The bench's cluster is its own: what the agent made for it goes (a NATS stream per run).

    Best effort, on the way out of a run that may be failing already (perhaps because the agent is
    unreachable): a failure here is reported, never raised over the run's own outcome.
    """
    agent = make_agent(settings["agent"], settings["cluster_id"], BENCH_AGENT)
    try:
        await agent.open()
        try:
            await agent.drop()
        finally:
            await agent.close()
    except Exception as exc:
        click.echo(
            f"warning: could not remove what the agent holds for cluster {settings['cluster_id']}: {exc}",
            err=True,
        )


@click.command()
@click.option("--master", metavar="URL", help="Master database URL (default: a fresh temporary SQLite file).")
@click.option(
    "--agent",
    metavar="URL",
    help="Agent URL; the worker binds to it as agent `bench-agent` (default: standalone).",
)
@click.option(
    "--config", "config_file", metavar="FILE", help="TOML file with cluster settings for both processes."
)
@click.option("--jobs", type=click.IntRange(1), default=10_000, show_default=True)
@click.option(
    "--mode",
    type=click.Choice(["bulk", "single", "both"]),
    default="both",
    show_default=True,
    help="Which scheduling phases to run.",
)
@click.option(
    "--chunk-size",
    type=click.IntRange(1, 100_000),
    default=1000,
    show_default=True,
    help="Jobs per schedule_many call in the bulk phase.",
)
@click.option(
    "--latency-rate",
    type=click.IntRange(1),
    default=500,
    show_default=True,
    help="Jobs per second in the latency phase.",
)
@click.option(
    "--latency-seconds",
    type=click.FloatRange(0),
    default=5.0,
    show_default=True,
    help="Length of the latency phase (0 skips it).",
)
@click.option(
    "--backlog-jobs",
    type=click.IntRange(0),
    default=100_000,
    show_default=True,
    help="Far-future jobs to schedule before measuring RSS (0 skips it).",
)
@click.option(
    "--parallelism-factor", type=click.FloatRange(0, 100, min_open=True), default=25.0, show_default=True
)
@click.option("--bucket-buffer-size", type=click.IntRange(1, 100_000), default=2000, show_default=True)
@click.option("--transfer-batch-size", type=click.IntRange(1, 100_000), default=2000, show_default=True)
@click.option("--medium-buckets", type=click.IntRange(1, 100), default=2, show_default=True)
@click.option(
    "--topology",
    type=click.Choice(["full", "split"]),
    default="full",
    show_default=True,
    help="full: one worker doing both duties; split: a coordinator-only and an execution-only "
    "worker in the worker process.",
)
@click.option(
    "--timeout",
    type=float,
    default=600.0,
    show_default=True,
    help="Longest wait for one phase's jobs to finish, in seconds.",
)
@json_option
def bench(
    master: str | None,
    agent: str | None,
    config_file: str | None,
    jobs: int,
    mode: str,
    chunk_size: int,
    latency_rate: int,
    latency_seconds: float,
    backlog_jobs: int,
    parallelism_factor: float,
    bucket_buffer_size: int,
    transfer_batch_size: int,
    medium_buckets: int,
    topology: str,
    timeout: float,
    as_json: bool,
) -> None:
    """Measure scheduling and execution throughput, start latency and worker memory.

    \b
    Example:
      jobmaster bench --master postgresql://postgres@127.0.0.1/bench --jobs 100000 --json
    """
    workdir = None if master else Path(tempfile.mkdtemp(prefix="jobmaster-bench-"))
    master_url = master or f"sqlite:///{workdir}/bench.db"
    worker_settings = {
        "parallelism_factor": parallelism_factor,
        "bucket_buffer_size": bucket_buffer_size,
        "transfer_batch_size": transfer_batch_size,
        "buckets": {Priority.Medium.name: medium_buckets},
    }
    settings = {
        "cluster_id": f"bench-{uuid.uuid4().hex[:12]}",
        "master": master_url,
        "agent": agent,
        "config_file": config_file,
        "worker": worker_settings,
        "topology": topology,
    }
    plan = {
        "jobs": jobs,
        "mode": mode,
        "chunk": chunk_size,
        "single_jobs": max(1000, jobs // 10),
        "latency_rate": latency_rate,
        "latency_seconds": latency_seconds,
        "backlog_jobs": backlog_jobs,
        "timeout": timeout,
    }
    build_app(settings, with_worker=True)  # refuse bad settings here, not in the child process
    try:
        measured = run_coroutine(run_bench(settings, plan))
    except asyncio.CancelledError:
        raise CliError("bench stopped by SIGTERM", 128 + signal.SIGTERM) from None
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
    report = {
        "backend": master_url.split(":", 1)[0].lower(),
        "master": redact(master_url),
        "agent": redact(agent) if agent else None,
        "topology": topology,
        "cluster_id": settings["cluster_id"],
        "jobs": jobs,
        "mode": mode,
        "chunk_size": chunk_size,
        "scheduled_per_s": None,
        "completed_per_s": None,
        "single_scheduled_per_s": None,
        "p50_ms": None,
        "p99_ms": None,
        "max_ms": None,
        **measured,
        "latency_rate": latency_rate,
        "latency_seconds": latency_seconds,
        "worker": {
            **worker_settings,
            "medium_slots_per_bucket": run_capacity(Priority.Medium, parallelism_factor),
        },
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "event_loop": event_loop_name(),
    }
    emit_report(report, f"jobmaster bench ({report['backend']}, {jobs} jobs)", as_json)
