"""The examples are runnable: blueprint A and the publisher/consumer split with real processes."""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
from e2e_support import wait_registered

from helpers import drop_agent
from jobmaster import JobMaster, Priority, WorkerMode

ROOT = Path(__file__).resolve().parents[2]
#: The NATS agent of the examples that have one; its stream is the test cluster's own.
NATS_AGENT = "Nats-1"


def _env(pg_urls: dict[str, str], cluster: str) -> dict[str, str]:
    return {
        **os.environ,
        "EXAMPLES_MASTER": pg_urls["master"],
        "EXAMPLES_AGENT": pg_urls["agent"],
        "EXAMPLES_NATS": "nats://127.0.0.1:4222",
        "EXAMPLES_CLUSTER": cluster,
        "PYTHONPATH": str(ROOT),
    }


def _worker(app: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "jobmaster.cli.main", "worker", "--app", app],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


async def _succeeded(master: str, cluster: str) -> int:
    conn = await asyncpg.connect(master)
    try:
        return int(
            await conn.fetchval("SELECT count(*) FROM jm_jobs WHERE cluster_id = $1 AND status = 5", cluster)
        )
    finally:
        await conn.close()


async def _run_example(
    pg_urls: dict[str, str], tmp_path: Path, apps: list[str], module: str, count: int
) -> None:
    cluster = f"example-{uuid.uuid4().hex[:10]}"
    env = _env(pg_urls, cluster)
    procs = [_worker(app, env, tmp_path / f"{i}.log") for i, app in enumerate(apps)]
    try:
        await wait_registered(pg_urls["master"], cluster, len(procs))  # workers up, schema migrated
        before = await _succeeded(pg_urls["master"], cluster)
        subprocess.run([sys.executable, "-m", module, str(count)], cwd=ROOT, env=env, check=True, timeout=120)
        deadline = time.monotonic() + 60
        while await _succeeded(pg_urls["master"], cluster) < before + count:
            assert time.monotonic() < deadline, "example jobs did not finish"
            await asyncio.sleep(0.2)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(30) for proc in procs]
        await drop_agent(env["EXAMPLES_NATS"], cluster, NATS_AGENT)
    assert codes == [0] * len(procs)


async def test_blueprint_a_runs(pg_urls, tmp_path: Path) -> None:
    await _run_example(
        pg_urls,
        tmp_path,
        ["examples.blueprint_a_ingestion:coordinator", "examples.blueprint_a_ingestion:executor"],
        "examples.blueprint_a_ingestion",
        2000,
    )


async def test_publisher_consumer_split_runs(pg_urls, tmp_path: Path) -> None:
    await _run_example(
        pg_urls,
        tmp_path,
        ["examples.publisher_consumer:consumer"],
        "examples.publisher_consumer",
        200,
    )


async def test_mixed_cluster_runs(pg_urls, tmp_path: Path) -> None:
    await _run_example(pg_urls, tmp_path, ["examples.mixed_cluster:jm"], "examples.mixed_cluster", 1000 + 10)


def test_blueprints_configure_what_the_guide_says() -> None:
    b = importlib.import_module("examples.blueprint_b_heavy_compute").jm
    c = importlib.import_module("examples.blueprint_c_single_node").jm
    assert isinstance(b, JobMaster) and isinstance(c, JobMaster)
    [heavy] = b.config.workers
    assert (heavy.lane, heavy.bucket_buffer_size, heavy.parallelism_factor) == ("Heavy-Compute", 5, 1.0)
    assert [heavy.bucket_count(p) for p in Priority] == [0, 0, 1, 0, 0]
    [standard] = c.config.workers
    assert standard.mode is WorkerMode.full
    assert (standard.transfer_batch_size, standard.bucket_buffer_size) == (500, 100)
    assert standard.bucket_count(Priority.Medium) == 3 and standard.bucket_count(Priority.High) == 2
