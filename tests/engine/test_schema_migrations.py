"""The schema files of each master backend, applied by the one runner, on a fresh database: an
older schema upgrades in order, and processes opening at once apply each migration once."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import time

from helpers import make_job
from jobmaster.backends import latest_schema_version, make_master
from jobmaster.master.sql import migrations
from jobmaster.master.sql.store import SqlMasterStore

#: One row if the object the last migration of the dialect makes is there.
MADE_BY_THE_LAST = {
    "sqlite": "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'jm_jobs_queued'",
    "postgres": "SELECT 1 FROM pg_proc WHERE proname = 'jm_release'",
    "mysql": "SELECT 1 FROM information_schema.statistics"
    " WHERE table_schema = DATABASE() AND index_name = 'jm_jobs_final_definition'",
}

#: Opens the master of argv[1], waits for the shared start time argv[2], migrates, prints the version.
MIGRATE = textwrap.dedent(
    """
    import asyncio, sys, time
    from jobmaster.backends import make_master

    async def main() -> None:
        store = make_master(sys.argv[1], "concurrent")
        await store.open()
        try:
            await asyncio.sleep(max(0.0, float(sys.argv[2]) - time.time()))
            print(await store.migrate())
        finally:
            await store.close()

    asyncio.run(main())
    """
)


async def _versions(url: str) -> list[tuple[int, int]]:
    store = make_master(url, "reader")
    assert isinstance(store, SqlMasterStore)
    await store.open()
    try:
        found = await store.sql.fetch(
            "SELECT version, COUNT(*) FROM jm_schema GROUP BY version ORDER BY version"
        )
        return [(int(v), int(n)) for v, n in found]
    finally:
        await store.close()


async def test_a_schema_left_at_version_1_upgrades_in_order(fresh_url: str, cluster_id: str) -> None:
    store = make_master(fresh_url, cluster_id)
    assert isinstance(store, SqlMasterStore)
    await store.open()
    try:
        d = store.dialect
        assert await store.schema_version() == 0
        # what the first release left behind
        await store.sql.execute(d.version_table)
        for statement in migrations.migrations(d)[0].statements:
            await store.sql.execute(statement)
        await store.sql.execute(d.sql("INSERT INTO jm_schema (version) VALUES (?)"), (1,))
        assert await store.schema_version() == 1
        assert not await store.sql.fetch(MADE_BY_THE_LAST[d.name])

        latest = store.latest_schema_version()
        assert latest > 1
        assert await store.migrate() == latest
        assert await store.schema_version() == latest
        assert await store.sql.fetch(MADE_BY_THE_LAST[d.name])
        job = make_job(60)
        assert await store.insert_jobs([job]) == [job.id]
        found = await store.get_job(job.id)
        assert found is not None and found.scheduled_at == job.scheduled_at
    finally:
        await store.close()
    assert await _versions(fresh_url) == [(n, 1) for n in range(1, latest + 1)]


async def test_processes_migrating_at_once_apply_each_migration_once(fresh_url: str) -> None:
    start_at = str(time.time() + 3.0)  # after every process has imported and connected
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            MIGRATE,
            fresh_url,
            start_at,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(3)
    ]
    outputs = [await p.communicate() for p in processes]
    latest = latest_schema_version(fresh_url)
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err.decode()
        assert out.decode().strip() == str(latest)
    assert await _versions(fresh_url) == [(n, 1) for n in range(1, latest + 1)]
