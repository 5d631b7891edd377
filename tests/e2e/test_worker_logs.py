"""`jobmaster worker`'s logs, read from a real worker process's stderr: every failure, retry,
timeout, cancellation and outage, with the job's identity; JSON lines for log shippers."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from private_pg import PrivatePostgres

from helpers import app_client, wait_job_status

APP = """
import asyncio
import logging
import sys

from jobmaster import JobContext, JobMaster

jm = JobMaster(
    "logs",
    MASTER,
    workers=[{"name": "w1"}, {"name": "w2"}],
    heartbeat_interval=0.3,
    worker_timeout=2,
    job_lease=8,
    retry_backoff_base=0.1,
    retry_backoff_cap=0.2,
)


@jm.handler(name="fail", max_retries=1)
async def fail() -> None:
    raise ValueError("the handler says no")


@jm.handler(name="slow", max_retries=1, timeout=0.3)
async def slow() -> None:
    await asyncio.sleep(30)


@jm.handler(name="wait")
async def wait(ctx: JobContext) -> None:
    await asyncio.sleep(30)


@jm.handler(name="chatty")
def chatty(ctx: JobContext) -> None:
    ctx.logger.warning("hello from the handler")
    logging.getLogger("thirdparty.client").warning("a library line")


@jm.handler(name="ok")
async def ok() -> None:
    pass


@jm.handler(name="once_slow")
async def once_slow(ctx: JobContext) -> None:
    if ctx.attempt == 1:
        await asyncio.sleep(60)
