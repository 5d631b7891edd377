"""The examples are runnable: blueprint A, the publisher/consumer split, the mixed cluster and the web
apps (FastAPI under uvicorn, Flask under its server) with real processes, as their docstrings say."""

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
import httpx
from e2e_support import wait_registered

from helpers import drop_agent, wait_for
from jobmaster import JobMaster, Priority, WorkerMode
from serving import Served, uvicorn, worker

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


def _signup_runs(server: Served) -> dict[str, str]:
    """What the web examples' docstrings do with curl: sign up, follow the job to its end, and
    return what its result view says."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        signup = client.post("/signup", params={"email": "ada@example.com"}).raise_for_status()
        job_id = signup.json()["job_id"]

        def succeeded() -> bool:
            return bool(client.get(f"/jobs/{job_id}").raise_for_status().json()["status"] == "Succeeded")

        wait_for(succeeded, f"the example's job {job_id} succeeded")
        result: dict[str, str] = client.get(f"/jobs/{job_id}/result").raise_for_status().json()["result"]
        return result


def test_fastapi_example_with_a_separate_worker(pg_urls, tmp_path: Path) -> None:
    env = _env(pg_urls, f"example-{uuid.uuid4().hex[:10]}")
    consumer = worker("examples.fastapi_app:jm", env, tmp_path / "worker.log", ROOT)
    server = uvicorn("examples.fastapi_app:app", env, tmp_path / "uvicorn.log", ROOT)
    try:
        assert _signup_runs(server) == {"sent_to": "ada@example.com"}
    finally:
        codes = (server.stop(), consumer.stop())
    # uvicorn raises the SIGTERM again once it has stopped gracefully (its exit status says why).
    assert codes == (-signal.SIGTERM, 0), server.text() + consumer.text()


def test_fastapi_example_with_embedded_workers(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EXAMPLES_EMBED": "1"}
    env["EXAMPLES_MASTER"] = f"sqlite:///{tmp_path}/examples.db"
    server = uvicorn("examples.fastapi_app:app", env, tmp_path / "uvicorn.log", ROOT)
    try:
        assert _signup_runs(server) == {"sent_to": "ada@example.com"}
    finally:
        code = server.stop()
    assert code == -signal.SIGTERM and "Application shutdown complete" in server.text(), server.text()


def test_flask_example_with_a_worker(pg_urls, tmp_path: Path) -> None:
    env = _env(pg_urls, f"example-{uuid.uuid4().hex[:10]}")
    consumer = worker("examples.flask_app:jm", env, tmp_path / "worker.log", ROOT)
    command = [sys.executable, "-m", "flask", "--app", "examples.flask_app", "run", "--port", "0"]
    server = Served(command, env, tmp_path / "flask.log", ROOT)
    try:
        server.wait_listening(r"Running on (http://127\.0\.0\.1:\d+)")
        assert _signup_runs(server) == {"sent_to": "ada@example.com", "sent_from": "welcome@example.com"}
    finally:
        server.stop()  # the development server has no SIGTERM handler of its own
        code = consumer.stop()
    assert code == 0, consumer.text()
    assert "welcome mail to ada@example.com from welcome@example.com" in consumer.text()
