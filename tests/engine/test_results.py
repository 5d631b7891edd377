"""Results: what a handler returns is stored with its job on every master, within
`max_result_bytes`; a value that cannot be stored fails the job with an error naming why."""

from __future__ import annotations

from jobmaster import JobContext, JobMaster


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
