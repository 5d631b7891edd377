"""jobmaster.contrib.starlette with a real uvicorn process and an HTTP client: a FastAPI view schedules
a job that a real worker runs, on SQLite and PostgreSQL, with a separate `jobmaster worker` and with
the workers embedded in the uvicorn process; the embedded stop is bounded."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request

from helpers import wait_for
from jobmaster import ConfigError, JobMaster
from jobmaster.contrib.starlette import get_jobmaster, lifespan
from serving import Served, uvicorn, worker

HERE = Path(__file__).parent
#: The line the lifespan logs when it has started a process's embedded workers.
STARTED = re.compile(r"embedded jobmaster workers started in process (\d+)")
#: uvicorn stops gracefully on SIGTERM, then raises the signal again so its exit status tells why it
#: ended (the tests check its log for the lifespan's shutdown too).
UVICORN_STOPPED = -signal.SIGTERM


@pytest.fixture
def web_env(master_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "JMTEST_WEB_MASTER": master_url,
        "JMTEST_WEB_CLUSTER": f"web-{uuid.uuid4().hex[:10]}",
        "JMTEST_WEB_RUNS": str(tmp_path / "runs.txt"),
    }


def _runs(env: dict[str, str]) -> dict[str, int]:
    path = Path(env["JMTEST_WEB_RUNS"])
    lines = path.read_text().split("\n") if path.exists() else []
    return {note: int(pid) for note, pid in (line.split() for line in lines if line)}


def _schedule_and_wait(server: Served, note: str) -> str:
    """POST to the view that schedules, then follow the job through the view that reads it."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        job_id = client.post("/record", params={"note": note}).raise_for_status().json()["job_id"]

        def succeeded() -> bool:
            status = client.get(f"/jobs/{job_id}").raise_for_status().json()["status"]
            assert status not in ("Failed", "Cancelled"), status
            return bool(status == "Succeeded")

        wait_for(succeeded, f"job {job_id} succeeded")
    return job_id


def test_a_view_schedules_a_job_that_a_separate_worker_runs(web_env: dict[str, str], tmp_path: Path) -> None:
    consumer = worker("web_app:jm", web_env, tmp_path / "worker.log", HERE)
    server = uvicorn("web_app:app", web_env, tmp_path / "uvicorn.log", HERE)
    try:
        _schedule_and_wait(server, "separate")
        ran_in = _runs(web_env)["separate"]
        assert ran_in == consumer.proc.pid and ran_in != server.proc.pid
    finally:
        codes = (server.stop(), consumer.stop())
    assert codes == (UVICORN_STOPPED, 0), server.text() + consumer.text()
    assert "Application shutdown complete" in server.text()


def test_embedded_workers_run_in_the_uvicorn_process(web_env: dict[str, str], tmp_path: Path) -> None:
    server = uvicorn("web_app:app", {**web_env, "JMTEST_WEB_EMBED": "1"}, tmp_path / "uvicorn.log", HERE)
    try:
        _schedule_and_wait(server, "embedded")
        assert _runs(web_env)["embedded"] == server.proc.pid
        assert f"embedded jobmaster workers started in process {server.proc.pid}" in server.text()
    finally:
        code = server.stop()
    assert code == UVICORN_STOPPED, server.text()
    assert "Application shutdown complete" in server.text()


def test_uvicorn_workers_n_runs_n_sets_of_embedded_workers(tmp_path: Path) -> None:
    """`uvicorn --workers 2`, as docs/web.md warns: each server process runs the lifespan, so the
    cluster gets a live worker in each process where the app configures one."""
    master = f"sqlite:///{tmp_path}/web.db"
    env = {
        **os.environ,
        "JMTEST_WEB_MASTER": master,
        "JMTEST_WEB_CLUSTER": "web-n",
        "JMTEST_WEB_RUNS": str(tmp_path / "runs.txt"),
    }
    log = tmp_path / "uvicorn.log"
    server = uvicorn("web_app:app", {**env, "JMTEST_WEB_EMBED": "1"}, log, HERE, "--workers", "2")

    def started() -> set[int]:
        return {int(pid) for pid in STARTED.findall(server.text())}

    async def live_worker_pids() -> set[int]:
        async with JobMaster("web-n", master) as observer:
            return {w.pid for w in await observer.inspect.workers()}

    try:
        wait_for(lambda: len(started()) == 2, "both server processes' workers started")
        assert asyncio.run(live_worker_pids()) == started()
    finally:
        server.stop()


