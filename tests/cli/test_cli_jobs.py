"""`schedule`, `jobs ...`, `status` and `worker` against a user's app module on a SQLite file."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import assert_one_line_error, run_cli, run_json, write_app

APP = "app:jm"


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    write_app(tmp_path)
    return tmp_path


def test_schedule_show_list_cancel_retry_reschedule(app_dir: Path) -> None:
    scheduled = run_cli(
        "schedule",
        "--app",
        APP,
        "greet",
        "--data",
        '{"name": "Ada"}',
        "--delay",
        "1h",
        "--priority",
        "high",
        "--metadata",
        '{"tenant": "t1"}',
        cwd=app_dir,
    )
    assert scheduled.returncode == 0, scheduled.stderr
    job_id = scheduled.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{32}", job_id)
    assert (app_dir / "jobs.db").exists()

    shown = run_json("jobs", "show", "--app", APP, job_id, cwd=app_dir)
    assert shown["id"] == job_id
    assert shown["handler"] == "greet"
    assert shown["status"] == "HeldOnMaster"
    assert shown["priority"] == "High"
    assert shown["data"] == {"name": "Ada"}
    assert shown["metadata"] == {"tenant": "t1"}
    assert shown["attempt_history"] == []
    assert shown["result"] is None
    due = datetime.fromisoformat(shown["scheduled_at"])
    assert due.utcoffset() == timedelta(0)
    assert abs(due - datetime.now(UTC) - timedelta(hours=1)) < timedelta(minutes=1)

    listed = run_json("jobs", "list", "--app", APP, cwd=app_dir)
    assert listed["total"] == 1
    assert [j["id"] for j in listed["jobs"]] == [job_id]

    cancelled = run_json("jobs", "cancel", "--app", APP, job_id, cwd=app_dir)
    assert cancelled["status"] == "Cancelled"
    assert run_json("jobs", "show", "--app", APP, job_id, cwd=app_dir)["finished_at"] is not None
    again = run_cli("jobs", "cancel", "--app", APP, job_id, cwd=app_dir)
    assert_one_line_error(again, 2, "already Cancelled")

    retried = run_json("jobs", "retry", "--app", APP, job_id, cwd=app_dir)
    assert retried["status"] == "HeldOnMaster"
    moved = run_json(
        "jobs", "reschedule", "--app", APP, job_id, "--at", "2031-05-05T10:00:00+02:00", cwd=app_dir
    )
    assert moved["scheduled_at"] == "2031-05-05T08:00:00+00:00"
    held = run_json("jobs", "count", "--app", APP, "--status", "heldonmaster", cwd=app_dir)
    assert held == {"count": 1}
    none_failed = run_json("jobs", "list", "--app", APP, "--status", "Failed", cwd=app_dir)
    assert none_failed == {"total": 0, "offset": 0, "limit": 50, "jobs": []}


def test_human_output_is_a_table(app_dir: Path) -> None:
    job_id = run_json("schedule", "--app", APP, "greet", "--data", '{"name": "B"}', cwd=app_dir)["id"]
    listed = run_cli("jobs", "list", "--app", APP, cwd=app_dir)
    assert listed.returncode == 0, listed.stderr
    assert "1-1 of 1 job(s)" in listed.stdout
    assert job_id in listed.stdout
    shown = run_cli("jobs", "show", "--app", APP, job_id, cwd=app_dir)
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"handler\s+greet", shown.stdout)


def test_cancel_of_unknown_job_exits_2(app_dir: Path) -> None:
    run_json("db", "upgrade", "--app", APP, cwd=app_dir)
    result = run_cli("jobs", "cancel", "--app", APP, "no-such-job", cwd=app_dir)
    assert_one_line_error(result, 2, "no job with id 'no-such-job'")


def test_bad_scheduling_input_exits_2_and_writes_nothing(app_dir: Path) -> None:
    unknown = run_cli("schedule", "--app", APP, "nope", cwd=app_dir)
    assert_one_line_error(unknown, 2, "unknown handler 'nope'; registered: fail, greet")
    mismatch = run_cli("schedule", "--app", APP, "greet", "--data", '{"nom": 1}', cwd=app_dir)
    assert_one_line_error(mismatch, 2, "does not match the parameters of handler 'greet'")
    naive = run_cli("schedule", "--app", APP, "greet", "--at", "2030-01-01T09:00:00", cwd=app_dir)
    assert naive.returncode == 2
    assert "has no UTC offset" in naive.stderr
    missing = run_cli("schedule", "--app", "nomodule:jm", "greet", cwd=app_dir)
    assert_one_line_error(missing, 2, "cannot import module 'nomodule'")
    no_attr = run_cli("jobs", "list", "--app", "app:other", cwd=app_dir)
    assert_one_line_error(no_attr, 2, "module 'app' has no attribute 'other'")
    assert run_json("jobs", "count", "--app", APP, cwd=app_dir) == {"count": 0}


def _wait_for(app_dir: Path, job_id: str, status: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = run_json("jobs", "show", "--app", APP, job_id, cwd=app_dir)
        if job["status"] == status or time.monotonic() > deadline:
            return job
        time.sleep(0.2)


@pytest.mark.e2e
def test_worker_runs_jobs_and_status_reports_it(app_dir: Path) -> None:
    worker = subprocess.Popen(
        [sys.executable, "-m", "jobmaster.cli.main", "worker", "--app", APP, "--worker", "w1"],
        cwd=app_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ok = run_json("schedule", "--app", APP, "greet", "--data", '{"name": "C"}', cwd=app_dir)
        bad = run_json("schedule", "--app", APP, "fail", cwd=app_dir)
        done = _wait_for(app_dir, ok["id"], "Succeeded")
        assert done["status"] == "Succeeded"
        assert [a["outcome"] for a in done["attempt_history"]] == ["succeeded"]
        assert done["result"] == {"greeted": "C"}
        shown = run_cli("jobs", "show", "--app", APP, ok["id"], cwd=app_dir)
        assert re.search(r'^result\s+\{"greeted": "C"\}\s*$', shown.stdout, re.MULTILINE), shown.stdout
        failed = _wait_for(app_dir, bad["id"], "Failed")
        assert failed["status"] == "Failed"
        assert failed["last_error"]["type"] == "ValueError"
        assert "this handler always fails" in failed["last_error"]["traceback"]

        report = run_json("status", "--app", APP, cwd=app_dir)
        assert [(w["name"], w["status"], w["alive"]) for w in report["workers"]] == [("w1", "Running", True)]
        assert report["workers"][0]["pid"] == worker.pid
        assert sorted(b["priority"] for b in report["buckets"]) == sorted(
            ["VeryLow", "Low", "Medium", "High", "Critical"]
        )
        assert {(c["status"], c["count"]) for c in report["counts"]} == {
            ("Succeeded", 1),
            ("Failed", 1),
        }
    finally:
        worker.send_signal(signal.SIGTERM)
        _, logs = worker.communicate(timeout=30)
    assert worker.returncode == 0, logs
    lines = logs.strip().splitlines()
    assert lines, "the worker logged nothing"
    for line in lines:
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO|WARNING|ERROR)\s+\S+: ", line)
    assert "starting worker(s) w1 on the uvloop event loop" in lines[0]
    assert "all workers stopped" in lines[-1]
    after = run_json("status", "--app", APP, "--all", cwd=app_dir)
    assert [w["status"] for w in after["workers"]] == ["Stopped"]


def test_list_pages_with_after_and_prints_the_next_cursor(app_dir: Path) -> None:
    schedule = (
        "from app import jm; jm.sync.schedule_many('greet', [{'name': 'n'}] * 5, delay=3600); jm.sync.close()"
    )
    subprocess.run([sys.executable, "-c", schedule], cwd=app_dir, check=True, timeout=60)
    everything = [j["id"] for j in run_json("jobs", "list", "--app", APP, cwd=app_dir)["jobs"]]
    assert len(everything) == 5

    seen: list[str] = []
    first = run_json("jobs", "list", "--app", APP, "--limit", "2", cwd=app_dir)
    seen += [j["id"] for j in first["jobs"]]
    second = run_json(
        "jobs", "list", "--app", APP, "--limit", "2", "--after", first["next_cursor"], cwd=app_dir
    )
    seen += [j["id"] for j in second["jobs"]]
    last = run_json(
        "jobs", "list", "--app", APP, "--limit", "2", "--after", second["next_cursor"], cwd=app_dir
    )
    seen += [j["id"] for j in last["jobs"]]
    assert seen == everything
    assert "next_cursor" not in last and last["total"] == 5

    table = run_cli(
        "jobs", "list", "--app", APP, "--limit", "2", "--after", first["next_cursor"], cwd=app_dir
    )
    assert table.returncode == 0, table.stderr
    assert "2 job(s) after the cursor, of 5" in table.stdout
    assert f"next page: --after {second['next_cursor']}" in table.stdout
    bad = run_cli("jobs", "list", "--app", APP, "--after", "nope!", cwd=app_dir)
    assert_one_line_error(bad, 2, "malformed cursor 'nope!'")
