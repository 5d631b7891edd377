"""SQLite plan shapes of the job listing."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from helpers import make_job, opened_master
from jobmaster.jobs.model import JobFilter, JobStatus
from jobmaster.master.sql.dialect import SQLITE
from jobmaster.master.sql.store import list_sql
from jobmaster.master.sqlite import SqliteMaster


async def test_a_deep_page_starts_at_its_position_in_the_listing_index(tmp_path: Path) -> None:
    """A page far down is a search of the listing index from the cursor's position, in order: no
    temporary B-tree sorting the cluster's jobs, with or without a handler filter."""
    cluster = f"plans-{uuid.uuid4().hex[:8]}"
    async with opened_master(f"sqlite:///{tmp_path}/master.db", cluster) as master:
        assert isinstance(master, SqliteMaster)
        now = time.time()
        jobs = [make_job(-i / 10, status=JobStatus.Succeeded) for i in range(3000)]
        jobs += [make_job(0, status=JobStatus.Processing, lease_expires_at=now + 60) for _ in range(30)]
        await master.insert_jobs(jobs)
        await master.sql.execute("ANALYZE")
        deep = sorted(jobs, key=lambda j: (j.scheduled_at, j.id), reverse=True)[2500]
        position = (deep.scheduled_at, deep.id)
        for criteria in (
            JobFilter(limit=50, after=position),
            JobFilter(limit=50, after=position, definition_id="tests.noop"),
        ):
            sql, params = list_sql(cluster, criteria, SQLITE)
            plan = [row[3] for row in await master.sql.fetch(f"EXPLAIN QUERY PLAN {sql}", params)]
            assert plan == [
                "SEARCH jm_jobs USING INDEX jm_jobs_listed (cluster_id=? AND (scheduled_at,id)<(?,?))"
            ]
            assert len(await master.list_jobs(criteria)) == 50
