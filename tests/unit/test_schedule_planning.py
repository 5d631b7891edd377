"""Which occurrences of a due schedule a pass runs, misses and where it goes next (pure logic), and
the key and due time each occurrence's job gets."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jobmaster.config.settings import ClusterConfig
from jobmaster.handlers.registry import HandlerRegistry
from jobmaster.jobs.model import JobStatus, Priority
from jobmaster.schedules.declarations import CatchUpPolicy, ScheduleSpec, declare
from jobmaster.schedules.expressions import parse_schedule
from jobmaster.schedules.planning import ON_TIME_S, SCAN_LIMIT, Plan, plan
from jobmaster.schedules.scheduler import occurrence_job
from jobmaster.schedules.store import occurrence_id

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC).timestamp()
EVERY_SECOND = parse_schedule("every 1 second")
MINUTELY = parse_schedule("* * * * *")


def test_a_schedule_not_yet_due_has_no_plan() -> None:
    assert plan(MINUTELY, CatchUpPolicy(), T0 + 60, T0 + 59.9) is None


@pytest.mark.parametrize("mode", ["skip", "latest", "all"])
def test_an_occurrence_reached_on_time_runs_under_every_policy(mode: str) -> None:
    assert plan(MINUTELY, CatchUpPolicy(mode), T0, T0 + 0.3) == Plan((T0,), 0, T0, T0 + 60)  # type: ignore[arg-type]


def test_skip_runs_nothing_once_the_first_due_occurrence_is_late() -> None:
    policy = CatchUpPolicy("skip")
    late = plan(EVERY_SECOND, policy, T0, T0 + ON_TIME_S + 5.5)
    assert late == Plan((), 16, T0 + 15, T0 + 16)
    # A scheduler a few seconds behind (under load) is still on time: it runs the latest.
    behind = plan(EVERY_SECOND, policy, T0, T0 + 3.5)
    assert behind is not None and behind.runs == (T0 + 3,) and behind.missed == 3


def test_latest_runs_the_latest_occurrence_within_the_window_only() -> None:
    inside = plan(MINUTELY, CatchUpPolicy("latest", window_s=600), T0, T0 + 300.5)
    assert inside == Plan((T0 + 300,), 5, T0 + 300, T0 + 360)
    # Every due occurrence is older than the window: none runs, all are missed.
    outside = plan(parse_schedule("0 * * * *"), CatchUpPolicy("latest", window_s=600), T0, T0 + 7200 + 900)
    assert outside == Plan((), 3, T0 + 7200, T0 + 3 * 3600)


def test_all_runs_the_latest_limit_occurrences_within_the_window() -> None:
    policy = CatchUpPolicy("all", window_s=3600, limit=4)
    assert plan(MINUTELY, policy, T0, T0 + 150) == Plan((T0, T0 + 60, T0 + 120), 0, T0 + 120, T0 + 180)
    capped = plan(MINUTELY, policy, T0, T0 + 600)
    assert capped == Plan((T0 + 420, T0 + 480, T0 + 540, T0 + 600), 7, T0 + 600, T0 + 660)


def test_a_gap_longer_than_the_scan_limit_is_jumped_to_the_window() -> None:
    """A day down with an every-second schedule: the walk stops at SCAN_LIMIT and jumps to the
    window, so a pass costs a bounded number of steps; `missed` is then a lower bound."""
    now = T0 + 86400 + 0.5
    result = plan(EVERY_SECOND, CatchUpPolicy("all", window_s=5, limit=100), T0, now)
    assert result is not None
    assert result.runs == tuple(T0 + 86400 - s for s in range(4, -1, -1))
    assert result.next_at == T0 + 86401 and result.last_at == T0 + 86400
    assert SCAN_LIMIT <= result.missed < 86400


def test_occurrence_ids_are_one_per_schedule_and_occurrence_and_sort_by_time() -> None:
    a0, a1 = occurrence_id("c", "a", T0), occurrence_id("c", "a", T0 + 1)
    assert len(a0) == 32 and int(a0, 16) >= 0
    assert a0 == occurrence_id("c", "a", T0) and a0 < a1
    assert len({a0, occurrence_id("c", "b", T0), occurrence_id("d", "a", T0)}) == 3


def _spec(**options: object) -> ScheduleSpec:
    def report() -> None: ...

    handler = HandlerRegistry().register(report)
    return declare(handler, "* * * * *", name="r", cluster=ClusterConfig(cluster_id="c"), **options)  # type: ignore[arg-type]


def test_jitter_moves_the_due_time_never_the_key() -> None:
    spec = _spec(jitter="30s", metadata={"team": "ops"}, priority="high")
    jobs = [occurrence_job(spec, f"id{m}", T0 + 60 * m, T0, triggered=False) for m in range(20)]
    delays = [j.scheduled_at - (T0 + 60 * m) for m, j in enumerate(jobs)]
    assert all(0 <= d < 30 for d in delays) and len(set(delays)) > 1
    # Every process computes the same due time for an occurrence.
    assert occurrence_job(spec, "x", T0, T0 + 5, triggered=False).scheduled_at == jobs[0].scheduled_at
    job = jobs[0]
    assert job.metadata == {"team": "ops", "schedule": "r", "occurrence": "2026-03-02T12:00:00+00:00"}
    assert job.status is JobStatus.HeldOnMaster and job.priority is Priority.High
    triggered = occurrence_job(spec, "y", T0 + 7, T0 + 7, triggered=True)
    assert triggered.scheduled_at == T0 + 7 and triggered.metadata["triggered"] is True  # runs now
    assert occurrence_job(_spec(), "z", T0, T0, triggered=False).scheduled_at == T0
