"""MySQL / MariaDB index shapes of the job table.

InnoDB rewrites a secondary index entry whenever a column of its key changes, so an index keyed on
`status` costs every start and every completion of every job an extra delete-mark and insert. These
tests hold the table to one such index (the lease index, which recovery needs) and check that the
management queries that used the dropped ones are still served by an index.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from helpers import make_job, opened_master
from jobmaster.jobs.model import JobFilter, JobStatus
from jobmaster.master import mysql as my_master
from jobmaster.master import rows
from jobmaster.master.mysql import MysqlMaster
from jobmaster.master.sql.dialect import MYSQL
from jobmaster.master.sql.store import list_sql


@pytest.fixture
async def master(mysql_urls: dict[str, str]) -> AsyncIterator[MysqlMaster]:
    async with opened_master(mysql_urls["master"], f"plans-{uuid.uuid4().hex[:8]}") as store:
        assert isinstance(store, MysqlMaster)
        yield store


async def _index_keys(master: MysqlMaster) -> dict[str, list[str]]:
    found = await master.db.fetch(
        "SELECT index_name, column_name FROM information_schema.statistics"
        " WHERE table_schema = DATABASE() AND table_name = 'jm_jobs' ORDER BY index_name, seq_in_index"
    )
    keys: dict[str, list[str]] = {}
    for name, column in found:
        keys.setdefault(str(name), []).append(str(column))
    return keys


async def _index_used(master: MysqlMaster, criteria: JobFilter) -> Any:
    where, params = rows.filter_sql(master.cluster_id, criteria, my_master._FILTER)
    plan = await master.db.fetch(f"EXPLAIN SELECT COUNT(*) FROM jm_jobs WHERE {where}", params)
    return plan[0][5]  # the `key` column


async def test_only_the_lease_index_is_keyed_on_status(master: MysqlMaster) -> None:
    keys = await _index_keys(master)
    assert keys["jm_jobs_final_definition"] == ["cluster_id", "definition_id", "final_at"]
    assert {name for name, columns in keys.items() if "status" in columns} == {"jm_jobs_lease"}
    assert await master.schema_version() == MysqlMaster.latest_schema_version()


async def test_jobs_are_still_found_by_handler_and_by_status_through_an_index(master: MysqlMaster) -> None:
    now = time.time()
    finished = [
        make_job(status=JobStatus.Succeeded, definition_id=f"tests.h{n % 20}", finished_at=now - n)
        for n in range(3000)
    ]
    running = [make_job(status=JobStatus.Processing, lease_expires_at=now + 60) for _ in range(30)]
    await master.insert_jobs(finished + running)
    await master.db.execute("ANALYZE TABLE jm_jobs")

    by_handler = JobFilter(statuses=(JobStatus.Succeeded,), definition_id="tests.h3")
    assert await _index_used(master, by_handler) == "jm_jobs_final_definition"
    assert await master.count_jobs(by_handler) == 150
    by_status = JobFilter(statuses=(JobStatus.Processing,))
    assert await _index_used(master, by_status) == "jm_jobs_lease"
    assert await master.count_jobs(by_status) == 30


async def _rows_read(master: MysqlMaster, sql: str, params: list[Any]) -> tuple[int, int]:
    """How many rows the statement returned and how many index or table rows it read for them."""
    status = "SHOW SESSION STATUS WHERE Variable_name LIKE 'Handler_read%'"
    async with master.db.session() as session:
        before = dict(await session.fetch(status))
        found = await session.fetch(sql, params)
        after = dict(await session.fetch(status))
    return len(found), sum(int(after[name]) - int(before[name]) for name in before)


async def test_a_deep_page_reads_a_page_of_the_listing_index(master: MysqlMaster) -> None:
    """A page after a cursor 15,000 jobs down reads about a page of the listing index from the
    position, not the 15,000 jobs before it, with or without a filter."""
    now = time.time()
    jobs = [make_job(-i / 10, status=JobStatus.Succeeded) for i in range(20_000)]
    jobs += [make_job(0, status=JobStatus.Processing, lease_expires_at=now + 60) for _ in range(30)]
    for start in range(0, len(jobs), 2000):
        await master.insert_jobs(jobs[start : start + 2000])
    await master.db.execute("ANALYZE TABLE jm_jobs")
    deep = sorted(jobs, key=lambda j: (j.scheduled_at, j.id), reverse=True)[15_000]
    for criteria in (
        JobFilter(limit=50, after=(deep.scheduled_at, deep.id)),
        JobFilter(limit=50, after=(deep.scheduled_at, deep.id), definition_id="tests.noop"),
    ):
        sql, params = list_sql(master.cluster_id, criteria, MYSQL)
        [plan] = await master.db.fetch(f"EXPLAIN {sql}", params)
        assert (plan[5], plan[3]) == ("jm_jobs_listed", "range"), plan
        assert "filesort" not in str(plan[9]), plan
        returned, read = await _rows_read(master, sql, params)
        assert returned == 50
        assert read <= 200, read
