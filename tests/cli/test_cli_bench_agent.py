"""`jobmaster bench-agent`: every job pushed is read and acknowledged once, on every agent kind."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest
from cli_helpers import assert_one_line_error, run_cli, run_json


@pytest.mark.e2e
def test_bench_agent_carries_every_job_and_leaves_nothing(agent_url: str) -> None:
    """The command fails if a bucket still holds a message at the end: a job read twice would have
    counted for one never read."""
    report = run_json(
        "bench-agent",
        "--agent",
        agent_url,
        "--jobs",
        "3000",
        "--buckets",
        "3",
        "--read-batch",
        "50",
        timeout=120,
    )
    assert (report["jobs"], report["buckets"], report["read_batch"]) == (3000, 3, 50)
    for key in ("pushed_per_s", "transferred_per_s", "push_cpu_us_per_job", "read_cpu_us_per_job"):
        assert isinstance(report[key], float) and report[key] > 0, key
    # to within the clock ticks the machine's reading can stray by (a percentage fails on fast hosts)
    assert (
        report["machine_cpu_us_per_job"] >= report["push_cpu_us_per_job"] - report["cpu_rounding_us_per_job"]
    )
    assert report["pushed_per_s"] >= report["transferred_per_s"]


def test_bench_agent_names_a_bad_url() -> None:
    assert_one_line_error(
        run_cli("bench-agent", "--agent", "redis://127.0.0.1:6379", "--jobs", "10"),
        2,
        "no agent backend for URL scheme 'redis'",
    )


@pytest.mark.e2e
def test_the_reader_process_shows_no_password(pg_urls: dict[str, str]) -> None:
    """Any user of the machine can read a process's command line (`ps`); the settings, with the
    URL's password, go in the reader's environment instead."""
    url = pg_urls["agent"].replace("postgres@", "postgres:not-for-ps@", 1)
    assert "not-for-ps" in url
    command = [sys.executable, "-m", "jobmaster.cli.main", "bench-agent", "--agent", url, "--jobs", "20000"]
    bench = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    readers: list[str] = []
    deadline = time.monotonic() + 300
    while bench.poll() is None:
        assert time.monotonic() < deadline, "the bench never ended"
        for process in psutil.process_iter(["cmdline"]):
            cmdline = " ".join(process.info["cmdline"] or [])
            if "jobmaster.bench.agent" in cmdline:
                readers.append(cmdline)
        time.sleep(0.02)
    assert bench.returncode == 0, bench.stderr.read() if bench.stderr else ""
    assert readers, "the reader process was never seen"
    assert not [c for c in readers if "not-for-ps" in c], readers
