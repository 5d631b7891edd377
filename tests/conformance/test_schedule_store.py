"""Recurring schedules on every master, unchanged: the store, and scheduler passes at chosen clock
times (the pass takes `now`; nothing here waits for real time)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from jobmaster.config.settings import ClusterConfig
from jobmaster.handlers.registry import HandlerRegistry
from jobmaster.jobs.model import JobFilter, JobStatus
from jobmaster.master.base import MasterStore
from jobmaster.schedules.declarations import ScheduleSpec, declare
from jobmaster.schedules.planning import first_after
from jobmaster.schedules.scheduler import run_pass
from jobmaster.schedules.store import ScheduleStore, occurrence_id

#: A whole minute, so every-second and every-minute occurrences line up with it.
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC).timestamp()


def report(day: str = "mon") -> None:
    """A handler for the specs (never run here)."""


def spec(name: str, expression: str = "every 1 second", **options: Any) -> ScheduleSpec:
    registry = HandlerRegistry()
    handler = registry.register(report)
    return declare(handler, expression, name=name, cluster=ClusterConfig(cluster_id="c"), **options)


async def added(store: ScheduleStore, s: ScheduleSpec, now: float = T0 - 0.5) -> ScheduleSpec:
    assert await store.add([(s, first_after(s.timing, now))], "dynamic", now) == 1
    return s


async def jobs_of(master: MasterStore, name: str) -> list[Any]:
    found = await master.list_jobs(JobFilter(metadata={"schedule": name}, limit=10_000))
    return sorted(found, key=lambda j: j.scheduled_at)


async def test_a_schedule_round_trips_and_a_name_is_taken_once(master: MasterStore) -> None:
    store = ScheduleStore(master)
    s = await added(
        store, spec("nightly", "0 3 * * *", tz="Europe/Riga", data={"day": "tue"}, overlap="skip")
    )
    row = await store.get("nightly")
    assert row is not None
    assert row.spec == s and row.source == "dynamic" and row.active
    assert row.next_at == datetime(2026, 3, 3, 1, 0, tzinfo=UTC).timestamp()  # 03:00 in Riga (UTC+2)
    assert await store.add([(spec("nightly", "0 4 * * *"), T0), (spec("other"), T0)], "dynamic", T0) == 1
    assert (await store.get("nightly")).spec.expression == "0 3 * * *"  # type: ignore[union-attr]
    assert [r.name for r in await store.rows()] == ["nightly", "other"]
    assert await store.remove("nightly") and not await store.remove("nightly")
    assert await store.get("nightly") is None


async def test_concurrent_passes_make_one_job_per_occurrence(master: MasterStore) -> None:
    """Four schedulers passing at once over the same due schedules insert each occurrence once."""
    store = ScheduleStore(master)
    names = [f"s{i}" for i in range(30)]
    for name in names:
        await added(store, spec(name))
    for second in range(3):
        now = T0 + second + 0.2
        results = await asyncio.gather(*(run_pass(master, now) for _ in range(4)))
        assert sum(r.inserted for r in results) == len(names)
        assert sum(r.moved for r in results) == len(names)
    for name in names:
        jobs = await jobs_of(master, name)
        assert [j.id for j in jobs] == [occurrence_id(master.cluster_id, name, T0 + s) for s in range(3)]
        assert [j.metadata["occurrence"] for j in jobs] == [
            datetime.fromtimestamp(T0 + s, UTC).isoformat() for s in range(3)
        ]
        assert all(j.status is JobStatus.HeldOnMaster and j.definition_id.endswith("report") for j in jobs)
        row = await store.get(name)
        assert row is not None and (row.last_at, row.next_at, row.missed) == (T0 + 2, T0 + 3, 0)


@pytest.mark.parametrize(
    ("catch_up", "runs", "missed"),
    [("skip", [], 20), ("latest", [19], 19), ("all", [12, 13, 14, 15, 16, 17, 18, 19], 12)],
)
async def test_catch_up_after_a_gap(
    master: MasterStore, catch_up: str, runs: list[int], missed: int, caplog: pytest.LogCaptureFixture
) -> None:
    """20 minutely occurrences came due while no scheduler ran; the window reaches back 9 minutes
    and `all` runs the latest 8 of those in it."""
    store = ScheduleStore(master)
    s = await added(
        store, spec("gap", "* * * * *", catch_up=catch_up, catch_up_window="9m", catch_up_limit=8), T0 - 1
    )
    now = T0 + 19 * 60 + 30  # 30 s after the 20th occurrence: the latest is no longer on time
    with caplog.at_level(logging.WARNING, "jobmaster.schedules"):
        result = await run_pass(master, now)
    assert (result.inserted, result.missed) == (len(runs), missed)
    assert f"{missed} occurrence(s) of 1 schedule(s) missed" in caplog.text and "gap (" in caplog.text
    assert [j.metadata["occurrence"] for j in await jobs_of(master, s.name)] == [
        datetime.fromtimestamp(T0 + 60 * m, UTC).isoformat() for m in runs
    ]
    row = await store.get("gap")
    assert row is not None and (row.missed, row.last_at, row.next_at) == (missed, T0 + 19 * 60, T0 + 20 * 60)
    # The place in time is in the master: a later pass (another process) starts from it.
    assert (await run_pass(master, now)).inserted == 0


async def test_overlap_skip_counts_the_occurrences_it_skips(master: MasterStore) -> None:
    store = ScheduleStore(master)
    await added(store, spec("slow", overlap="skip"))
    await added(store, spec("fast"))
    assert (await run_pass(master, T0 + 0.1)).inserted == 2
    first = occurrence_id(master.cluster_id, "slow", T0)
    result = await run_pass(master, T0 + 1.1)  # slow's first job still waits: no second one
    assert (result.inserted, result.skipped) == (1, 1)
    job = await master.get_job(first)
    assert job is not None
    assert await master.update_job(
        first, job.version, {"status": JobStatus.Succeeded, "finished_at": T0 + 1.5}
    )
    assert (await run_pass(master, T0 + 2.1)).inserted == 2
    row = await store.get("slow")
    assert row is not None and (row.skipped, row.last_job_id) == (
        1,
        occurrence_id(master.cluster_id, "slow", T0 + 2),
    )
    assert len(await jobs_of(master, "slow")) == 2 and len(await jobs_of(master, "fast")) == 3


async def test_paused_schedules_are_not_due_and_resume_from_a_new_place(master: MasterStore) -> None:
    store = ScheduleStore(master)
    s = await added(store, spec("p"))
    assert await store.set_paused("p", True, None, T0)
    assert await store.due(T0 + 100, 10) == [] and await store.next_due() is None
    assert (await run_pass(master, T0 + 100)).inserted == 0
    assert await store.set_paused("p", False, first_after(s.timing, T0 + 100), T0 + 100)
    result = await run_pass(master, T0 + 101.1)
    assert (result.inserted, result.missed) == (1, 0)  # nothing from the pause bursts out
    assert not await store.set_paused("nope", True, None, T0)


async def test_code_schedules_retire_only_when_no_process_declares_them(master: MasterStore) -> None:
    """A rolling deploy: old processes declare a and b, the new code only a. b retires once the
    old processes have been silent for the grace; a dynamic schedule never retires."""
    store = ScheduleStore(master)
    a, b = spec("a"), spec("b")
    await added(store, spec("dyn"))
    changed, refused = await store.declare([(a, T0 + 1), (b, T0 + 1)], "old-1", T0)
    assert sorted(changed) == ["a", "b"] and refused == []
    assert (await store.declare([(a, T0 + 1), (b, T0 + 1)], "old-2", T0))[0] == []  # unchanged
    assert (await store.declare([(a, T0 + 11)], "new-1", T0 + 10))[0] == []
    await store.refresh("new-1", T0 + 45)
    await store.refresh("old-1", T0 + 50)  # an old process still runs: b stays
    assert await store.retire(T0 + 60, unseen_since=T0 + 40) == []
    await store.refresh("new-1", T0 + 100)
    assert await store.retire(T0 + 120, unseen_since=T0 + 90) == ["b"]
    rows = {r.name: r for r in await store.rows()}
    assert rows["b"].retired_at == T0 + 120 and not rows["b"].active
    assert rows["a"].active and rows["dyn"].active
    assert sorted(r.name for r in await store.due(T0 + 200, 10)) == ["a", "dyn"]
    # Declared again (a rollback), b comes back with a new place in time.
    assert (await store.declare([(a, T0 + 201), (b, T0 + 201)], "back-1", T0 + 200))[0] == ["b"]
    assert (await store.get("b")).active  # type: ignore[union-attr]
    # A name a dynamic schedule holds is refused to code.
    assert (await store.declare([(spec("dyn", "0 * * * *"), T0)], "x", T0))[1] == ["dyn"]


async def test_a_changed_declaration_replaces_the_stored_one(master: MasterStore) -> None:
    store = ScheduleStore(master)
    await store.declare([(spec("c", "every 1 second"), T0 + 1)], "p1", T0)
    changed = spec("c", "every 10 seconds", data={"day": "fri"})
    assert (await store.declare([(changed, T0 + 10)], "p2", T0 + 5))[0] == ["c"]
    row = await store.get("c")
    assert row is not None and row.spec == changed and row.next_at == T0 + 10
