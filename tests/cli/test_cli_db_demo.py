"""`db upgrade` / `db version` on a fresh SQLite file, and the self-contained `demo`."""

from __future__ import annotations

from pathlib import Path

from cli_helpers import assert_one_line_error, run_cli, run_json


def test_db_upgrade_creates_the_schema_and_version_reads_it(tmp_path: Path) -> None:
    db = tmp_path / "fresh.db"
    source = ("--master", f"sqlite:///{db}", "--cluster", "c1")
    missing = run_cli("db", "version", *source)
    assert_one_line_error(missing, 2, "does not exist")
    assert not db.exists()

    upgraded = run_json("db", "upgrade", *source)
    assert db.exists()
    assert upgraded["schema_version"] >= 1
    assert upgraded["master"] == f"sqlite:///{db}"
    assert run_json("db", "version", *source)["schema_version"] == upgraded["schema_version"]
    again = run_cli("db", "upgrade", *source)
    assert again.returncode == 0, again.stderr
    assert f"schema version {upgraded['schema_version']}" in again.stdout


def test_demo_ends_with_every_job_final() -> None:
    summary = run_json("demo", "--jobs", "300", timeout=120)
    assert summary["jobs"] == 300
    assert summary["final"] == 300
    counts = summary["counts"]
    assert set(counts) == {"Succeeded", "Failed"}
    assert sum(counts["Failed"].values()) == 5  # the always-failing handler's jobs
    assert sum(counts["Succeeded"].values()) == 295
    assert set(counts["Succeeded"]) == {"VeryLow", "Low", "Medium", "High", "Critical"}
    assert summary["elapsed_s"] > 0
    assert summary["jobs_per_s"] > 0


def test_demo_human_summary() -> None:
    result = run_cli("demo", "--jobs", "100", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "100/100 jobs final" in result.stdout
    assert "Succeeded" in result.stdout
