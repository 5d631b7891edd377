"""The testing kit used directly: inline and capture modes, assertions, and the in-process cluster."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from jobmaster import (
    ConfigError,
    Discard,
    JobContext,
    JobMaster,
    JobStatus,
    JobTimeoutError,
    ResultError,
    ScheduleError,
    Snooze,
)
from jobmaster.testing import (
    assert_not_scheduled,
    assert_scheduled,
    capture,
    cluster,
    inline,
    scheduled_jobs,
)


def make_app() -> JobMaster:
    """An app configured for PostgreSQL, as a real one would be: the kit must never open it."""
    workers = [{"name": "real", "lane": "Mail"}]
    return JobMaster("kit", "postgresql://nobody@localhost:1/never", workers=workers)


async def test_inline_runs_each_handler_at_once_without_a_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    jm = make_app()
    seen: list[Any] = []

    @jm.handler
    async def add(ctx: JobContext, a: int, b: int) -> int:
        seen.append((ctx.attempt, ctx.worker_id, ctx.state is jm.state))
        return a + b

    @jm.handler
    def shout(text: str) -> tuple[str, int]:
        return text.upper(), len(text)

    with inline(jm) as mode:
        await jm.schedule(add, {"a": 1, "b": 2})
        assert seen == [(1, "inline", True)]  # ran before schedule returned
        await jm.schedule_many(shout, [{"text": "a"}, {"text": "b"}])
        await add.schedule(a=2, b=3)  # the typed call path goes through the same seam
        await add.options(priority="high").schedule(4, 5)
        assert_scheduled(add, {"a": 4, "b": 5}, priority="high", count=1)
    assert [r.status for r in mode.runs] == [JobStatus.Succeeded] * 5
    # Results come back through JSON, as the master stores them: the tuple is a list.
    assert mode.results(add) == [3, 5, 9] and mode.results(shout) == [["A", 1], ["B", 1]]
    assert mode.runs[0].job.result == 3
    assert not jm.is_open and list(tmp_path.iterdir()) == []


async def test_inline_raises_handler_errors_and_keeps_outcomes() -> None:
    jm = make_app()

    @jm.handler
    async def boom(n: int) -> None:
        raise ValueError(f"bad {n}")

    @jm.handler
    async def drop() -> None:
        raise Discard("not needed")

    @jm.handler
    async def later() -> Snooze:
        return Snooze("1h")

    @jm.handler
    async def opaque() -> object:
        return object()

    @jm.handler(timeout="50ms")
    async def slow() -> None:
        await asyncio.Event().wait()

    @jm.handler
    async def own_timeout() -> None:
        raise TimeoutError("the handler's own")

    with inline(jm) as mode:
        with pytest.raises(ValueError, match="bad 1"):
            await jm.schedule(boom, {"n": 1})
        await jm.schedule(drop)
        await jm.schedule(later)
        with pytest.raises(ResultError, match="the result of handler .*opaque' is not JSON-serialisable"):
            await jm.schedule(opaque)
        with pytest.raises(ScheduleError, match="parameters"):
            await jm.schedule(boom, {"m": 1})  # refused before anything runs, as in a cluster
    failed, dropped, snoozed, unstorable = mode.runs
    assert unstorable.status is JobStatus.Failed and unstorable.result is None
    assert failed.status is JobStatus.Failed and failed.job.last_error is not None
    assert failed.job.last_error["type"] == "ValueError"
    assert dropped.status is JobStatus.Failed and isinstance(dropped.error, Discard)
    assert snoozed.status is JobStatus.HeldOnMaster and snoozed.job.scheduled_at > failed.job.finished_at

    with inline(jm, raise_errors=False) as quiet:
        await jm.schedule(boom, {"n": 2})
        await jm.schedule(slow)
        await jm.schedule(own_timeout)
    crashed, timed_out, raised = quiet.runs
    assert isinstance(crashed.error, ValueError)
    assert isinstance(timed_out.error, JobTimeoutError) and timed_out.status is JobStatus.Failed
    assert type(raised.error) is TimeoutError and str(raised.error) == "the handler's own"


async def test_inline_goes_through_the_apps_middleware_and_runs_nested_jobs() -> None:
    jm = make_app()
    layers: list[str] = []

    @jm.schedule_middleware
    async def stamp(call_next: Any, jobs: list[Any]) -> None:
        for job in jobs:
            job.metadata["tenant"] = "t1"
        await call_next(jobs)

    @jm.run_middleware
    async def around(call_next: Any, job: Any) -> Any:
        layers.append(f"{job.metadata['tenant']}:{job.definition_id.rsplit('.', 1)[-1]}")
        return await call_next()

    @jm.handler
    async def child(n: int) -> int:
        return n * 10

    @jm.handler
    async def parent(n: int) -> None:
        await jm.schedule(child, {"n": n})

    with inline(jm) as mode:
        await jm.schedule(parent, {"n": 4})
    assert layers == ["t1:parent", "t1:child"]
    assert mode.results(child) == [40]
    with capture(jm):
        pass  # the inline layer is gone: a new mode may start
    assert jm._schedule_middleware == [stamp]


def test_inline_serves_the_sync_api() -> None:
    jm = make_app()

    @jm.handler
    def double(n: int) -> int:
        return 2 * n

    with inline(jm) as mode:
        jm.sync.schedule(double, {"n": 21})
        assert_scheduled(double, {"n": 21})
    assert mode.results(double) == [42]


async def test_capture_and_assertions_show_what_was_scheduled() -> None:
    jm = make_app()

    @jm.handler(priority="high")
    async def send(email: str, subject: str = "hi") -> None:
        raise AssertionError("capture mode must not run handlers")

    @jm.handler
    async def other() -> None: ...

    with pytest.raises(ConfigError, match="no jobmaster.testing mode is active"):
        scheduled_jobs(send)
    with capture(jm) as mode:
        await jm.schedule(send, {"email": "ada@example.com"}, metadata={"k": "v"})
        await jm.schedule(send, {"email": "bob@example.com", "subject": "yo"}, lane="Mail")
        await jm.schedule(other)
        assert [j.data["email"] for j in scheduled_jobs(send)] == ["ada@example.com", "bob@example.com"]
        assert mode.scheduled_jobs() == scheduled_jobs()
        [ada] = assert_scheduled(send, {"email": "ada@example.com"}, priority="high", metadata={"k": "v"})
        assert ada.priority.name == "High"
        assert_scheduled(send, count=2)
        assert_scheduled(send, {"subject": "yo"}, lane="Mail", count=1)
        assert_not_scheduled(send, {"email": "eve@example.com"})
        with pytest.raises(AssertionError) as failure:
            assert_scheduled(send, {"email": "eve@example.com"})
        message = str(failure.value)
        assert "expected" in message and "'eve@example.com'" in message and "0 matched" in message
        assert "2 job(s)" in message and "bob@example.com" in message and "lane=Mail" in message
        assert "other handlers:" in message and "other x1" in message
        with pytest.raises(AssertionError, match="exactly 3 time"):
            assert_scheduled(send, count=3)
        with pytest.raises(ConfigError, match="already has an active"):
            inline(jm).__enter__()
    assert not jm.is_open


async def test_cluster_runs_jobs_through_the_engine_and_drains(tmp_path: Path) -> None:
    jm = make_app()
    original = jm.config

    @jm.on_startup
    async def setup(state: Any) -> None:
        state.greeting = "hello"

    @jm.handler
    async def greet(ctx: JobContext, name: str) -> str:
        return f"{ctx.state.greeting} {name}"

    @jm.handler(max_retries=1)
    async def broken() -> None:
        raise RuntimeError("always")

    @jm.handler(lane="Mail")
    async def fan_out(count: int) -> None:
        await jm.schedule_many(greet, [{"name": str(i)} for i in range(count)])

    async with cluster(jm, lanes=["Extra"]) as c:
        await jm.schedule(greet, {"name": "ada"})
        await jm.schedule(greet, {"name": "x"}, lane="Extra")  # a lane only a call names
        await jm.schedule(broken)
        await jm.schedule(greet, {"name": "later"}, delay="1h")
        await jm.schedule(fan_out, {"count": 3})
        ran = await c.drain()
        by_handler: dict[str, list[Any]] = {}
        for job in ran:
            by_handler.setdefault(job.definition_id.rsplit(".", 1)[-1], []).append(job)
        assert len(by_handler["greet"]) == 5 and len(by_handler["fan_out"]) == 1
        assert {j.lane for j in by_handler["greet"]} == {"Default", "Extra"}
        assert by_handler["fan_out"][0].lane == "Mail"  # the handler's lane has a worker too
        assert all(j.status is JobStatus.Succeeded for j in by_handler["greet"] + by_handler["fan_out"])
        assert sorted(j.result for j in by_handler["greet"]) == [
            "hello 0",
            "hello 1",
            "hello 2",
            "hello ada",
            "hello x",
        ]
        [failed] = by_handler["broken"]
        assert failed.status is JobStatus.Failed and failed.attempts == 2
        assert_scheduled(greet, {"name": "later"}, count=1)
        assert await c.drain() == []  # nothing new is due
        [late] = await c.drain(with_scheduled=True)
        assert late.data == {"name": "later"} and late.status is JobStatus.Succeeded
        assert late.result == "hello later"
        assert c.database.exists() and len(await c.jobs(greet)) == 6
    assert jm.config is original and not jm.is_open


async def test_cluster_drain_names_what_never_finishes_and_refuses_an_open_app(tmp_path: Path) -> None:
    jm = make_app()

    @jm.handler
    async def job() -> None: ...

    async with cluster(jm) as c:
        job_id = await jm.schedule(job, lane="Nowhere")  # no worker serves this lane
        with pytest.raises(AssertionError, match=rf"1 job\(s\) unfinished after 1s: {job_id} .*\(Nowhere\)"):
            await c.drain(timeout=1)
    opened = JobMaster("kit-open", f"sqlite:///{tmp_path}/open.db")
    async with opened:
        with pytest.raises(ConfigError, match="not open"):
            async with cluster(opened):
                pass
