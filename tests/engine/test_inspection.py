"""`jm.inspect`: the public view of workers, buckets and agents that the CLI and dashboard use."""

from __future__ import annotations

from jobmaster import WorkerStatus


async def test_inspect_sees_the_running_workers_buckets_and_agent_backlog(make_app, start) -> None:
    app = make_app(workers=[{"name": "w1", "buckets": {"Medium": 2}}])

    @app.handler
    async def noop() -> None:
        pass

    running = await start(app)
    (worker,) = await app.inspect.workers()
    assert worker.name == "w1" and worker.status is WorkerStatus.Running
    buckets = await app.inspect.buckets()
    medium = [b for b in buckets if b.worker_id == worker.id and b.priority.name == "Medium"]
    assert len(medium) == 2
    counts = await app.inspect.agent_counts(buckets)
    assert set(counts) == {b.id for b in buckets}
    assert all(isinstance(n, int) and n >= 0 for n in counts.values())
    await running.stop()
    async with app:
        assert await app.inspect.workers() == []
        (stopped,) = await app.inspect.workers(include_stopped=True)
        assert stopped.id == worker.id and stopped.status is WorkerStatus.Stopped
        assert await app.inspect.drain_orphans() == {}
