"""A worker rides out a master that is down when it starts (#25), with a real worker process and a
private PostgreSQL server; errors a retry cannot fix still stop it at once."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from private_pg import PrivatePostgres

from helpers import app_client, worker_through_outage

APP = """
from jobmaster import JobMaster

jm = JobMaster(
    "startup", MASTER, workers=[{"name": "w1"}], heartbeat_interval=0.3, worker_timeout=2, job_lease=5
)


@jm.handler(name="ok")
async def ok() -> None:
    pass
"""


def _write_app(directory: Path, master: str) -> None:
    (directory / "app.py").write_text(APP.replace("MASTER", repr(master)), encoding="utf-8")


@pytest.mark.e2e
def test_a_worker_started_before_its_master_waits_then_runs_the_jobs(
    tmp_path: Path, private_master: PrivatePostgres
) -> None:
    _write_app(tmp_path, private_master.url)
    job_id = app_client(tmp_path, "print(jm.sync.schedule('ok'))")
    private_master.stop("immediate")
    logs = worker_through_outage(tmp_path, job_id, private_master.start)
    waits = [line for line in logs.splitlines() if "waiting for the master" in line]
    assert len(waits) == 1, logs
    assert (
        f"waiting for the master at {private_master.url}: " in waits[0]
        and "retrying with back-off" in waits[0]
    )
    assert any("the master at" in line and "answers after" in line for line in logs.splitlines())


@pytest.mark.e2e
def test_a_start_timeout_bounds_the_wait_and_zero_fails_at_once(
    tmp_path: Path, private_master: PrivatePostgres
) -> None:
    _write_app(tmp_path, private_master.url)
    app_client(tmp_path, "jm.sync.count_jobs()")  # the schema exists
    private_master.stop("immediate")
    for timeout, within in (("2s", (1.5, 20)), ("0", (0, 10))):
        began = time.monotonic()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "jobmaster.cli.main",
                "worker",
                "--app",
                "app:jm",
                "--start-timeout",
                timeout,
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        took = time.monotonic() - began
        assert done.returncode == 1, done.stderr
        assert within[0] <= took <= within[1], (timeout, took)
        last = done.stderr.strip().splitlines()[-1]
        assert (
            last.startswith("error: cannot connect to") or "did not answer within the start timeout" in last
        )
        if timeout == "2s":
            assert "the master at" in last and "did not answer within the start timeout of 2s" in last


@pytest.mark.e2e
def test_an_error_no_retry_fixes_stops_the_worker_at_once(
    tmp_path: Path, private_master: PrivatePostgres
) -> None:
    _write_app(tmp_path, private_master.url.rsplit("/", 1)[0] + "/no_such_database")
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "jobmaster.cli.main", "worker", "--app", "app:jm"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert time.monotonic() - began < 20
    assert "no_such_database" in done.stderr and "waiting for" not in done.stderr
