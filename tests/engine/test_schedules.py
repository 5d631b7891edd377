"""Recurring schedules in a running app (real time, every master): jobs carry their schedule and
occurrence, dynamic schedules, trigger, pause and resume; and bad input refused at registration
with nothing written."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from engine_support import Running, eventually

from jobmaster import JobContext, JobMaster, ScheduleError, ScheduleNotFoundError
from jobmaster.schedules.scheduler import MAX_SLEEP_S
from jobmaster.schedules.store import ScheduleStore


def _app(tmp_path: Path) -> JobMaster:
    return JobMaster("bad-input", f"sqlite:///{tmp_path}/never.db")


@pytest.mark.parametrize(
    ("expression", "options", "message"),
    [
        ("0 25 * * *", {}, "'0 25 * * *'"),
        ("every fortnight-ish", {}, "every fortnight-ish"),
        ("0 9 * * *", {"tz": "Europe/Atlantis"}, "unknown time zone 'Europe/Atlantis'"),
        (None, {"every": 0}, "at least 1"),
        (None, {"every": timedelta(0)}, "at least 1"),
        ("0 9 * * *", {"every": 60}, "not both"),
        ("0 9 * * *", {"catch_up": "most"}, "catch_up must be one of skip, latest, all"),
        ("0 9 * * *", {"overlap": "queue"}, "overlap must be one of allow, skip"),
        ("0 9 * * *", {"catch_up_limit": 0}, "catch_up_limit must be in 1..10000"),
        ("0 9 * * *", {"catch_up_window": "0s"}, "catch_up_window must be more than 0"),
        ("0 9 * * *", {"jitter": "soon"}, "jitter: expected a duration"),
        ("0 9 * * *", {"data": {"nope": 1}}, "nope"),
        ("0 9 * * *", {"priority": "urgent"}, "urgent"),
        ("0 9 * * *", {"name": "no spaces"}, "a schedule name is"),
        ("0 9 * * *", {"overlpa": "skip"}, "did you mean 'overlap'"),
    ],
)
def test_bad_input_is_refused_at_registration_naming_the_problem(
    tmp_path: Path, expression: str | None, options: dict[str, Any], message: str
) -> None:
    jm = _app(tmp_path)

    async def report(day: str = "mon") -> None: ...

    with pytest.raises(ScheduleError, match="schedule") as raised:
        jm.recurring(expression, **options)(jm.handler(report))
    assert message in str(raised.value)
    assert jm.schedules.duty.declared == {}
    assert not (tmp_path / "never.db").exists()  # nothing opened, nothing written


def test_two_schedules_with_one_name_are_refused(tmp_path: Path) -> None:
    jm = _app(tmp_path)

    @jm.recurring("0 9 * * *")
    @jm.recurring("0 18 * * *", name="evening")
    @jm.handler
    async def report() -> None: ...

    async def other() -> None: ...

    with pytest.raises(ScheduleError, match="'evening' is declared twice"):
        jm.recurring("0 7 * * *", name="evening")(jm.handler(other))
    with pytest.raises(ScheduleError, match="declared twice .* give each schedule its own name="):
        jm.recurring("0 7 * * *")(report)  # a second one under the handler's id
    assert sorted(jm.schedules.duty.declared) == ["evening", report.__jobmaster_id__]  # type: ignore[attr-defined]


async def test_add_schedule_refuses_bad_input_and_a_taken_name_writing_nothing(make_app: Any) -> None:
    jm = make_app()

    @jm.handler
    async def tick() -> None: ...

    async with jm:
        with pytest.raises(ScheduleError, match="unknown time zone"):
            await jm.add_schedule(tick, "* * * * *", name="t", tz="Mars/Olympus")
        with pytest.raises(ScheduleError, match="unknown handler|not registered|no handler"):
            await jm.add_schedule("no.such.handler", "* * * * *", name="t")
        assert await ScheduleStore(jm.runtime.master).rows() == []
        info = await jm.add_schedule(tick, "0 9 * * *", name="t", tz="Europe/Riga")
        assert (info.source, info.state, info.explain) == ("dynamic", "active", info.explain)
        with pytest.raises(ScheduleError, match="'t' exists already"):
            await jm.add_schedule(tick, "0 10 * * *", name="t")
        assert (await jm.schedules.get("t")).expression == "0 9 * * *"
        await jm.remove_schedule("t")
        with pytest.raises(ScheduleNotFoundError):
            await jm.remove_schedule("t")


async def test_recurring_jobs_run_with_their_schedule_and_occurrence(make_app: Any, start: Any) -> None:
    jm = make_app()
    runs: list[tuple[str | None, Any, bool]] = []

    @jm.recurring("every 1 second", name="tick", data={"n": 1})
    @jm.handler
    async def tick(ctx: JobContext, n: int) -> None:
        runs.append((ctx.schedule, ctx.occurrence, bool(ctx.metadata.get("triggered"))))

    running: Running = await start(jm)
    await eventually(lambda: _at_least(runs, 2), timeout=30)
    first = runs[0]
    assert first[0] == "tick" and first[1] is not None and first[1].microsecond == 0
    job_id = await jm.schedules.trigger("tick")
    job = await running.wait_status(job_id, "Succeeded", timeout=30)
    assert job.metadata["triggered"] is True and job.metadata["schedule"] == "tick"
    info = await jm.schedules.get("tick")
    assert info.source == "code" and info.state == "active" and info.next_run is not None

    paused = await jm.schedules.pause("tick")
    assert paused.state == "paused" and paused.next_run is None
    count = await jm.count_jobs(metadata={"schedule": "tick"})
    resumed = await jm.schedules.resume("tick")
    assert resumed.state == "active" and resumed.next_run is not None
    await eventually(lambda: _more_jobs(jm, count), timeout=30)


async def test_a_dynamic_schedule_added_while_running_is_picked_up(make_app: Any, start: Any) -> None:
    jm = make_app()
    ran = asyncio.Event()

    @jm.handler
    async def beat() -> None:
        ran.set()

    await start(jm)
    info = await jm.add_schedule(beat, every=1, name="beat")
    assert info.source == "dynamic" and info.explain
    await asyncio.wait_for(ran.wait(), 30)
    assert (await jm.schedules.get("beat")).last_outcome in {"Succeeded", "Processing", "Queued"}


async def _at_least(items: list[Any], count: int) -> bool:
    return len(items) >= count


async def _more_jobs(jm: JobMaster, count: int) -> bool:
    return await jm.count_jobs(metadata={"schedule": "tick"}) > count


async def test_an_idle_scheduler_writes_nothing(make_app: Any, start: Any) -> None:
    """Nothing due: the scheduler sleeps (reads at most every few seconds) and writes neither the
    schedule nor its declaration, which it renews once a minute at the default settings."""
    jm = make_app()

    @jm.recurring("0 0 1 1 *", name="yearly")
    @jm.handler
    async def yearly() -> None: ...

    await start(jm)
    store = ScheduleStore(jm.runtime.master)
    await eventually(lambda: _declared(store, "yearly"), timeout=30)
    before = await store.get("yearly")
    seen = await _seen(jm)
    observed_until = time.monotonic() + 2 * MAX_SLEEP_S + 1  # two full sleeps of the scheduler
    while time.monotonic() < observed_until:
        await asyncio.sleep(0.5)
    assert await store.get("yearly") == before
    assert await _seen(jm) == seen
    # The scheduler was alive all along: a schedule added now is run.
    ran = asyncio.Event()

    @jm.handler
    async def now() -> None:
        ran.set()

    await jm.add_schedule(now, every=1, name="now")
    await asyncio.wait_for(ran.wait(), 30)


async def _declared(store: ScheduleStore, name: str) -> bool:
    return await store.get(name) is not None


async def _seen(jm: JobMaster) -> list[Any]:
    master = ScheduleStore(jm.runtime.master).master
    rows = await master.sql.fetch(
        master.dialect.sql(
            "SELECT name, declarer, seen_at FROM jm_schedule_declarations WHERE cluster_id = ?"
        ),
        (master.cluster_id,),
    )
    return sorted(tuple(r) for r in rows)


def test_the_sync_twins_operate_schedules_from_sync_code(tmp_path: Path) -> None:
    """`jm.sync.schedules` from plain sync code (no loop of the caller's) on a real SQLite master:
    each operation reaches the master, read back through the sync API and the async one alike."""
    jm = JobMaster("sync-schedules", f"sqlite:///{tmp_path}/jobs.db", workers=[])

    @jm.handler
    def report() -> None:
        return None

    jm.sync.add_schedule(report, "0 9 * * *", name="daily")
    try:
        assert [s.name for s in jm.sync.schedules.list()] == ["daily"]
        assert jm.sync.schedules.get("daily").state == "active"
        assert jm.sync.schedules.pause("daily").state == "paused"
        assert jm.sync.schedules.get("daily").state == "paused"
        resumed = jm.sync.schedules.resume("daily")
        assert resumed.state == "active" and resumed.next_run is not None
        job_id = jm.sync.schedules.trigger("daily")
        assert jm.sync.get_job(job_id).definition_id == report.__jobmaster_id__
        assert jm.sync.schedules.get("daily").last_job_id == job_id
        jm.sync.schedules.remove("daily")
        assert jm.sync.schedules.list() == []
        with pytest.raises(ScheduleNotFoundError, match="no schedule named 'daily'"):
            jm.sync.schedules.get("daily")
    finally:
        jm.sync.close()
