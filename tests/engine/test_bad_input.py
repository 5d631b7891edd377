"""Every refused scheduling call names the problem and writes nothing."""

from __future__ import annotations

from datetime import datetime

import pytest

from jobmaster import JobMaster, PayloadError, ScheduleError, UnknownHandlerError
from jobmaster.jobs.model import JobFilter


class NotJson:
    pass


async def _nothing_written(app: JobMaster) -> None:
    assert await app.runtime.master.count_jobs(JobFilter()) == 0
    for agent in app.runtime.agents.values():
        for bucket in await app.runtime.master.list_buckets():
            assert await agent.count(bucket.id) == 0


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda app, h: app.schedule("no.such.handler"), UnknownHandlerError, "unknown handler"),
        (lambda app, h: app.schedule(h, {"x": NotJson()}), PayloadError, "not JSON-serialisable"),
        (lambda app, h: app.schedule(h, {"x": "a" * 5000}), PayloadError, "max_message_bytes"),
        (lambda app, h: app.schedule(h, {"x": 1}, priority="urgent"), ScheduleError, "priority"),
        (lambda app, h: app.schedule(h, {"x": 1}, priority=9), ScheduleError, "priority"),
        (lambda app, h: app.schedule(h, {"x": 1}, lane="bad lane!"), ScheduleError, "lane"),
        (lambda app, h: app.schedule(h, {"x": 1}, at=datetime(2030, 1, 1)), ScheduleError, "naive"),
        (lambda app, h: app.schedule(h, {"x": 1}, delay="soon"), ScheduleError, "delay"),
        (lambda app, h: app.schedule(h, {"x": 1}, delay=-5), ScheduleError, "delay"),
        (lambda app, h: app.schedule(h, {"y": 1}), ScheduleError, "does not match the parameters"),
        (lambda app, h: app.schedule(h, [1, 2]), ScheduleError, "must be a dict"),
        (lambda app, h: app.schedule(h, {"x": 1}, timeout=0), ScheduleError, "timeout"),
        (lambda app, h: app.schedule(h, {"x": 1}, max_retries=-1), ScheduleError, "max_retries"),
        (
            lambda app, h: app.schedule_many(h, [{"x": 1}, {"x": NotJson()}]),
            PayloadError,
            "not JSON-serialisable",
        ),
    ],
)
async def test_refused_calls_write_nothing(make_app, start, call, error, message) -> None:
    app = make_app(max_message_bytes=4096)

    @app.handler
    async def handler(x: object) -> None:
        return None

    await start(app)
    with pytest.raises(error, match=message):
        await call(app, handler)
    await _nothing_written(app)


async def test_localize_makes_the_cluster_zone_explicit(make_app) -> None:
    app = make_app(workers=[], timezone="Europe/Paris")

    @app.handler
    async def handler() -> None:
        return None

    async with app:
        job_id = await app.schedule(handler, at=app.localize(datetime(2030, 1, 1, 12, 0)))
        job = await app.get_job(job_id)
        assert job.scheduled_at == datetime.fromisoformat("2030-01-01T11:00:00+00:00").timestamp()
