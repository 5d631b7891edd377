"""`jobmaster bench-agent`: every job pushed is read and acknowledged once, on every agent kind."""

from __future__ import annotations

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
    assert report["machine_cpu_us_per_job"] >= report["push_cpu_us_per_job"]
    assert report["pushed_per_s"] >= report["transferred_per_s"]


def test_bench_agent_names_a_bad_url() -> None:
    assert_one_line_error(
        run_cli("bench-agent", "--agent", "redis://127.0.0.1:6379", "--jobs", "10"),
        2,
        "no agent backend for URL scheme 'redis'",
    )
