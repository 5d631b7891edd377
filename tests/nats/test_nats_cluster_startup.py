"""A worker started during a JetStream leader election becomes ready and runs jobs (#25): a private
three-node cluster of nats-servers, one node SIGKILLed (the stream's leader), real worker and
publisher processes. Without quorum the worker waits, saying so, and starts once a node is back."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nats_support import PrivateNatsCluster

from helpers import WORKER, app_client, wait_job_status
from jobmaster.agents.nats.options import stream_name

CLUSTER = "startup-cluster"

APP = """
from jobmaster import JobMaster

jm = JobMaster(
    CLUSTER, MASTER, agents={"fast": AGENT}, workers=[{"name": "w1", "agent": "fast"}],
    heartbeat_interval=0.3, worker_timeout=2, job_lease=5,
)


@jm.handler(name="ok")
async def ok() -> None:
    pass
"""


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[PrivateNatsCluster]:
    nodes = PrivateNatsCluster(tmp_path / "cluster")
    nodes.start()
    try:
        yield nodes
    finally:
        nodes.stop()


def _write_apps(directory: Path, cluster: PrivateNatsCluster) -> Path:
    """The app of the worker and publishers, through the cluster (streams of 3 replicas); and a
    watcher's app on the master alone, whose polls never open an agent, so that a publisher's
    fail-fast open during an election cannot end a wait. Returns the watcher's directory."""
    master = repr(f"sqlite:///{directory}/jobs.db")
    agent = repr(f"{cluster.url}?replicas=3")
    source = APP.replace("CLUSTER", repr(CLUSTER)).replace("MASTER", master).replace("AGENT", agent)
    (directory / "app.py").write_text(source, encoding="utf-8")
    watcher = directory / "watcher"
    watcher.mkdir()
    (watcher / "app.py").write_text(
        f"from jobmaster import JobMaster\njm = JobMaster({CLUSTER!r}, {master})\n"
    )
    return watcher


def _stream_leader(cluster: PrivateNatsCluster) -> str:
    info = cluster.api(f"STREAM.INFO.{stream_name(CLUSTER, 'fast')}")
    leader: str = info["cluster"]["leader"]
    return leader


def _start_worker(directory: Path) -> subprocess.Popen[bytes]:
    log = open(directory / "worker.log", "wb")  # noqa: SIM115 - lives as long as the process
    return subprocess.Popen(WORKER, cwd=directory, stdout=log, stderr=subprocess.STDOUT)


def _stop_worker(directory: Path, worker: subprocess.Popen[bytes]) -> str:
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(90)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
    logs = (directory / "worker.log").read_text(errors="replace")
    assert worker.returncode == 0, logs
    return logs


def _runs_jobs_through_the_cluster(directory: Path, watcher: Path, before: str) -> None:
    """The job scheduled before the worker came runs (the worker's coordinator hands it to its
    bucket in the cluster), and so does one scheduled now (a publisher puts it in the bucket)."""
    wait_job_status(watcher, before, "Succeeded", timeout=120)
    after = app_client(directory, "print(jm.sync.schedule('ok'))")
    wait_job_status(watcher, after, "Succeeded", timeout=120)


@pytest.mark.e2e
def test_a_worker_started_during_a_stream_leader_election_becomes_ready_and_runs_jobs(
    tmp_path: Path, cluster: PrivateNatsCluster
) -> None:
    watcher = _write_apps(tmp_path, cluster)
    before = app_client(tmp_path, "print(jm.sync.schedule('ok'))")  # creates the stream too
    cluster.nodes[_stream_leader(cluster)].kill()
    worker = _start_worker(tmp_path)
    try:
        _runs_jobs_through_the_cluster(tmp_path, watcher, before)
    finally:
        logs = _stop_worker(tmp_path, worker)
    assert "error:" not in logs


@pytest.mark.e2e
def test_a_worker_started_while_the_cluster_has_no_quorum_waits_then_runs_jobs(
    tmp_path: Path, cluster: PrivateNatsCluster
) -> None:
    watcher = _write_apps(tmp_path, cluster)
    before = app_client(tmp_path, "print(jm.sync.schedule('ok'))")
    leader = _stream_leader(cluster)
    other = next(name for name in cluster.nodes if name != leader)
    cluster.nodes[leader].kill()
    cluster.nodes[other].kill()  # one node of three left: no leader can be elected
    worker = _start_worker(tmp_path)
    try:
        deadline = time.monotonic() + 120
        while "waiting for agent 'fast'" not in (tmp_path / "worker.log").read_text(errors="replace"):
            assert worker.poll() is None, "the worker gave up instead of waiting"
            assert time.monotonic() < deadline, "the worker never said it waits for the cluster"
            time.sleep(0.2)
        assert worker.poll() is None, "the worker gave up instead of waiting"
        cluster.nodes[other].start()
        _runs_jobs_through_the_cluster(tmp_path, watcher, before)
    finally:
        logs = _stop_worker(tmp_path, worker)
    # Each step the election held up (the stream lookup, a bucket's creation) waited on its own,
    # for a JetStream answer a later try meets, and went on when the cluster answered.
    waits = [line for line in logs.splitlines() if "waiting for agent 'fast'" in line]
    assert waits
    for line in waits:
        assert "NatsAgentError" in line and ("code 408/0" in line or "code 503/" in line), line
    answers = [line for line in logs.splitlines() if "agent 'fast' at" in line and "answers after" in line]
    assert len(answers) == len(waits), logs
