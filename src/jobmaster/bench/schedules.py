"""`jobmaster bench-schedules`: how late the scheduler inserts the jobs of many schedules due at
once, and what it costs a master while nothing is due.

Due phase: `--schedules` dynamic schedules of one expression (every minute by default) in a fresh
cluster, run by one coordinator worker in this process. Each job's lateness is the time its insert
returned (the engine's `JobScheduled` event) minus its occurrence, over `--rounds` occurrences.

Idle phase (PostgreSQL): the same worker with one schedule that is not due, first without the
scheduler duty and then with it, for `--idle` seconds each: the master's commits per second, and
the rows written to the schedule tables.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

import click

from jobmaster.app import JobMaster
from jobmaster.cli.common import Duration, emit_report, json_option, run_coroutine
from jobmaster.config.urls import redact
from jobmaster.events import JobScheduled
from jobmaster.schedules.declarations import declare
from jobmaster.schedules.planning import first_after
from jobmaster.schedules.scheduler import OCCURRENCE_KEY
from jobmaster.schedules.store import ScheduleStore

HANDLER = "bench.scheduled"
#: Schedules written per statement batch while setting up.
SETUP_CHUNK = 1000
WORKER = {"name": "scheduler", "mode": "coordinator"}


def _app(master: str) -> JobMaster:
    jm = JobMaster(f"bench-sched-{uuid.uuid4().hex[:8]}", master, workers=[WORKER])

    @jm.handler(name=HANDLER)
    async def scheduled() -> None:
        """Never run: the bench has no executing worker, so its jobs stay in the master."""

    return jm


async def _add_schedules(jm: JobMaster, count: int, expression: str) -> float:
    """Add `count` schedules; returns their first occurrence."""
    handler = jm.registry.resolve(HANDLER)
    now = time.time()
    specs = [declare(handler, expression, name=f"s{n:07d}", cluster=jm.config) for n in range(count)]
    first = first_after(specs[0].timing, now)
    store = ScheduleStore(jm.runtime.master)
    for start in range(0, count, SETUP_CHUNK):
        await store.add([(s, first) for s in specs[start : start + SETUP_CHUNK]], "dynamic", now)
    return first


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def due_phase(master: str, count: int, expression: str, rounds: int) -> dict[str, Any]:
    jm = _app(master)
    lateness: dict[str, list[float]] = {}

    def record(event: JobScheduled) -> None:
        occurrence = event.job.metadata[OCCURRENCE_KEY]
        moment = datetime.fromisoformat(occurrence).timestamp()
        lateness.setdefault(occurrence, []).append(time.time() - moment)

    jm.events.subscribe(JobScheduled, record)
    async with jm:
        first = await _add_schedules(jm, count, expression)
        async with jm.running():
            deadline = time.time() + (first - time.time()) + rounds * 3600
            while sum(len(v) for v in lateness.values()) < count * rounds:
                if time.time() > deadline:
                    raise click.ClickException("the scheduler did not insert every occurrence in time")
                await asyncio.sleep(0.2)
    report: dict[str, Any] = {"schedules": count, "expression": expression, "rounds": rounds}
    # One section a round: emit_report shows one level of nesting as `section.name` rows.
    for n, (occurrence, values) in enumerate(sorted(lateness.items())[:rounds], start=1):
        report[f"round_{n}"] = {
            "occurrence": occurrence,
            "jobs": len(values),
            "first_s": round(min(values), 3),
            "p50_s": round(_percentile(values, 0.5), 3),
            "p99_s": round(_percentile(values, 0.99), 3),
            "last_s": round(max(values), 3),
            "within_1s": sum(v <= 1.0 for v in values),
        }
    return report


async def _commits(jm: JobMaster) -> tuple[int, int]:
    """The master database's commits, and the rows written to the schedule tables, so far."""
    sql = ScheduleStore(jm.runtime.master).master.sql  # the SQL master the store checked for
    commits = await sql.fetchval(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()", ()
    )
    rows = await sql.fetchval(
        "SELECT COALESCE(SUM(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables"
        " WHERE relname IN ('jm_schedules', 'jm_schedule_declarations')",
        (),
    )
    return int(commits), int(rows)


async def _measure(jm: JobMaster, seconds: float) -> tuple[float, float]:
    async with jm.running():
        await asyncio.sleep(min(5.0, seconds))  # start-up writes (declaring, registering) settle
        before = await _commits(jm)
        await asyncio.sleep(seconds)
        after = await _commits(jm)
    return (after[0] - before[0]) / seconds, (after[1] - before[1]) * 60 / seconds


async def idle_phase(master: str, seconds: float) -> dict[str, Any]:
    def yearly(jm: JobMaster) -> JobMaster:
        jm.recurring("0 0 1 1 *", name="yearly")(jm.registry.resolve(HANDLER).func)
        return jm

    without = yearly(_app(master))
    without.duties.remove(without.schedules.duty)
    with_duty = yearly(_app(master))
    report: dict[str, Any] = {"idle_seconds": seconds}
    for label, jm in (("idle_without_scheduler", without), ("idle_with_scheduler", with_duty)):
        commits, rows = await _measure(jm, seconds)
        report[label] = {"commits_per_s": round(commits, 2), "schedule_rows_written_per_min": round(rows, 2)}
    return report


@click.command("bench-schedules")
@click.option(
    "--master", required=True, metavar="URL", help="The master to measure (PostgreSQL for the idle phase)."
)
@click.option("--schedules", "count", type=click.IntRange(1, 1_000_000), default=10_000, show_default=True)
@click.option(
    "--expression", default="* * * * *", show_default=True, help="The expression of every schedule."
)
@click.option(
    "--rounds", type=click.IntRange(1, 100), default=2, show_default=True, help="Occurrences measured."
)
@click.option(
    "--idle", type=Duration(), default=60.0, show_default=True, help="Seconds of each idle run; 0 skips."
)
@json_option
def bench_schedules(
    master: str, count: int, expression: str, rounds: int, idle: float, as_json: bool
) -> None:
    """Measure how late many schedules due at once are inserted, and the idle cost of the scheduler.

    \b
    Example:
      jobmaster bench-schedules --master postgresql://localhost/jobs --schedules 10000
    """
    phases: list[Callable[[], Coroutine[Any, Any, dict[str, Any]]]] = [
        lambda: due_phase(master, count, expression, rounds)
    ]
    if idle > 0 and master.startswith("postgres"):
        phases.append(lambda: idle_phase(master, idle))
    report: dict[str, Any] = {"master": redact(master)}
    for phase in phases:
        report.update(run_coroutine(phase()))
    emit_report(report, "bench-schedules", as_json)
