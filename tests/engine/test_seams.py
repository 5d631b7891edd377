"""The seams around the engine: middleware, events, handler outcomes, retry policies, options; on
every master backend, with a real worker in the test's event loop."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest
from engine_support import eventually

from jobmaster import (
    ConfigError,
    Discard,
    JobContext,
    RetryPolicy,
    ScheduleError,
    Snooze,
    WorkerMode,
)
from jobmaster.events import (
    BatchFlushed,
    Event,
    JobEnded,
    JobFailed,
    JobRetried,
    JobScheduled,
    JobsClaimed,
    JobSnoozed,
    JobStarted,
    JobSucceeded,
)
from jobmaster.runtime.duties import PeriodicDuty

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


async def test_run_middleware_wraps_every_run_app_layers_outside_handler_layers(make_app, start) -> None:
    app = make_app()
    order: list[str] = []

    async def own(call_next, job) -> Any:
        order.append(f"own-in:{job.definition_id}")
        result = await call_next()
        order.append(f"own-out:{result}")
        return result

    @app.handler(name="wrapped", middleware=[own])
    async def wrapped(n: int) -> int:
        order.append("run")
        return n * 2

    # registered after the handler: it still wraps it, outermost
    @app.run_middleware
    async def outer(call_next, job) -> Any:
        order.append(f"outer-in:{job.data['n']}")
        result = await call_next()
        order.append("outer-out")
        return result

    running = await start(app)
    job_id = await app.schedule(wrapped, {"n": 21})
    await running.wait_status(job_id, "Succeeded")
    assert order == ["outer-in:21", "own-in:wrapped", "run", "own-out:42", "outer-out"]


async def test_a_sync_handler_sees_the_context_variables_a_middleware_set(make_app, start) -> None:
    app = make_app()
    seen: dict[str, str] = {}

    @app.run_middleware
    async def tag(call_next, job) -> Any:
        token = REQUEST_ID.set(f"req-{job.data['n']}")
        try:
            return await call_next()
        finally:
            REQUEST_ID.reset(token)

    @app.handler
    def sync_handler(ctx: JobContext, n: int) -> None:
        seen[ctx.job_id] = REQUEST_ID.get()

    running = await start(app)
    job_id = await app.schedule(sync_handler, {"n": 7})
    await running.wait_status(job_id, "Succeeded")
    assert seen == {job_id: "req-7"}


async def test_a_middleware_that_raises_fails_the_run_like_the_handler_would(make_app, start) -> None:
    app = make_app()
    ran: list[str] = []

    @app.run_middleware
    async def refuse(call_next, job) -> Any:
        raise PermissionError("tenant is suspended")

    @app.handler(max_retries=0)
    async def guarded() -> None:
        ran.append("ran")

    running = await start(app)
    job_id = await app.schedule(guarded)
    job = await running.wait_status(job_id, "Failed")
    assert ran == []
    assert job.last_error["type"] == "PermissionError"
    assert job.last_error["message"] == "tenant is suspended"


async def test_schedule_middleware_stamps_metadata_on_both_paths_or_refuses_the_call(make_app, start) -> None:
    app = make_app()

    @app.schedule_middleware
    async def stamp(call_next, jobs) -> None:
        if any(j.data.get("n") == -1 for j in jobs):
            raise ScheduleError("n = -1 is refused by policy")
        for job in jobs:
            job.metadata["trace"] = "t-1"
        await call_next(jobs)

    @app.handler
    async def noop(n: int) -> None:
        pass

    running = await start(app)
    soon = await app.schedule(noop, {"n": 1})  # the YES path: straight into a bucket
    later = await app.schedule(noop, {"n": 2}, delay="1h")  # held on the master
    await running.wait_status(soon, "Succeeded")
    assert (await app.get_job(soon)).metadata == {"trace": "t-1"}
    assert (await app.get_job(later)).metadata == {"trace": "t-1"}
    with pytest.raises(ScheduleError, match="refused by policy"):
        await app.schedule_many(noop, [{"n": 3}, {"n": -1}])
    assert await app.count_jobs() == 2


async def test_discard_fails_the_job_at_once_raised_or_returned(make_app, start) -> None:
    app = make_app()

    @app.handler(max_retries=5)
    async def raises() -> None:
        raise Discard("account was deleted")

    @app.handler(max_retries=5)
    async def returns() -> Discard:
        return Discard("malformed document")

    running = await start(app)
    raised, returned = await app.schedule(raises), await app.schedule(returns)
    for job_id, reason in ((raised, "account was deleted"), (returned, "malformed document")):
        job = await running.wait_status(job_id, "Failed")
        assert job.attempts == 1
        assert job.last_error["message"] == reason
        assert [a.outcome for a in await app.job_attempts(job_id)] == ["discarded"]


async def test_snooze_runs_the_job_again_later_without_spending_a_retry(make_app, start) -> None:
    app = make_app()
    snoozed: list[JobSnoozed] = []
    app.events.subscribe(JobSnoozed, snoozed.append)

    @app.handler(max_retries=0)
    async def not_ready(ctx: JobContext) -> Snooze | None:
        if ctx.attempt == 1:
            raise Snooze("0.3s")
        if ctx.attempt == 2:
            return Snooze(0.3)
        return None

    running = await start(app)
    job_id = await app.schedule(not_ready)
    job = await running.wait_status(job_id, "Succeeded")
    assert (job.attempts, job.attempt_limit) == (3, 3)
    history = await app.job_attempts(job_id)
    assert [a.outcome for a in history] == ["snoozed", "snoozed", "succeeded"]
    # each run waited for its snooze
    assert history[1].started_at >= history[0].finished_at + 0.3 - 0.01
    assert [round(e.until - e.attempt.finished_at, 3) for e in snoozed] == [0.3, 0.3]
    with pytest.raises(ConfigError, match="Snooze"):
        Snooze("a while")


async def test_a_handler_retry_policy_replaces_the_cluster_one(make_app, start) -> None:
    app = make_app()  # the cluster's back-off is 0.05-0.2 s (engine_support.FAST)

    @app.handler(max_retries=2, retry=RetryPolicy(base="3s", cap="3s", jitter=0))
    async def patient() -> None:
        raise ValueError("downstream is down")

    running = await start(app)
    job_id = await app.schedule(patient)
    await eventually(lambda: _attempts(app, job_id, 1))
    (attempt,) = await app.job_attempts(job_id)
    job = await app.get_job(job_id)
    # back in a bucket already (due within transient_threshold), to run at the policy's time
    assert job.scheduled_at == pytest.approx(attempt.finished_at + 3.0, abs=0.01)
    await running.stop()


async def _attempts(app, job_id: str, count: int) -> bool:
    return len(await app.job_attempts(job_id)) == count


def test_a_retry_policy_refuses_bad_values() -> None:
    with pytest.raises(ConfigError, match="base <= cap"):
        RetryPolicy(base="10s", cap="1s")
    with pytest.raises(ConfigError, match="jitter"):
        RetryPolicy(jitter=1.5)
    with pytest.raises(ConfigError, match="duration"):
        RetryPolicy(base="soon")
    assert RetryPolicy(base="2s", cap="1m").delay(3, None) <= 60.0


async def test_events_report_each_run_as_it_happens(make_app, start) -> None:
    app = make_app()
    seen: list[tuple[str, str]] = []
    ended: list[JobEnded] = []
    flushed: list[BatchFlushed] = []

    def record(event: Event) -> None:
        job = getattr(event, "job", None)
        if job is not None:
            seen.append((type(event).__name__, job.id))

    for kind in (JobScheduled, JobStarted, JobRetried, JobSucceeded, JobFailed):
        app.events.subscribe(kind, record)
    app.events.subscribe(JobEnded, ended.append)
    app.events.subscribe(BatchFlushed, flushed.append)
    app.events.subscribe(JobSucceeded, _broken_subscriber)  # logged; the engine goes on

    @app.handler(max_retries=1)
    async def flaky(ctx: JobContext) -> None:
        if ctx.attempt == 1:
            raise ValueError("first run fails")

    running = await start(app)
    job_id = await app.schedule(flaky)
    await running.wait_status(job_id, "Succeeded")
    await eventually(lambda: _has(seen, ("JobSucceeded", job_id)))
    assert seen == [
        ("JobScheduled", job_id),
        ("JobStarted", job_id),
        ("JobRetried", job_id),
        ("JobStarted", job_id),
        ("JobSucceeded", job_id),
    ]
    retried = ended[0]
    assert isinstance(retried, JobRetried) and retried.attempt.outcome == "failed"
    assert retried.retry_at > retried.attempt.finished_at
    assert [a.outcome for a in (e.attempt for e in ended)] == ["failed", "succeeded"]
    assert {f.batcher for f in flushed} >= {"completions"}
    assert all(f.size >= 1 and f.seconds >= 0 for f in flushed)


async def test_a_coordinator_reports_its_claims(make_app, start) -> None:
    app = make_app(transient_threshold="1s")
    claimed: list[int] = []
    app.events.subscribe(JobsClaimed, lambda e: claimed.append(e.count))

    @app.handler
    async def noop() -> None:
        pass

    running = await start(app)
    job_id = await app.schedule(noop, delay="1.5s")  # beyond transient_threshold: held on the master
    await running.wait_status(job_id, "Succeeded")
    assert sum(claimed) >= 1


async def _has(seen: list[tuple[str, str]], item: tuple[str, str]) -> bool:
    await asyncio.sleep(0)
    return item in seen


def _broken_subscriber(event: Event) -> None:
    raise RuntimeError("a subscriber bug")


def test_a_misspelt_option_is_refused_with_the_closest_name(make_app) -> None:
    app = make_app()

    @app.handler
    async def noop() -> None:
        pass

    with pytest.raises(ScheduleError, match="unknown option 'dely'; did you mean 'delay'"):
        asyncio.run(app.schedule(noop, dely="10s"))  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="unknown option 'max_retry'; did you mean 'max_retries'"):
        app.handler(noop, name="other", max_retry=3)  # type: ignore[call-overload]


def test_unused_seams_cost_nothing_per_job(make_app) -> None:
    """No layer means no chain (the handler runs bare), and no subscriber means no event built."""
    app = make_app()

    @app.handler
    async def bare() -> None:
        pass

    assert app.registry.resolve(bare).chain is None
    assert not any(app.events.wants(kind) for kind in (JobScheduled, JobStarted, JobEnded, BatchFlushed))
    only_snoozes = app.events.subscribe(JobSnoozed, lambda e: None)
    assert app.events.wants(JobEnded) and app.events.wants(JobSnoozed) and not app.events.wants(JobFailed)
    only_snoozes()
    unsubscribe = app.events.subscribe(Event, lambda e: None)
    assert app.events.wants(JobSucceeded) and app.events.wants(BatchFlushed)
    unsubscribe()
    assert not app.events.wants(JobSucceeded)
    with pytest.raises(TypeError, match="event class"):
        app.events.subscribe(str, print)  # type: ignore[arg-type]


class _Ticks(PeriodicDuty):
    name = "ticks"
    modes = frozenset({WorkerMode.coordinator})

    def __init__(self) -> None:
        self.workers: list[str] = []

    def interval(self, worker) -> float:
        return 0.05

    async def tick(self, worker) -> None:
        self.workers.append(worker.config.name)
        if len(self.workers) == 2:
            raise RuntimeError("a failed pass is logged and the next one runs")


async def test_a_duty_runs_in_the_workers_of_the_modes_it_wants_until_they_stop(make_app, start) -> None:
    app = make_app(workers=[{"name": "claims", "mode": "coordinator"}, {"name": "runs", "mode": "execution"}])
    duty = app.add_duty(_Ticks())
    running = await start(app)
    await eventually(lambda: _at_least(duty.workers, 4))
    await running.stop()
    stopped_at = len(duty.workers)
    await asyncio.sleep(0.2)
    assert len(duty.workers) == stopped_at
    assert set(duty.workers) == {"claims"}
    with pytest.raises(ConfigError, match="while the cluster is open"):
        async with app:
            app.add_duty(_Ticks())


async def _at_least(items: list[str], count: int) -> bool:
    return len(items) >= count
