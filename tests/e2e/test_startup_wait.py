"""A worker rides out a master that is down when it starts (#25), with a real worker process and a
private PostgreSQL server; errors a retry cannot fix still stop it at once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from private_pg import PrivatePostgres

from helpers import app_client, fails_at_once, run_worker, worker_through_outage
from jobmaster import JobMaster, UnavailableError
from jobmaster.backends import latest_schema_version

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
        done = run_worker(tmp_path, "--start-timeout", timeout)
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
    assert "no_such_database" in fails_at_once(tmp_path)


@pytest.mark.e2e
def test_a_refused_password_stops_the_worker_at_once(tmp_path: Path, private_master: PrivatePostgres) -> None:
    private_master.require_password("jm_user", "right-one")
    _write_app(tmp_path, f"postgresql://jm_user:wrong-one@127.0.0.1:{private_master.port}/postgres")
    stderr = fails_at_once(tmp_path)
    assert 'password authentication failed for user "jm_user"' in stderr, stderr
    assert "wrong-one" not in stderr


@pytest.mark.e2e
def test_a_refused_mysql_password_stops_the_worker_at_once(
    tmp_path: Path, mysql_urls: dict[str, str]
) -> None:
    url = urlsplit(mysql_urls["master"])
    _write_app(tmp_path, url._replace(netloc=f"{url.username}:wrong-one@{url.hostname}:{url.port}").geturl())
    stderr = fails_at_once(tmp_path)
    assert "Access denied for user" in stderr, stderr
    assert "wrong-one" not in stderr


@pytest.mark.e2e
@pytest.mark.parametrize("migrate", ["auto", "check"])
def test_a_master_schema_newer_than_this_code_stops_the_worker_at_once(
    tmp_path: Path, private_master: PrivatePostgres, migrate: str
) -> None:
    _write_app(tmp_path, private_master.url)
    app_client(tmp_path, "jm.sync.count_jobs()")  # the schema exists
    newer = latest_schema_version(private_master.url) + 1
    private_master.sql(f"INSERT INTO jm_schema (version) VALUES ({newer})")
    stderr = fails_at_once(tmp_path, code=2, env={"JOBMASTER_MIGRATE": migrate})
    assert (
        f"error: the master database has jobmaster schema version {newer}, newer than this "
        f"jobmaster's version {newer - 1}: upgrade jobmaster" in stderr
    ), stderr


@pytest.mark.e2e
async def test_jm_running_waits_for_its_master_then_runs_jobs(private_master: PrivatePostgres) -> None:
    app = JobMaster("startup-running", private_master.url, workers=[{"name": "w1"}], heartbeat_interval=0.3)
    done: list[str] = []

    @app.handler(name="ok")
    async def ok() -> None:
        done.append("ok")

    private_master.stop("immediate")
    # The server comes back while `running()` waits for it (with 0 it would raise at once).
    back = asyncio.get_running_loop().run_in_executor(None, _start_after, private_master, 3.0)
    async with app.running(start_timeout="5m"):
        job_id = await app.schedule(ok)
        deadline = time.monotonic() + 60
        while (await app.get_job(job_id)).status.name != "Succeeded":
            assert time.monotonic() < deadline, "the job never ran"
            await asyncio.sleep(0.05)
    assert done == ["ok"]
    await back


@pytest.mark.e2e
async def test_jm_running_gives_up_at_its_start_timeout() -> None:
    app = JobMaster("startup-running", "postgresql://user:hush@127.0.0.1:9/jobs", workers=[{"name": "w1"}])
    with pytest.raises(
        UnavailableError, match=r"the master at .*:\*\*\*@.* did not answer within the start timeout of 1s"
    ):
        async with app.running(start_timeout="1s"):
            raise AssertionError("running() was entered without a master")


def _start_after(server: PrivatePostgres, seconds: float) -> None:
    time.sleep(seconds)
    server.start()
