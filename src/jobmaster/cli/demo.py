"""`jobmaster demo`: a self-contained cluster that shows the engine at work in a few seconds.

It exercises what a first-time user wants to see: every priority, async and sync handlers, delayed
jobs, transient failures that succeed on retry, and jobs that exhaust their retries and fail.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from jobmaster.app import JobMaster
from jobmaster.cli.common import EXIT_FAILURE, CliError, console, emit_json, json_option, run_coroutine
from jobmaster.cli.status import count_rows, counts_table
from jobmaster.handlers.context import JobContext
from jobmaster.jobs.model import FINAL_STATUSES, JobStatus, Priority

#: Jobs that always fail: enough to show up in the summary, few enough not to slow the demo.
BROKEN_JOBS = 5
DELAYED_JOBS = 10
DELAY_S = 1.0
#: One job in this many fails its first attempt.
FLAKY_EVERY = 50


async def noop(n: int) -> None:
    await asyncio.sleep(random.uniform(0.0, 0.005))


def crunch(n: int) -> int:
    return sum(i * i for i in range(200 + n % 100))


async def flaky(ctx: JobContext, n: int, fail_first: bool) -> None:
    await asyncio.sleep(random.uniform(0.0, 0.005))
    if fail_first and ctx.attempt == 1:
        raise ConnectionError(f"demo: transient failure of job {n}, attempt {ctx.attempt}")


async def broken(n: int) -> None:
    raise RuntimeError(f"demo: job {n} always fails")


def build_app(db_path: Path) -> JobMaster:
    app = JobMaster(
        f"demo-{uuid.uuid4().hex[:8]}",
        f"sqlite:///{db_path}",
        workers=[{"name": "demo", "parallelism_factor": 8, "bucket_buffer_size": 500}],
        retry_backoff_base=0.05,
        retry_backoff_cap=0.5,
    )
    app.handler(name="demo.noop")(noop)
    app.handler(name="demo.crunch")(crunch)
    app.handler(name="demo.flaky")(flaky)
    app.handler(name="demo.broken", max_retries=2)(broken)
    return app


async def schedule_all(app: JobMaster, total: int) -> int:
    """Spread `total` jobs over every priority and handler; returns how many were scheduled."""
    broken_jobs = min(BROKEN_JOBS, total // 20)
    delayed = min(DELAYED_JOBS, total // 20)
    await app.schedule_many("demo.broken", [{"n": i} for i in range(broken_jobs)])
    for i in range(delayed):
        await app.schedule("demo.noop", {"n": i}, delay=DELAY_S + i * 0.1, priority=Priority(i % 5))
    rest = total - broken_jobs - delayed
    batches: dict[tuple[str, Priority], list[dict[str, Any]]] = defaultdict(list)
    for n in range(rest):
        priority = Priority(n % len(Priority))
        kind = n % 10
        if kind < 6:
            batches[("demo.noop", priority)].append({"n": n})
        elif kind < 8:
            batches[("demo.crunch", priority)].append({"n": n})
        else:
            batches[("demo.flaky", priority)].append({"n": n, "fail_first": n % FLAKY_EVERY == 8})
    for (handler, priority), items in batches.items():
        await app.schedule_many(handler, items, priority=priority)
    return broken_jobs + delayed + rest


async def run_demo(app: JobMaster, total: int, timeout: float, progress: Progress | None) -> float:
    runner = asyncio.create_task(app.run(handle_signals=False))
    try:
        await app.wait_ready()
        started = time.perf_counter()
        await schedule_all(app, total)
        task = progress.add_task("jobs finished", total=total) if progress else None
        final = list(FINAL_STATUSES)
        while True:
            done = await app.count_jobs(status=final)
            if progress is not None and task is not None:
                progress.update(task, completed=done)
            if done >= total:
                return time.perf_counter() - started
            if time.perf_counter() - started > timeout:
                raise CliError(f"demo: only {done} of {total} jobs finished within {timeout:.0f}s")
            await asyncio.sleep(0.1)
    finally:
        app.stop()
        await runner


async def _counts(app: JobMaster) -> list[dict[str, Any]]:
    async with app:
        return count_rows(await app.counts())


@click.command()
@click.option("--jobs", "total", type=click.IntRange(20, 1_000_000), default=3000, show_default=True)
@click.option(
    "--db",
    "db_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="SQLite file to use and keep (default: a temporary file, removed afterwards).",
)
@click.option(
    "--timeout", type=float, default=120.0, show_default=True, help="Give up after this many seconds."
)
@json_option
def demo(total: int, db_file: Path | None, timeout: float, as_json: bool) -> None:
    """Run a throw-away cluster on SQLite with demo handlers and show what happened.

    \b
    Example:
      jobmaster demo --jobs 3000
    """
    workdir = None if db_file else Path(tempfile.mkdtemp(prefix="jobmaster-demo-"))
    db_path = db_file or Path(workdir or ".") / "demo.db"
    app = build_app(db_path)
    try:
        if as_json:
            elapsed = run_coroutine(run_demo(app, total, timeout, None))
        else:
            console.print(f"demo cluster [bold]{app.config.cluster_id}[/] on {db_path}: {total} jobs")
            columns = (
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
            )
            with Progress(*columns, console=console) as progress:
                elapsed = run_coroutine(run_demo(app, total, timeout, progress))
        counts = run_coroutine(_counts(app))
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
    final = sum(row["count"] for row in counts if JobStatus[row["status"]].is_final)
    by_status: dict[str, Counter[str]] = defaultdict(Counter)
    for row in counts:
        by_status[row["status"]][row["priority"]] += row["count"]
    summary = {
        "cluster_id": app.config.cluster_id,
        "db": str(db_path) if db_file else None,
        "jobs": total,
        "final": final,
        "elapsed_s": round(elapsed, 3),
        "jobs_per_s": round(total / elapsed, 1),
        "counts": by_status,
    }
    if as_json:
        emit_json(summary)
    else:
        console.print(counts_table(counts))
        console.print(
            f"{final}/{total} jobs final in {elapsed:.2f}s ({total / elapsed:.0f} jobs/s)"
            + (
                f"; inspect with --master sqlite:///{db_path} --cluster {app.config.cluster_id}"
                if db_file
                else ""
            )
        )
    if final != total:
        raise SystemExit(EXIT_FAILURE)