"""


def _write_app(directory: Path, master: str) -> None:
    (directory / "app.py").write_text(APP.replace("MASTER", repr(master)), encoding="utf-8")


def _worker(directory: Path, *options: str) -> subprocess.Popen[str]:
    if "--worker" not in options:
        options = ("--worker", "w1", *options)
    command = [sys.executable, "-m", "jobmaster.cli.main", "worker", "--app", "app:jm", *options]
    return subprocess.Popen(command, cwd=directory, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stop(worker: subprocess.Popen[str]) -> str:
    worker.send_signal(signal.SIGTERM)
    _, logs = worker.communicate(timeout=60)
    assert worker.returncode == 0, logs
    return logs


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    _write_app(tmp_path, f"sqlite:///{tmp_path}/jobs.db")
    return tmp_path


def _schedule_all(app_dir: Path) -> dict[str, str]:
    out = app_client(
        app_dir,
        "ids = {name: jm.sync.schedule(name) for name in ('fail', 'slow', 'wait', 'chatty', 'ok')}\n"
        "print(' '.join(f'{k}={v}' for k, v in ids.items()))",
    )
    return dict(pair.split("=") for pair in out.split())


def _run_everything(app_dir: Path, *options: str) -> tuple[dict[str, str], str]:
    worker = _worker(app_dir, *options)
    try:
        ids = _schedule_all(app_dir)
        for name in ("fail", "slow"):
            wait_job_status(app_dir, ids[name], "Failed")
        wait_job_status(app_dir, ids["chatty"], "Succeeded")
        wait_job_status(app_dir, ids["ok"], "Succeeded")
        wait_job_status(app_dir, ids["wait"], "Processing")
        app_client(app_dir, f"jm.sync.cancel({ids['wait']!r})")
        wait_job_status(app_dir, ids["wait"], "Cancelled")
    finally:
        logs = _stop(worker)
    return ids, logs


def _lines_of(logs: str, job_id: str) -> list[str]:
    return [line for line in logs.splitlines() if job_id in line]


@pytest.mark.e2e
def test_every_failure_retry_timeout_and_cancellation_is_logged_with_the_job(app_dir: Path) -> None:
    ids, logs = _run_everything(app_dir)
    fail = _lines_of(logs, ids["fail"])
    assert len(fail) == 2, logs
    assert re.search(r"WARNING +jobmaster\.job: \[job \w+\] job \w+ \(fail\) attempt 1/2 failed: ", fail[0])
    assert "ValueError: the handler says no; retrying at " in fail[0]
    assert (
        "Traceback (most recent call last):" in fail[0]
        and 'raise ValueError("the handler says no")' in fail[0]
    )
    assert re.search(
        r"ERROR +jobmaster\.job: .* attempt 2/2 failed: ValueError: the handler says no; the job is Failed",
        fail[1],
    )
    slow = _lines_of(logs, ids["slow"])
    assert (
        "WARNING" in slow[0]
        and "attempt 1/2 timed out: jobmaster.errors.JobTimeoutError: job ran past its timeout" in slow[0]
    )
    assert "ERROR" in slow[1] and "attempt 2/2 timed out" in slow[1]
    (cancelled,) = _lines_of(logs, ids["wait"])
    assert (
        "WARNING" in cancelled
        and "cancelled: jobmaster.errors.JobCancelledError: cancelled by request" in cancelled
    )
    chatty = _lines_of(logs, ids["chatty"])
    assert any("jobmaster.job.chatty: [job" in line and "hello from the handler" in line for line in chatty)
    assert any("thirdparty.client: [job" in line and "a library line" in line for line in chatty)
    assert _lines_of(logs, ids["ok"]) == [], "a success is DEBUG by default"


@pytest.mark.e2e
def test_json_lines_parse_and_carry_the_job_fields(app_dir: Path) -> None:
    ids, logs = _run_everything(app_dir, "--log-format", "json", "--log-jobs")
    entries = [json.loads(line) for line in logs.splitlines()]
    assert {e["logger"] for e in entries} >= {"jobmaster.cli", "jobmaster.job", "jobmaster.job.chatty"}
    (final,) = [e for e in entries if e.get("job_id") == ids["fail"] and e["level"] == "ERROR"]
    assert final["handler"] == "fail" and final["attempt"] == 2 and final["lane"] == "Default"
    assert final["priority"] == "Medium"
    assert "ValueError: the handler says no" in final["exception"]
    (success,) = [e for e in entries if e.get("job_id") == ids["ok"]]
    assert success["level"] == "INFO" and "succeeded in" in success["message"]
    library = [e for e in entries if e["logger"] == "thirdparty.client"]
    assert [(e["message"], e["job_id"], e["handler"]) for e in library] == [
        ("a library line", ids["chatty"], "chatty")
    ]


@pytest.mark.e2e
def test_a_log_level_per_logger_and_a_bad_level_named(app_dir: Path) -> None:
    worker = _worker(app_dir, "--log-level", "WARNING", "--log-level", "jobmaster.job=DEBUG")
    ids: dict[str, str] = {}
    try:
        ids = _schedule_all(app_dir)
        wait_job_status(app_dir, ids["ok"], "Succeeded")
    finally:
        if "wait" in ids:  # the worker need not wait for it to stop
            app_client(app_dir, f"jm.sync.cancel({ids['wait']!r})")
        logs = _stop(worker)
    assert "starting worker(s)" not in logs  # INFO of jobmaster.cli is below WARNING
    assert any("DEBUG" in line and "succeeded in" in line for line in _lines_of(logs, ids["ok"]))
    bad = subprocess.run(
        [sys.executable, "-m", "jobmaster.cli.main", "worker", "--app", "app:jm", "--log-level", "LOUD"],
        cwd=app_dir,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "'LOUD' is not a level" in bad.stderr


@pytest.mark.e2e
def test_a_master_outage_logs_one_line_down_and_one_back(
    tmp_path: Path, private_master: PrivatePostgres
) -> None:
    _write_app(tmp_path, private_master.url)
    worker = _worker(tmp_path)
    try:
        ids = _schedule_all(tmp_path)
        wait_job_status(tmp_path, ids["ok"], "Succeeded")
        private_master.stop("immediate")
        time.sleep(4)  # the outage: a dozen heartbeats, claims and intake passes fail meanwhile
        private_master.start()
        later = app_client(tmp_path, "print(jm.sync.schedule('ok'))").strip()
        # its outcome write is what logs the master back (`Runtime._flush_completions`)
        wait_job_status(tmp_path, later, "Succeeded")
    finally:
        logs = _stop(worker)
    connection = [line for line in logs.splitlines() if "jobmaster.connection" in line]
    assert len(connection) == 2, connection
    assert "WARNING" in connection[0] and "the master failed while" in connection[0]
    assert "INFO" in connection[1] and "the master answers again after" in connection[1]


@pytest.mark.e2e
def test_a_dead_workers_jobs_and_buckets_are_logged_by_the_worker_that_takes_them_over(app_dir: Path) -> None:
    first = _worker(app_dir, "--worker", "w1")
    try:
        job_id = app_client(app_dir, "print(jm.sync.schedule('once_slow'))").strip()
        wait_job_status(app_dir, job_id, "Processing")
    finally:
        first.kill()
        first.communicate(timeout=30)
    second = _worker(app_dir, "--worker", "w2")
    try:
        wait_job_status(app_dir, job_id, "Succeeded")
    finally:
        logs = _stop(second)
    recovered = [line for line in logs.splitlines() if "jobmaster.recovery" in line]
    assert len(recovered) == 1 and "WARNING" in recovered[0], logs
    assert "gave back 1 job(s) whose workers stopped renewing their leases" in recovered[0]
    drained = [line for line in logs.splitlines() if "jobmaster.drain" in line]
    assert any("adopting bucket w1-" in line for line in drained), logs
    assert any(re.search(r"bucket w1-\S+ drained: \d+ job\(s\) back to the master", line) for line in drained)


@pytest.mark.e2e
def test_a_standard_logging_config_file_gets_the_job_fields(app_dir: Path) -> None:
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "CFG %(levelname)s %(name)s job=%(job_id)s %(message)s"}},
        "handlers": {
            "err": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}
        },
        "root": {"level": "INFO", "handlers": ["err"]},
    }
    (app_dir / "logging.json").write_text(json.dumps(config), encoding="utf-8")
    worker = _worker(app_dir, "--log-config", "logging.json")
    try:
        job_id = app_client(app_dir, "print(jm.sync.schedule('chatty'))").strip()
        wait_job_status(app_dir, job_id, "Succeeded")
    finally:
        logs = _stop(worker)
    assert f"CFG WARNING jobmaster.job.chatty job={job_id} hello from the handler" in logs
    assert "CFG INFO jobmaster.cli job=None " in logs
