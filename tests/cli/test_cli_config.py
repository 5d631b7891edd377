"""`jobmaster config show`, and a misspelt variable stopping a real command at start."""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import run_cli, run_json

APP = """
from jobmaster import JobMaster

jm = JobMaster(config_file="cluster.toml", heartbeat_interval="2s", workers=[{"name": "w1"}])
"""


def test_config_show_says_where_each_value_came_from(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP, encoding="utf-8")
    (tmp_path / "cluster.toml").write_text(
        '[cluster]\ncluster_id = "shop"\njob_lease = "30s"\n'
        'master = "postgresql://jobs:hush@db.internal/jobs"\n',
        encoding="utf-8",
    )
    env = {"JOBMASTER_TRANSIENT_THRESHOLD": "5m"}
    done = run_cli("config", "show", "--app", "app:jm", "--json", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    settings = {s["name"]: s for s in json.loads(done.stdout)["settings"]}
    assert (settings["job_lease"]["value"], settings["job_lease"]["source"]) == (30.0, "file cluster.toml")
    assert settings["transient_threshold"]["source"] == "environment JOBMASTER_TRANSIENT_THRESHOLD"
    assert settings["transient_threshold"]["value"] == 300.0
    assert (settings["heartbeat_interval"]["value"], settings["heartbeat_interval"]["source"]) == (
        2.0,
        "keyword",
    )
    assert settings["idle_poll_interval"]["source"] == "default"
    assert settings["master"]["value"] == "postgresql://jobs:***@db.internal/jobs"
    assert "hush" not in done.stdout
    table = run_cli("config", "show", "--app", "app:jm", cwd=tmp_path, env=env)
    assert table.returncode == 0 and "environment JOBMASTER_TRANSIENT_THRESHOLD" in table.stdout


def test_config_show_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "cluster.toml").write_text(
        '[cluster]\ncluster_id = "c"\njob_lease = "40s"\n', encoding="utf-8"
    )
    report = run_json("config", "show", "--config", str(tmp_path / "cluster.toml"), cwd=tmp_path)
    job_lease = next(s for s in report["settings"] if s["name"] == "job_lease")
    assert job_lease == {"name": "job_lease", "value": 40.0, "source": f"file {tmp_path / 'cluster.toml'}"}


def test_a_misspelt_variable_stops_a_command_at_start(tmp_path: Path) -> None:
    env = {"JOBMASTER_TRANSIENT_THRESHHOLD": "5m"}
    done = run_cli(
        "status", "--master", f"sqlite:///{tmp_path}/jobs.db", "--cluster", "c", cwd=tmp_path, env=env
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: unknown environment variable JOBMASTER_TRANSIENT_THRESHHOLD; did you mean"
        " JOBMASTER_TRANSIENT_THRESHOLD? (docs/configuration.md lists every variable)"
    )
