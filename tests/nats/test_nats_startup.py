"""A worker rides out a NATS agent that is down when it starts (#25): a private nats-server, a real
worker process."""

from __future__ import annotations

from pathlib import Path

import pytest
from nats_support import PrivateNats

from helpers import app_client, fails_at_once, worker_through_outage

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


@pytest.mark.e2e
def test_a_worker_started_before_its_nats_agent_waits_then_runs_the_jobs(tmp_path: Path) -> None:
    server = PrivateNats(tmp_path / "nats")
    server.start()
    source = APP.replace("MASTER", repr(f"sqlite:///{tmp_path}/jobs.db")).replace("AGENT", repr(server.url))
    (tmp_path / "app.py").write_text(source, encoding="utf-8")
    try:
        job_id = app_client(tmp_path, "print(jm.sync.schedule('ok'))")
        server.kill()
        logs = worker_through_outage(tmp_path, job_id, server.start)
    finally:
        server.kill()
    waits = [line for line in logs.splitlines() if "waiting for agent 'fast'" in line]
    assert len(waits) == 1, logs
    assert any("agent 'fast' at" in line and "answers after" in line for line in logs.splitlines())


@pytest.mark.e2e
def test_refused_nats_credentials_stop_the_worker_at_once(tmp_path: Path) -> None:
    server = PrivateNats(tmp_path / "nats", "--user", "jm", "--pass", "right-one")
    server.start()
    agent = server.url.replace("nats://", "nats://jm:wrong-one@")
    source = APP.replace("MASTER", repr(f"sqlite:///{tmp_path}/jobs.db")).replace("AGENT", repr(agent))
    (tmp_path / "app.py").write_text(source, encoding="utf-8")
    try:
        stderr = fails_at_once(tmp_path)
    finally:
        server.stop()
    assert f"agent 'fast': NATS at nats://jm:***@127.0.0.1:{server.port} refused the credentials" in stderr
    assert "wrong-one" not in stderr
