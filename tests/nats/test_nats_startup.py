"""A worker rides out a NATS agent that is down when it starts (#25): a private nats-server, a real
worker process."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from nats_support import PrivateNats

APP = """
from jobmaster import JobMaster

jm = JobMaster(
    "startup-nats", MASTER, agents={"fast": AGENT}, workers=[{"name": "w1", "agent": "fast"}],
    heartbeat_interval=0.3, worker_timeout=2, job_lease=5,
)


@jm.handler(name="ok")
async def ok() -> None:
    pass
"""


def _client(directory: Path, code: str) -> str:
    command = [sys.executable, "-c", f"from app import jm\n{code}\njm.sync.close()\n"]
    done = subprocess.run(command, cwd=directory, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.e2e
def test_a_worker_started_before_its_nats_agent_waits_then_runs_the_jobs(tmp_path: Path) -> None:
    server = PrivateNats(tmp_path / "nats")
    server.start()
    source = APP.replace("MASTER", repr(f"sqlite:///{tmp_path}/jobs.db")).replace("AGENT", repr(server.url))
    (tmp_path / "app.py").write_text(source, encoding="utf-8")
    try:
        job_id = _client(tmp_path, "print(jm.sync.schedule('ok'))")
        server.kill()
        command = [sys.executable, "-m", "jobmaster.cli.main", "worker", "--app", "app:jm"]
        worker = subprocess.Popen(
            command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            time.sleep(5)
            assert worker.poll() is None, "the worker gave up instead of waiting"
            server.start()
            deadline = time.monotonic() + 60
            while _client(tmp_path, f"print(jm.sync.get_job({job_id!r}).status.name)") != "Succeeded":
                assert time.monotonic() < deadline, "the job never ran"
                time.sleep(0.3)
        finally:
            worker.send_signal(signal.SIGTERM)
            _, logs = worker.communicate(timeout=60)
    finally:
        server.kill()
    assert worker.returncode == 0, logs
    waits = [line for line in logs.splitlines() if "waiting for agent 'fast'" in line]
    assert len(waits) == 1, logs
    assert any("agent 'fast' at" in line and "answers after" in line for line in logs.splitlines())
