"""Running the real `jobmaster` command in a subprocess, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

#: A user's application module: one cluster on a SQLite file next to it, one worker, two handlers.
APP_SOURCE = """
import asyncio

from jobmaster import JobMaster

jm = JobMaster(
    "cli-test",
    "sqlite:///jobs.db",
    workers=[{"name": "w1"}],
    heartbeat_interval=0.2,
    worker_timeout=2,
    job_lease=5,
)


@jm.handler(name="greet")
async def greet(name: str) -> dict[str, str]:
    await asyncio.sleep(0.01)
    return {"greeted": name}


@jm.handler(name="fail", max_retries=0)
def fail() -> None:
    raise ValueError("this handler always fails")
"""


def write_app(directory: Path) -> Path:
    path = directory / "app.py"
    path.write_text(APP_SOURCE, encoding="utf-8")
    return path


def run_cli(
    *args: str, cwd: Path | None = None, timeout: float = 60.0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`jobmaster ARGS` in a subprocess; `env` adds to this process's environment."""
    return subprocess.run(
        [sys.executable, "-m", "jobmaster.cli.main", *args],
        cwd=cwd,
        env=None if env is None else {**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_json(*args: str, cwd: Path | None = None, timeout: float = 60.0) -> Any:
    """Run a command with --json; it must succeed and print exactly one JSON document."""
    result = run_cli(*args, "--json", cwd=cwd, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert text in lines[0]