def test_reload_stops_the_embedded_workers_and_starts_new_ones(tmp_path: Path) -> None:
    """`uvicorn --reload`, as docs/web.md says: each reload stops the process's workers gracefully
    and starts a new set in the new process, which runs the next jobs."""
    shutil.copy(HERE / "web_app.py", tmp_path / "web_app.py")
    env = {
        **os.environ,
        "JMTEST_WEB_MASTER": f"sqlite:///{tmp_path}/web.db",
        "JMTEST_WEB_CLUSTER": "web-reload",
        "JMTEST_WEB_RUNS": str(tmp_path / "runs.txt"),
        "JMTEST_WEB_EMBED": "1",
    }
    options = ("--reload", "--reload-dir", str(tmp_path))
    server = uvicorn("web_app:app", env, tmp_path / "uvicorn.log", tmp_path, *options)

    def started() -> list[int]:
        return [int(pid) for pid in STARTED.findall(server.text())]

    try:
        wait_for(lambda: len(started()) == 1, "the first process's workers started")
        _schedule_and_wait(server, "before")
        with (tmp_path / "web_app.py").open("a") as source:
            source.write("# a code change\n")
        wait_for(lambda: len(started()) == 2, "the reloaded process's workers started")
        _schedule_and_wait(server, "after")
    finally:
        server.stop()
    first, second = started()
    assert first != second and _runs(env) == {"before": first, "after": second}
    assert server.text().count("Application shutdown complete") == 2, server.text()


def test_the_embedded_stop_is_bounded(tmp_path: Path) -> None:
    """A job that never ends and a grace of 10 minutes: shutdown_timeout=2 still ends the server."""
    env = {
        **os.environ,
        "JMTEST_WEB_MASTER": f"sqlite:///{tmp_path}/web.db",
        "JMTEST_WEB_CLUSTER": "web-stop",
        "JMTEST_WEB_RUNS": str(tmp_path / "runs.txt"),
        "JMTEST_WEB_EMBED": "1",
        "JMTEST_WEB_SHUTDOWN_GRACE": "600",
        "JMTEST_WEB_SHUTDOWN_TIMEOUT": "2",
    }
    server = uvicorn("web_app:app", env, tmp_path / "uvicorn.log", HERE)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            client.post("/hang").raise_for_status()
        wait_for(lambda: "hang-started" in _runs(env), "the hanging job started")
    finally:
        code = server.stop(timeout=120)  # far below the 600 s grace the workers were given
    assert code == UVICORN_STOPPED, server.text()
    assert "embedded workers did not stop within 2s" in server.text()


def test_a_master_out_of_reach_fails_the_startup_saying_so(tmp_path: Path) -> None:
    """A publisher lifespan fails at once (start_timeout=0): uvicorn exits instead of serving views
    that cannot schedule, and its log names the master."""
    env = {
        **os.environ,
        "JMTEST_WEB_MASTER": "postgresql://nobody@127.0.0.1:1/jobs",
        "JMTEST_WEB_CLUSTER": "web-unreachable",
        "JMTEST_WEB_RUNS": str(tmp_path / "runs.txt"),
    }
    command = [sys.executable, "-m", "uvicorn", "web_app:app", "--port", "0"]
    server = Served(command, env, tmp_path / "uvicorn.log", HERE)
    code = server.proc.wait(120)
    assert code != 0 and "Application startup failed" in server.text(), server.text()
    assert "cannot connect to postgresql://nobody@127.0.0.1:1/jobs" in server.text(), server.text()


def test_bad_inputs_are_clear_errors(tmp_path: Path) -> None:
    publisher = JobMaster("web-bad", f"sqlite:///{tmp_path}/bad.db")
    with pytest.raises(ConfigError, match="needs a JobMaster object, got str"):
        lifespan("app:jm")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"lifespan\(workers=True\) needs workers to run"):
        lifespan(publisher, workers=True)
    with pytest.raises(ConfigError, match="shutdown_timeout"):
        lifespan(publisher, shutdown_timeout="soon")

    bare = Starlette()
    with pytest.raises(ConfigError, match="this app has no JobMaster"):
        get_jobmaster(Request({"type": "http", "app": bare}))
    # The lifespan state a server hands each request, or the app's state.
    with_state = {"type": "http", "app": bare, "state": {"jobmaster": publisher}}
    assert get_jobmaster(Request(with_state)) is publisher
    bare.state.jobmaster = publisher
    assert get_jobmaster(Request({"type": "http", "app": bare})) is publisher
