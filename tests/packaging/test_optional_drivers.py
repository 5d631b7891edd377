"""The backend drivers and the web frameworks are optional: SQLite runs without them, and a URL or an
integration that needs one says which extra installs it. Each test runs a fresh interpreter, since
this one has every driver loaded."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

DRIVERS = ("asyncpg", "asyncmy", "nats")
#: The frameworks of jobmaster.contrib (the `web` and `flask` extras).
FRAMEWORKS = ("starlette", "fastapi", "uvicorn", "flask")

#: Makes the drivers and frameworks impossible to import, as in an environment installed without
#: the extras.
BLOCK_DRIVERS = f"""
import sys

BLOCKED = {DRIVERS + FRAMEWORKS!r}


class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, NotInstalled())
"""


def _run(source: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_sqlite_cluster_runs_a_job_without_any_driver(tmp_path: Path) -> None:
    result = _run(
        BLOCK_DRIVERS
        + """
import asyncio

from jobmaster import JobMaster

jm = JobMaster("no-drivers", "sqlite:///jobs.db", workers=[{"name": "w1"}], heartbeat_interval=0.2)
ran = asyncio.Event()


@jm.handler(name="mark")
async def mark(value: int) -> None:
    print("ran", value)
    ran.set()


async def main() -> None:
    async with jm.running():
        job_id = await jm.schedule(mark, {"value": 7})
        await asyncio.wait_for(ran.wait(), 30)
        for _ in range(500):
            job = await jm.get_job(job_id)
            if job.status.name == "Succeeded":
                break
            await asyncio.sleep(0.02)
        print("status", job.status.name)
    print("loaded", sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED))


asyncio.run(main())
""",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["ran 7", "status Succeeded", "loaded []"]


def test_a_postgresql_master_without_its_driver_names_the_extra(tmp_path: Path) -> None:
    result = _run(
        BLOCK_DRIVERS
        + """
import asyncio

from jobmaster import ConfigError, JobMaster

jm = JobMaster("no-drivers", "postgresql://postgres@127.0.0.1:5432/postgres")


async def main() -> None:
    try:
        await jm.open()
    except ConfigError as exc:
        print(exc)
    else:
        print("opened")


asyncio.run(main())
""",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        "postgresql:// needs the 'postgres' extra: pip install 'jobmaster[postgres]'"
    ), result.stdout


def test_a_nats_agent_without_its_driver_names_the_extra(tmp_path: Path) -> None:
    result = _run(
        BLOCK_DRIVERS
        + """
from jobmaster import ConfigError
from jobmaster.backends import make_agent

try:
    make_agent("nats://127.0.0.1:4222", "no-drivers", "events")
except ConfigError as exc:
    print(exc)
""",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("nats:// needs the 'nats' extra: pip install 'jobmaster[nats]'")


def test_an_integration_without_its_framework_names_the_extra(tmp_path: Path) -> None:
    result = _run(
        BLOCK_DRIVERS
        + """
for module in ("jobmaster.contrib.starlette", "jobmaster.contrib.flask"):
    try:
        __import__(module)
    except ModuleNotFoundError as exc:
        print(exc)
""",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "jobmaster.contrib.starlette needs the 'web' extra (starlette is not installed):"
        " pip install 'jobmaster[web]'",
        "jobmaster.contrib.flask needs the 'flask' extra (flask is not installed):"
        " pip install 'jobmaster[flask]'",
    ]


def test_validating_a_config_of_every_backend_imports_no_driver(tmp_path: Path) -> None:
    result = _run(
        f"""
import sys

import jobmaster
from jobmaster import JobMaster

jm = JobMaster(
    "imports",
    "postgresql://postgres@127.0.0.1/jobs",
    agents={{"pg": "postgresql://postgres@127.0.0.1/agent", "my": "mysql://root@127.0.0.1/agent",
            "events": "nats://127.0.0.1:4222"}},
)
assert jm.config.master.startswith("postgresql://")
print(sorted(m for m in sys.modules if m.split(".")[0] in {DRIVERS!r}))
""",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
