"""`jobmaster bench`: one JSON document with every measurement, and no worker or stream left."""

from __future__ import annotations

import nats
import nats.js.errors
import psutil
import pytest
from cli_helpers import run_json

from helpers import NATS_URL
from jobmaster.agents.nats import stream_name
from jobmaster.bench.cpu_meter import ROUNDING_TICKS, TICK_S
from jobmaster.bench.worker import BENCH_AGENT

REQUIRED = (
    "scheduled_per_s",
    "completed_per_s",
    "single_scheduled_per_s",
    "p50_ms",
    "p99_ms",
    "max_ms",
    "peak_rss_mb",
    "rss_with_backlog_mb",
)

#: The bulk phase alone: the tests that look at it skip the other phases' time.
BULK_ONLY = ("--mode", "bulk", "--latency-seconds", "0", "--backlog-jobs", "0")


def _bench_workers(cluster_id: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if "jobmaster.bench.worker" in cmdline and cluster_id in cmdline:
            found.append(process)
    return found


@pytest.mark.e2e
def test_bench_reports_every_measurement() -> None:
    report = run_json("bench", "--jobs", "2000", "--latency-seconds", "1", timeout=120)
    assert report["backend"] == "sqlite"
    assert report["event_loop"] == report["worker_event_loop"] == "uvloop"
    assert report["jobs"] == 2000
    for key in REQUIRED:
        assert isinstance(report[key], float), key
        assert report[key] > 0, key
    assert report["p50_ms"] <= report["p99_ms"] <= report["max_ms"]
    assert report["single_jobs"] == 1000
    assert report["latency_jobs"] == 500
    assert report["backlog_jobs"] == 100_000
    assert report["peak_rss_mb"] >= report["rss_with_backlog_mb"]
    assert report["worker"]["parallelism_factor"] == 25.0
    assert report["worker"]["buckets"] == {"Medium": 2}
    assert report["worker"]["medium_slots_per_bucket"] == 100
    assert _bench_workers(report["cluster_id"]) == []


@pytest.mark.e2e
def test_bench_says_where_the_bulk_phase_cpu_went(bench_jobs: int) -> None:
    """Sized by `bench_jobs`: a few hundred jobs (a phase of a few clock ticks on a fast host), a
    few thousand, and whatever `--bench-jobs` adds (a few hundred thousand, run by hand)."""
    report = run_json(
        "--event-loop",
        "asyncio",
        "bench",
        "--jobs",
        str(bench_jobs),
        *BULK_ONLY,
        timeout=120 + bench_jobs / 500,
    )
    assert report["event_loop"] == report["worker_event_loop"] == "asyncio"
    machine = report["bulk_machine_cpu_us_per_job"]
    worker, publisher = report["bulk_worker_cpu_us_per_job"], report["bulk_publisher_cpu_us_per_job"]
    assert worker > 0 and publisher > 0
    # The two processes are part of the machine, to within the clock ticks the report says its
    # readings can stray by: a margin in ticks holds for a phase of any length, where a percentage
    # failed on a fast host (a 3,000-job phase of a few dozen ticks).
    rounding = report["bulk_cpu_rounding_us_per_job"]
    assert rounding == pytest.approx(ROUNDING_TICKS * TICK_S * 1e6 / bench_jobs, abs=0.05)
    assert machine >= worker + publisher - rounding
    assert report["bulk_other_cpu_us_per_job"] == pytest.approx(machine - worker - publisher, abs=0.2)
    assert report["bulk_cpu_bound_per_s"] == pytest.approx(report["cpu_count"] * 1e6 / machine, rel=0.01)


@pytest.mark.e2e
async def test_bench_on_a_nats_agent_removes_its_stream(pg_urls: dict[str, str]) -> None:
    """Every run is a cluster of its own; its NATS stream must not pile up on the server."""
    report = run_json(
        "bench",
        "--master",
        pg_urls["master"],
        "--agent",
        NATS_URL,
        "--topology",
        "split",
        "--jobs",
        "500",
        *BULK_ONLY,
        timeout=120,
    )
    assert report["completed_per_s"] > 0
    nc = await nats.connect(NATS_URL)
    try:
        with pytest.raises(nats.js.errors.NotFoundError):
            await nc.jetstream().stream_info(stream_name(report["cluster_id"], BENCH_AGENT))
    finally:
        await nc.close()
