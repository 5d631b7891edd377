"""The typed call path: `@jm.handler` returns an object callable as the function, with scheduling
methods taking the handler's own parameters; `jm.schedule(fn, {...})` still works beside it."""

from __future__ import annotations

import asyncio
import inspect
import pickle
from types import SimpleNamespace

import pytest

from jobmaster import JobContext, JobMaster, ScheduleError

#: A module-level handler, as real ones are: pickled by reference like the function it was.
_MODULE_APP = JobMaster("typed-module", "sqlite:///unused.db")


@_MODULE_APP.handler
async def module_level(n: int) -> int:
    return n


def test_a_module_level_handler_object_pickles_by_reference() -> None:
    assert pickle.loads(pickle.dumps(module_level)) is module_level
    assert repr(module_level) == "<jobmaster handler 'test_typed_handlers.module_level'>"


def _handlers(app: JobMaster):  # type: ignore[no-untyped-def]
    @app.handler(priority="low")
    async def add(a: int, b: int = 0, *, scale: int = 1) -> int:
        """Adds."""
        return (a + b) * scale

    @app.handler
    def tagged(ctx: JobContext, name: str, **extra: str) -> dict[str, object]:
        return {"name": name, "extra": extra, "attempt": ctx.attempt}

    @app.handler
    async def positional_only(a: int, /) -> int:
        return a

    return add, tagged, positional_only


async def test_the_handler_object_schedules_runs_and_stays_the_function(make_app, start) -> None:
    app: JobMaster = make_app()
    add, tagged, _ = _handlers(app)
    assert await add(2, 3, scale=2) == 10  # still the function
    assert tagged(ctx=SimpleNamespace(attempt=3), name="x")["attempt"] == 3  # type: ignore[call-arg, arg-type]
    assert app.registry.resolve(add.func).definition_id == add.definition_id  # the plain function too
    assert (
        add.__name__ == "add"
        and add.__doc__ == "Adds."
        and inspect.signature(add).parameters["b"].default == 0
    )
    running = await start(app)

    ids = [
        await add.schedule(1, 2),  # positional, bound to a and b
        await add.schedule(a=5, scale=3),
        await add.options(delay="10ms", priority="critical").schedule(4, b=4),
        await tagged.schedule("Ada", team="core"),  # the context is left out
        await app.schedule(add, {"a": 7}),  # the dict form, with the handler object
        await app.schedule("test_typed_handlers._handlers.<locals>.add", {"a": 8}),
    ]
    jobs = [await running.wait_status(i, "Succeeded") for i in ids]
    assert [j.result for j in jobs] == [
        3,
        15,
        8,
        {"name": "Ada", "extra": {"team": "core"}, "attempt": 1},
        7,
        8,
    ]
    assert jobs[0].data == {"a": 1, "b": 2}
    assert [j.priority.name for j in jobs[:3]] == ["Low", "Low", "Critical"]
    many = await add.options(lane="Default").schedule_many([{"a": n} for n in range(3)])
    assert [await app.result(i, timeout=30) for i in many] == [0, 1, 2]


async def test_the_sync_twins_schedule_from_sync_code(make_app, start) -> None:
    app: JobMaster = make_app()
    add, tagged, _ = _handlers(app)
    await start(app)
    publisher: JobMaster = make_app(workers=[])
    p_add, p_tagged, _ = _handlers(publisher)
    try:
        one = await asyncio.to_thread(p_add.sync.schedule, 20, 22)
        later = await asyncio.to_thread(p_add.options(priority="high").sync.schedule, a=1)
        several = await asyncio.to_thread(p_tagged.sync.schedule_many, [{"name": "x"}, {"name": "y"}])
        assert await app.result(one, timeout=30) == 42
        assert (await app.get_job(later)).priority.name == "High"
        assert [(await app.result(i, timeout=30))["name"] for i in several] == ["x", "y"]
    finally:
        await asyncio.to_thread(publisher.sync.close)


async def test_arguments_that_do_not_bind_are_refused_naming_the_handler(make_app) -> None:
    app: JobMaster = make_app(workers=[])
    add, tagged, positional_only = _handlers(app)
    async with app:
        with pytest.raises(ScheduleError, match=r"handler '.*add'.*too many positional arguments"):
            await add.schedule(1, 2, 3)  # type: ignore[call-arg]
        with pytest.raises(ScheduleError, match=r"handler '.*add'.*multiple values for argument 'a'"):
            await add.schedule(1, a=2)  # type: ignore[misc]
        with pytest.raises(ScheduleError, match=r"handler '.*add'.*missing a required argument: 'a'"):
            await add.schedule(b=2)  # type: ignore[call-arg]
        with pytest.raises(ScheduleError, match=r"handler '.*positional_only' takes 'a' only by position"):
            await positional_only.schedule(1)
        with pytest.raises(ScheduleError, match=r"unknown option 'delya'; did you mean 'delay'"):
            await add.options(delya="1s").schedule(1)  # type: ignore[call-arg]
        assert await app.count_jobs() == 0, "a refused call wrote a job"


async def test_a_handler_object_registers_its_function_with_a_second_app(make_app) -> None:
    first: JobMaster = make_app(workers=[])
    second: JobMaster = make_app(workers=[])
    add, _, _ = _handlers(first)
    again = second.handler(add)
    assert again.func is add.func and again.definition_id == add.definition_id
    assert second.registry.resolve(again).func is add.func
