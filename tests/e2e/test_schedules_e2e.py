"""Recurring schedules with real processes on PostgreSQL: several processes running the scheduler
make exactly one job per occurrence; a killed worker restarted after a gap catches up per policy;
overlap `skip` with a slow handler; a schedule removed by a deploy is retired only once no process
declares it; pause and resume from the CLI; and the distributed topology (master plus a NATS
JetStream agent), where coordinator-only processes run the scheduler and an execution process runs
every occurrence from its buckets on the agent.

Size: JMTEST_SCHEDULE_SECONDS, the window of the every-second schedule run by three workers and an
embedded app (CI default 15; the issue's size is 60).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from e2e_support import HERE, NATS_AGENT, RELAXED_LEASES, Processes, wait_registered

from jobmaster.jobs.model import JobStatus

WINDOW = float(os.environ.get("JMTEST_SCHEDULE_SECONDS", "15"))
EVERY_SECOND = "every 1 second"
#: The window of the distributed test's every-second schedule.
AGENT_WINDOW = 10


class ScheduleProcesses(Processes):
    app_script = HERE / "schedules_app.py"

    def start(
        self,
        name: str,
        declare: list[dict[str, Any]],
        mode: str = "worker",
        workers: list[dict[str, Any]] | None = None,
    ) -> subprocess.Popen[bytes]:
        """A process declaring the schedules `declare`; its `workers` (one full worker by default)
        may be bound to an agent of `self.agents` in a mode."""
        self._declare, self._mode = declare, mode
        return self.worker(name, workers or [{"name": "w", "parallelism_factor": 2}])

    def env(self, workers: list[dict[str, Any]], agents: dict[str, str] | None = None) -> dict[str, str]:
        return {
            **super().env(workers, agents),
            "SCHED_DECLARE": json.dumps(self._declare),
            "SCHED_MODE": self._mode,
        }


@pytest.fixture
def procs(pg_urls: dict[str, str], cluster_id: str, tmp_path: Path) -> Iterator[ScheduleProcesses]:
    asyncio.run(_execute(pg_urls["master"], RUNS_TABLE))
    processes = ScheduleProcesses(pg_urls["master"], cluster_id, tmp_path)
    yield processes
    processes.stop_all()


RUNS_TABLE = (
    "CREATE TABLE IF NOT EXISTS sched_runs (job_id text, schedule text, occurrence float8, pid int,"
    " started float8, finished float8)"
)


async def _connect(master: str) -> asyncpg.Connection:
    """A connection, waiting for a free one while the shared server is full (other test runs)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return await asyncpg.connect(master)
        except asyncpg.TooManyConnectionsError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def _execute(master: str, statement: str) -> None:
    conn = await _connect(master)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def _fetch(master: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await _connect(master)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


def occurrences(procs: Processes, name: str) -> list[float]:
    """The occurrence time of every job the schedule made, as the master holds them."""
    rows = asyncio.run(
        _fetch(
            procs.master,
            "SELECT (extract(epoch FROM (metadata->>'occurrence')::timestamptz))::float8 AS o FROM jm_jobs"
            " WHERE cluster_id = $1 AND metadata->>'schedule' = $2 ORDER BY o",
            procs.cluster,
            name,
        )
    )
    return [r[0] for r in rows]


def runs(procs: Processes, name: str) -> list[asyncpg.Record]:
    return asyncio.run(
        _fetch(
            procs.master,
            "SELECT r.* FROM sched_runs r JOIN jm_jobs j ON j.id = r.job_id"
            " WHERE j.cluster_id = $1 AND r.schedule = $2 ORDER BY r.started",
            procs.cluster,
            name,
        )
    )


def schedule_row(procs: Processes, name: str) -> asyncpg.Record:
    found = asyncio.run(
        _fetch(
            procs.master,
            "SELECT * FROM jm_schedules WHERE cluster_id = $1 AND name = $2",
            procs.cluster,
            name,
        )
    )
    assert found, f"schedule {name} is not in the master"
    return found[0]


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not reached in {timeout}s: {what}"
        time.sleep(0.2)


def last_at(procs: Processes, name: str) -> float:
    rows = asyncio.run(
        _fetch(
            procs.master,
            "SELECT last_at FROM jm_schedules WHERE cluster_id = $1 AND name = $2",
            procs.cluster,
            name,
        )
    )
    return rows[0][0] if rows and rows[0][0] is not None else 0.0


def test_three_workers_and_an_embedded_app_make_one_job_per_occurrence(procs: ScheduleProcesses) -> None:
    tick = [{"name": "tick", "expr": EVERY_SECOND}]
    for n in range(3):
        procs.start(f"worker-{n}", tick)
    procs.start("embedded", tick, mode="embedded")
    asyncio.run(wait_registered(procs.master, procs.cluster, 4))
    # Every occurrence of the window, once all four processes run the scheduler.
    expected = [float(int(time.time()) + 1 + s) for s in range(int(WINDOW))]
    wait_until(lambda: last_at(procs, "tick") >= expected[-1], WINDOW + 60, "the window's occurrences")
    wait_until(
        lambda: {r["occurrence"] for r in runs(procs, "tick")} >= set(expected),
        60,
        "a run of each occurrence",
    )
    assert procs.stop_all() == [0, 0, 0, 0]
    found = occurrences(procs, "tick")
    assert len(found) == len(set(found)), "an occurrence became two jobs"
    assert set(expected) <= set(found), f"missing occurrences: {sorted(set(expected) - set(found))}"
    ran = runs(procs, "tick")
    per_occurrence: dict[float, int] = {}
    for r in ran:
        per_occurrence[r["occurrence"]] = per_occurrence.get(r["occurrence"], 0) + 1
    assert all(per_occurrence[o] == 1 for o in expected), "an occurrence ran twice"
    assert len({r["pid"] for r in ran}) > 1, "one process ran every job"
    row = schedule_row(procs, "tick")
    assert (row["missed"], row["skipped"]) == (0, 0)


def scheduled_jobs(procs: Processes, name: str) -> list[asyncpg.Record]:
    """The schedule's jobs with the bucket each was assigned to (read before the workers stop: a
    stopping worker deletes its buckets)."""
    return asyncio.run(
        _fetch(
            procs.master,
            "SELECT (extract(epoch FROM (j.metadata->>'occurrence')::timestamptz))::float8 AS occurrence,"
            " j.status, j.worker_id, b.agent, b.worker_id AS bucket_worker"
            " FROM jm_jobs j LEFT JOIN jm_buckets b ON b.id = j.bucket_id"
            " WHERE j.cluster_id = $1 AND j.metadata->>'schedule' = $2 ORDER BY occurrence",
            procs.cluster,
            name,
        )
    )


def test_a_distributed_cluster_runs_each_occurrence_once_through_the_agent(
    shared_nats: str, procs: ScheduleProcesses
) -> None:
    """Two coordinator-only processes run the scheduler (an execution-only one runs none); the jobs
    they insert in the master are assigned by a coordinator to the execution process's buckets on
    the NATS agent and run there, one job per occurrence."""
    tick = [{"name": "tick", "expr": EVERY_SECOND}]
    procs.agents = {NATS_AGENT: shared_nats}
    procs.settings = RELAXED_LEASES
    brains = [
        procs.start(
            f"brain-{n}", tick, workers=[{"name": f"brain-{n}", "agent": NATS_AGENT, "mode": "coordinator"}]
        )
        for n in (1, 2)
    ]
    executor = procs.start(
        "exec",
        tick,
        workers=[{"name": "exec", "agent": NATS_AGENT, "mode": "execution", "parallelism_factor": 2}],
    )
    asyncio.run(wait_registered(procs.master, procs.cluster, 3))
    expected = [float(int(time.time()) + 1 + s) for s in range(AGENT_WINDOW)]
    wait_until(lambda: last_at(procs, "tick") >= expected[-1], AGENT_WINDOW + 60, "the window's occurrences")

    def window_done() -> list[asyncpg.Record] | None:
        """Every job up to the window's end, once each has succeeded (later ones may still run)."""
        jobs = [j for j in scheduled_jobs(procs, "tick") if j["occurrence"] <= expected[-1]]
        return jobs if all(j["status"] == JobStatus.Succeeded for j in jobs) else None

    wait_until(lambda: window_done() is not None, 60, "every job of the window succeeded")
    done = window_done()
    assert done is not None
    assert procs.stop_all() == [0, 0, 0]

    found = occurrences(procs, "tick")
    assert len(found) == len(set(found)), "an occurrence became two jobs"
    assert found == [found[0] + s for s in range(len(found))], f"occurrences not contiguous: {found}"
    assert set(expected) <= set(found), f"missing occurrences: {sorted(set(expected) - set(found))}"
    elsewhere = [
        tuple(j)
        for j in done
        if j["agent"] != NATS_AGENT
        or not str(j["bucket_worker"]).startswith("exec-")
        or not str(j["worker_id"]).startswith("exec-")
    ]
    assert not elsewhere, f"jobs not run from the execution worker's buckets on the agent: {elsewhere}"
    ran: dict[float, list[int]] = {}
    for r in runs(procs, "tick"):
        ran.setdefault(r["occurrence"], []).append(r["pid"])
    assert {j["occurrence"]: ran.get(j["occurrence"]) for j in done} == {
        j["occurrence"]: [executor.pid] for j in done
    }, "an occurrence did not run exactly once, in the execution process"
    declarers = asyncio.run(
        _fetch(
            procs.master,
            "SELECT declarer FROM jm_schedule_declarations WHERE cluster_id = $1 AND name = 'tick'",
            procs.cluster,
        )
    )
    # The declarer is `pid-random`: both coordinator processes ran the scheduler, the executor none.
    assert {int(d[0].split("-")[0]) for d in declarers} == {b.pid for b in brains}
    row = schedule_row(procs, "tick")
    assert (row["missed"], row["skipped"]) == (0, 0)


def test_a_killed_worker_restarted_after_a_gap_catches_up_per_policy(procs: ScheduleProcesses) -> None:
    declare = [
        {"name": "all", "expr": EVERY_SECOND, "catch_up": "all"},
        {"name": "latest", "expr": EVERY_SECOND, "catch_up": "latest"},
        {"name": "skip", "expr": EVERY_SECOND, "catch_up": "skip"},
    ]
    worker = procs.start("worker-1", declare)
    asyncio.run(wait_registered(procs.master, procs.cluster, 1))
    wait_until(lambda: all(len(runs(procs, d["name"])) >= 2 for d in declare), 60, "two runs of each")
    worker.send_signal(signal.SIGKILL)
    worker.wait(30)
    killed_at = time.time()
    gap = 14.0  # longer than the on-time tolerance (10 s), so `skip` and `latest` differ
    wait_until(lambda: time.time() > killed_at + gap, gap + 5, "the gap")
    procs.start("worker-2", declare)
    restarted = time.time()
    wait_until(
        lambda: all(schedule_row(procs, d["name"])["last_at"] >= restarted + 2 for d in declare),
        60,
        "passes after the restart",
    )
    procs.stop_all()

    every = occurrences(procs, "all")
    assert every == [every[0] + s for s in range(len(every))], "catch_up=all left a hole"
    assert schedule_row(procs, "all")["missed"] == 0

    for name in ("latest", "skip"):
        found = occurrences(procs, name)
        steps = [b - a for a, b in pairwise(found)]
        holes = [s for s in steps if s > 1]
        assert len(holes) == 1 and holes[0] >= gap - 2, (name, steps)
        # Every occurrence of the hole was counted as missed, none twice.
        assert schedule_row(procs, name)["missed"] == holes[0] - 1, name
        hole_start = found[steps.index(holes[0])]
        assert hole_start < killed_at and hole_start + holes[0] >= restarted - 1, name
    # `latest` ran the latest occurrence due at the restart; `skip` only the first one after it.
    latest_after = next(o for o in occurrences(procs, "latest") if o > killed_at)
    skip_after = next(o for o in occurrences(procs, "skip") if o > killed_at)
    assert latest_after < skip_after


def test_overlap_skip_never_starts_an_occurrence_while_the_previous_one_runs(
    procs: ScheduleProcesses,
) -> None:
    slow = [{"name": "slow", "expr": EVERY_SECOND, "seconds": 2.5, "overlap": "skip"}]
    procs.start("worker-1", slow)
    procs.start("worker-2", slow)
    asyncio.run(wait_registered(procs.master, procs.cluster, 2))
    wait_until(lambda: len(runs(procs, "slow")) >= 4, 90, "four runs of the slow handler")
    procs.stop_all()
    ran = runs(procs, "slow")
    for before, after in pairwise(ran):
        assert after["started"] >= before["finished"], "two occurrences ran at once"
    assert schedule_row(procs, "slow")["skipped"] >= len(ran) - 1


def test_a_schedule_removed_by_a_deploy_is_retired_without_flapping(procs: ScheduleProcesses) -> None:
    retire_after = 4.0
    procs.settings = {"schedule_retire_after": retire_after}
    v1 = procs.start("v1", [{"name": "keep", "expr": EVERY_SECOND}, {"name": "old", "expr": EVERY_SECOND}])
    asyncio.run(wait_registered(procs.master, procs.cluster, 1))
    wait_until(lambda: len(runs(procs, "old")) >= 1, 60, "a run of the old schedule")
    procs.start("v2", [{"name": "keep", "expr": EVERY_SECOND}])
    asyncio.run(wait_registered(procs.master, procs.cluster, 2))
    # The rolling update: old and new code side by side for several grace periods; v1 still
    # declares `old`, so it stays active the whole time.
    side_by_side = time.time() + 3 * retire_after
    while time.time() < side_by_side:
        assert schedule_row(procs, "old")["retired_at"] is None, "retired while a process declares it"
        time.sleep(0.5)
    v1.send_signal(signal.SIGTERM)
    assert v1.wait(60) == 0
    stopped = time.time()
    wait_until(lambda: schedule_row(procs, "old")["retired_at"] is not None, 60, "old retired")
    retired_at = schedule_row(procs, "old")["retired_at"]
    assert retired_at >= stopped + retire_after - 1.5  # not before the grace ran out
    keep_before = last_at(procs, "keep")
    wait_until(lambda: last_at(procs, "keep") >= keep_before + 2, 30, "keep still runs")
    assert schedule_row(procs, "keep")["retired_at"] is None
    assert max(occurrences(procs, "old")) <= retired_at
    listed = _cli_json(procs, "schedules", "show", "old")
    assert listed["state"] == "retired" and listed["next_run"] is None


def test_pause_and_resume_from_the_cli_without_a_burst(procs: ScheduleProcesses) -> None:
    procs.start("worker-1", [{"name": "p", "expr": EVERY_SECOND}])
    asyncio.run(wait_registered(procs.master, procs.cluster, 1))
    wait_until(lambda: len(runs(procs, "p")) >= 2, 60, "two runs")
    assert _cli_json(procs, "schedules", "pause", "p")["state"] == "paused"
    paused_at = time.time()
    wait_until(lambda: time.time() > paused_at + 5, 10, "a paused stretch")
    resumed = _cli_json(procs, "schedules", "resume", "p")
    resumed_at = time.time()
    wait_until(lambda: max(occurrences(procs, "p")) >= resumed_at + 2, 60, "runs after the resume")
    found = occurrences(procs, "p")
    during = [o for o in found if paused_at + 1.5 < o < resumed_at - 0.5]
    assert during == [], f"occurrences inserted while paused: {during}"
    after = [o for o in found if o >= resumed_at - 0.5]
    assert after[0] <= resumed_at + 1.5, "the resume started late"
    assert after == [after[0] + s for s in range(len(after))]
    assert resumed["next_run"] is not None and schedule_row(procs, "p")["missed"] == 0


def _cli_json(procs: Processes, *args: str) -> Any:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "jobmaster.cli.main",
            *args,
            "--master",
            procs.master,
            "--cluster",
            procs.cluster,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
