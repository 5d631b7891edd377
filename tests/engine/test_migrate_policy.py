"""`migrate="auto" | "check" | "never"`: whether opening a cluster may run DDL, on a fresh database
of every master backend (the session's shared databases are migrated by other tests)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from engine_support import FRESH_DB

from jobmaster import ConfigError, JobMaster, JobStatus
from jobmaster.backends import latest_schema_version
from jobmaster.cli.main import cli
from jobmaster.db.mysql import connect_args


async def _tables(url: str) -> list[str]:
    """The jobmaster tables in the database: what DDL would have left behind."""
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if not Path(path).exists():
            return []
        with sqlite3.connect(path) as conn:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        return sorted(r[0] for r in rows if r[0].startswith("jm_"))
    if url.startswith("postgresql"):
        import asyncpg

        conn = await asyncpg.connect(url)
        try:
            rows = await conn.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        finally:
            await conn.close()
        return sorted(r["table_name"] for r in rows)
    import asyncmy

    conn = await asyncmy.connect(**connect_args(url))
    try:
        async with conn.cursor() as cursor:
            await cursor.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (FRESH_DB,)
            )
            rows = await cursor.fetchall()
    finally:
        await conn.ensure_closed()
    return sorted(r[0] for r in rows)


async def _upgrade(url: str, cluster_id: str) -> None:
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["db", "upgrade", "--master", url, "--cluster", cluster_id]
    )
    assert result.exit_code == 0, result.output


async def test_check_refuses_a_fresh_database_until_it_is_upgraded(fresh_url: str, cluster_id: str) -> None:
    latest = latest_schema_version(fresh_url)
    app = JobMaster(cluster_id, fresh_url, migrate="check")
    with pytest.raises(ConfigError) as refused:
        await app.open()
    message = str(refused.value)
    assert f"the master database has no jobmaster schema, this jobmaster needs version {latest}" in message
    assert "`jobmaster db upgrade`" in message
    assert not app.is_open
    assert await _tables(fresh_url) == []

    await _upgrade(fresh_url, cluster_id)
    checked = JobMaster(cluster_id, fresh_url, migrate="check")

    @checked.handler(name="tests.noop")
    async def noop() -> None:
        return None

    async with checked:
        job_id = await checked.schedule(noop, {}, delay=60)
        assert (await checked.get_job(job_id)).status is JobStatus.HeldOnMaster


async def test_never_opens_a_fresh_database_without_looking(fresh_url: str, cluster_id: str) -> None:
    async with JobMaster(cluster_id, fresh_url, migrate="never") as app:
        assert app.is_open
    assert await _tables(fresh_url) == []


async def test_auto_migrates_as_it_always_did(fresh_url: str, cluster_id: str) -> None:
    async with JobMaster(cluster_id, fresh_url) as app:
        assert app.config.migrate == "auto"
    assert "jm_jobs" in await _tables(fresh_url)


async def test_check_names_the_version_of_an_outdated_schema(tmp_path: Path, cluster_id: str) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    await _upgrade(url, cluster_id)
    latest = latest_schema_version(url)
    with sqlite3.connect(tmp_path / "old.db") as conn:
        conn.execute("DELETE FROM jm_schema WHERE version = ?", (latest,))
    with pytest.raises(ConfigError, match=f"has jobmaster schema version {latest - 1}, this jobmaster needs"):
        await JobMaster(cluster_id, url, migrate="check").open()
