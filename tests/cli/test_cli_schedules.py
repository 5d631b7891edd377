"""`jobmaster schedules list|show|pause|resume|trigger|remove` on a user's app module (SQLite)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cli_helpers import assert_one_line_error, run_cli, run_json, write_app

APP = "app:jm"

ADD = """
from app import jm
jm.sync.add_schedule("greet", every=3600, name="hourly", data={"name": "Ada"}, overlap="skip")
jm.sync.add_schedule("greet", "0 9 * * MON-FRI", tz="Europe/Riga", name="daily", data={"name": "Bo"})
jm.sync.close()
"""


def test_list_show_pause_resume_trigger_remove(tmp_path: Path) -> None:
    write_app(tmp_path)
    subprocess.run([sys.executable, "-c", ADD], cwd=tmp_path, check=True, timeout=60)

    listed = run_json("schedules", "list", "--app", APP, cwd=tmp_path)["schedules"]
    assert [s["name"] for s in listed] == ["daily", "hourly"]
    daily = listed[0]
    assert daily["state"] == "active" and daily["source"] == "dynamic" and daily["tz"] == "Europe/Riga"
    assert daily["expression"] == "0 9 * * MON-FRI" and daily["next_run"].endswith("+00:00")
    assert (daily["last_run"], daily["last_outcome"], daily["skipped"], daily["missed"]) == (None, None, 0, 0)

    table = run_cli(
        "schedules", "list", "--master", "sqlite:///jobs.db", "--cluster", "cli-test", cwd=tmp_path
    )
    assert table.returncode == 0, table.stderr
    assert "hourly" in table.stdout and "daily" in table.stdout and "2 schedule(s)" in table.stdout

    shown = run_json("schedules", "show", "--app", APP, "hourly", cwd=tmp_path)
    assert shown["overlap"] == "skip" and shown["data"] == {"name": "Ada"} and "hour" in shown["explain"]

    paused = run_json("schedules", "pause", "--app", APP, "hourly", cwd=tmp_path)
    assert paused["state"] == "paused" and paused["next_run"] is None
    resumed = run_json("schedules", "resume", "--app", APP, "hourly", cwd=tmp_path)
    assert resumed["state"] == "active" and resumed["next_run"] is not None

    job_id = run_json("schedules", "trigger", "--app", APP, "hourly", cwd=tmp_path)["id"]
    job = run_json("jobs", "show", "--app", APP, job_id, cwd=tmp_path)
    assert job["handler"] == "greet" and job["data"] == {"name": "Ada"}
    assert job["metadata"]["schedule"] == "hourly" and job["metadata"]["triggered"] is True
    after = run_json("schedules", "show", "--app", APP, "hourly", cwd=tmp_path)
    assert (after["last_job_id"], after["last_outcome"]) == (job_id, "HeldOnMaster")

    assert run_json("schedules", "remove", "--app", APP, "hourly", cwd=tmp_path) == {"removed": "hourly"}
    assert [s["name"] for s in run_json("schedules", "list", "--app", APP, cwd=tmp_path)["schedules"]] == [
        "daily"
    ]
    assert run_json("jobs", "show", "--app", APP, job_id, cwd=tmp_path)["id"] == job_id  # its jobs stay

    for command in ("show", "pause", "resume", "trigger", "remove"):
        missing = run_cli("schedules", command, "--app", APP, "hourly", cwd=tmp_path)
        assert_one_line_error(missing, 2, "no schedule named 'hourly'")


def test_bench_schedules_reports_lateness_and_idle_cost(pg_urls: dict[str, str]) -> None:
    report = run_json(
        "bench-schedules",
        "--master",
        pg_urls["master"],
        "--schedules",
        "50",
        "--expression",
        "every 1 second",
        "--rounds",
        "2",
        "--idle",
        "2s",
        timeout=180,
    )
    assert (report["schedules"], report["rounds"]) == (50, 2)
    for key in ("round_1", "round_2"):
        measured = report[key]
        assert measured["jobs"] == 50
        assert 0 <= measured["first_s"] <= measured["p50_s"] <= measured["p99_s"] <= measured["last_s"]
        assert 0 <= measured["within_1s"] <= 50
    assert report["round_1"]["occurrence"] < report["round_2"]["occurrence"]
    for key in ("idle_without_scheduler", "idle_with_scheduler"):
        assert report[key]["commits_per_s"] >= 0 and report[key]["schedule_rows_written_per_min"] >= 0
