"""Results: what a handler returns is stored with its job on every master, within
`max_result_bytes`; a value that cannot be stored fails the job with an error naming why."""

from __future__ import annotations

import asyncio

import pytest
from engine_support import eventually

from jobmaster import (
    ConfigError,
    JobContext,
    JobMaster,
    JobNotFoundError,
    JobNotSucceededError,
    ResultTimeoutError,
)
from jobmaster.events import BatchFlushed
from jobmaster.jobs.model import JobStatus


async def test_a_returned_value_is_stored_and_none_stores_nothing(make_app, start) -> None:
    app: JobMaster = make_app()

    @app.handler
    async def total(items: list[int]) -> dict[str, int]:
        return {"total": sum(items), "count": len(items)}

    @app.handler
    def name(ctx: JobContext, first: str) -> str:  # a sync handler, given its context
        return f"{first} ({ctx.attempt})"

    @app.handler
    async def nothing() -> None:
        return None

    running = await start(app)
    ids = [
        await app.schedule(total, {"items": [1, 2, 3]}),
        await app.schedule(name, {"first": "Ada"}),
        await app.schedule(nothing),
    ]
    jobs = [await running.wait_status(i, "Succeeded") for i in ids]
    assert [j.result for j in jobs] == [{"total": 6, "count": 3}, "Ada (1)", None]
    assert [a.outcome for a in await app.job_attempts(ids[0])] == ["succeeded"]


async def test_run_middleware_passes_the_result_on_or_replaces_it(make_app, start) -> None:
    app: JobMaster = make_app()

    async def wrapped(call_next, job):  # type: ignore[no-untyped-def]
        return {"wrapped": await call_next(), "handler": job.definition_id.rsplit(".", 1)[-1]}

    @app.handler(middleware=[wrapped])
    def three() -> int:
        return 3

    running = await start(app)
    job = await running.wait_status(await app.schedule(three), "Succeeded")
    assert job.result == {"wrapped": 3, "handler": "three"}


async def test_a_result_over_max_result_bytes_fails_the_job_without_a_retry(make_app, start) -> None:
    app: JobMaster = make_app(max_result_bytes=64)

    @app.handler(max_retries=3)
    async def big(size: int) -> str:
        return "x" * size

    running = await start(app)
    fits, over = await app.schedule(big, {"size": 10}), await app.schedule(big, {"size": 100})
    assert (await running.wait_status(fits, "Succeeded")).result == "x" * 10
    failed = await running.wait_status(over, "Failed")
    assert failed.last_error is not None
    assert failed.last_error["type"] == "jobmaster.errors.ResultError"
    assert "102 bytes once serialised, over max_result_bytes=64" in failed.last_error["message"]
    assert "big' is" in failed.last_error["message"]
    assert failed.data == {"size": 100} and failed.result is None
    assert [a.outcome for a in await app.job_attempts(over)] == ["failed"]


async def test_a_result_json_cannot_hold_fails_the_job_naming_the_type(make_app, start) -> None:
    app: JobMaster = make_app()

    @app.handler
    async def tags() -> object:
        return {"tags": {"a", "b"}}

    running = await start(app)
    job_id = await app.schedule(tags)
    failed = await running.wait_status(job_id, "Failed")
    assert failed.last_error is not None and failed.last_error["type"] == "jobmaster.errors.ResultError"
    message = failed.last_error["message"]
    assert "tags' is not JSON-serialisable: Type is not JSON serializable: set" in message
    assert [a.outcome for a in await app.job_attempts(job_id)] == ["failed"]


async def test_result_is_woken_by_the_end_of_the_run_not_by_reading_again(make_app, start) -> None:
    """With reads of the job 60 s apart, only the job's end (the events here, the trigger's
    notification on PostgreSQL) can return the result within the 30 s timeout."""
    app: JobMaster = make_app(idle_poll_interval=60)
    gate = asyncio.Event()

    @app.handler
    async def doubled(n: int) -> int:
        await gate.wait()
        return n * 2

    running = await start(app)
    job_id = await app.schedule(doubled, {"n": 21})
    waiter = asyncio.create_task(app.result(job_id, timeout=30))
    await running.wait_status(job_id, "Processing")
    await eventually(lambda: _true(app.events.wants(BatchFlushed)))
    assert not waiter.done()
    gate.set()
    assert await waiter == 42
    assert not app.events.wants(BatchFlushed), "the wait left its subscription behind"
    assert await app.result(job_id, timeout=0) == 42  # an ended job answers at once


async def test_result_of_a_failed_or_cancelled_job_raises_naming_how_it_ended(make_app, start) -> None:
    app: JobMaster = make_app()

    @app.handler(max_retries=0)
    async def broken() -> int:
        raise ValueError("boom")

    running = await start(app)
    failed_id = await app.schedule(broken)
    with pytest.raises(
        JobNotSucceededError, match=r"ended Failed: ValueError: boom; it has no result"
    ) as raised:
        await app.result(failed_id, timeout=30)
    assert raised.value.job.id == failed_id and raised.value.job.status is JobStatus.Failed
    later = await app.schedule(broken, delay="1h")
    waiter = asyncio.create_task(app.result(later, timeout=30))
    await running.wait_status(later, "HeldOnMaster", "AssignedToBucket", "SavePending")
    await app.cancel(later)
    with pytest.raises(JobNotSucceededError, match=r"ended Cancelled"):
        await waiter


async def test_result_times_out_and_refuses_unknown_ids_and_bad_timeouts(make_app, start) -> None:
    app: JobMaster = make_app()

    @app.handler
    async def later() -> int:
        return 1

    await start(app)
    job_id = await app.schedule(later, delay="1h")
    with pytest.raises(ResultTimeoutError, match=rf"job {job_id} has not ended after 0.2s: it is \w+"):
        await app.result(job_id, timeout=0.2)
    assert (await app.get_job(job_id)).status is not JobStatus.Cancelled, "giving up changed the job"
    with pytest.raises(JobNotFoundError, match="no job with id 'nope'"):
        await app.result("nope", timeout=5)
    with pytest.raises(ConfigError, match="timeout must be >= 0"):
        await app.result(job_id, timeout=-1)


async def _true(value: bool) -> bool:
    return value


async def test_result_of_a_job_only_an_agent_holds_yet(make_app, urls, start) -> None:
    """A YES-path job is first only a message in its agent: the master cannot be asked to announce
    its end yet, so the waiter reads it again until a worker adopts it, and then is woken."""
    app: JobMaster = make_app(
        agents={"a": urls["agent"]},
        workers=[{"name": "w1", "agent": "a", "bucket_buffer_lead_time": 0}],
    )

    @app.handler
    async def answer() -> int:
        return 42

    await start(app)
    job_id = await app.schedule(answer, delay="5s")  # stays in the agent until due
    assert (await app.get_job(job_id)).status is JobStatus.SavePending
    assert await app.result(job_id, timeout=60) == 42
