"""`jm.result` across processes: a real worker process runs the jobs, this process waits for them.

On PostgreSQL the wait is woken by the trigger's notification: with this process's reads of the job
made 60 s and 120 s apart (`idle_poll_interval`, the safety net `RECHECK`), only the notification
can end the wait within its 30 s. SQLite has no notifications, so there the waiter reads the job
again with back-off (docs/results.md).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from results_app import register

from jobmaster import JobMaster, JobNotSucceededError, results

HERE = Path(__file__).parent


@pytest.fixture
def worker(master_url: str, cluster_id: str, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobmaster.cli.main", "worker", "--app", "results_app:jm"],
        env={
            **os.environ,
            "RESULTS_MASTER": master_url,
            "RESULTS_CLUSTER": cluster_id,
            "PYTHONPATH": str(HERE),
        },
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield proc
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(60) == 0, (tmp_path / "worker.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()


@pytest.mark.e2e
async def test_result_of_a_job_run_by_another_process(
    worker: subprocess.Popen[bytes], master_url: str, cluster_id: str, tmp_path: Path, monkeypatch
) -> None:
    notifies = master_url.startswith("postgresql")
    if notifies:
        monkeypatch.setattr(results, "RECHECK", 120.0)
    app = register(JobMaster(cluster_id, master_url, idle_poll_interval=60 if notifies else 0.02))
    gate = tmp_path / "gate"
    async with app:
        held = await app.schedule("results.add", {"a": 40, "b": 2, "gate": str(gate)})
        waiter = asyncio.create_task(app.result(held, timeout=30 if notifies else 90))
        deadline = asyncio.get_running_loop().time() + 90
        while (await app.get_job(held)).status.name != "Processing":
            assert asyncio.get_running_loop().time() < deadline, "the worker never started the job"
            await asyncio.sleep(0.05)
        assert not waiter.done()
        gate.touch()
        result = await waiter
        assert result == {"sum": 42, "pid": worker.pid}
        stored = await app.get_job(held)
        assert stored.result == result
        assert stored.notify_channel == (getattr(app.runtime.master, "channel", None) if notifies else None)

        broken = await app.schedule("results.broken")
        with pytest.raises(JobNotSucceededError, match="ended Failed: RuntimeError: broken on purpose"):
            await app.result(broken, timeout=90)

    # the sync twin, from a process that only schedules and waits (its own app object and loop)
    publisher = register(JobMaster(cluster_id, master_url))
    try:
        done = await asyncio.to_thread(publisher.sync.schedule, "results.add", {"a": 1, "b": 2})
        assert await asyncio.to_thread(publisher.sync.result, done, timeout=90) == {
            "sum": 3,
            "pid": worker.pid,
        }
    finally:
        await asyncio.to_thread(publisher.sync.close)
