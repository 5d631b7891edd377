"""The master operations that are the same SQL on every database, written once.

Each is one or a few statements off the hot path (management, workers and buckets, upkeep), run
through the handle's `Executor` and spelled through its `Dialect`. The backends keep only what is
measured and per-database: inserting, claiming, starting, completing, releasing and renewing jobs,
applying recoveries, and the bucket queues.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

from jobmaster.jobs.model import Attempt, Job, JobFilter, JobStatus, Priority
from jobmaster.master import rows
from jobmaster.master.base import MasterStore, Route, StatusCount
from jobmaster.master.sql.dialect import Dialect
from jobmaster.master.sql.executor import Executor

ATTEMPT_COLUMNS = "job_id, attempt, worker_id, started_at, finished_at, outcome, error"

#: Ids per statement where a list of them becomes `IN (?, ...)` (SQLite allows 32,766 parameters,
#: older builds 999).
CHUNK = 500


def marks(n: int) -> str:
    return ", ".join("?" for _ in range(n))


class SqlMasterStore(MasterStore):
    """A master on a SQL database: the cold path here, the hot path in each backend."""

    dialect: Dialect

    @property
    @abc.abstractmethod
    def sql(self) -> Executor:
        """The executor of the store's open handle."""

    # ---- job reads ---------------------------------------------------------------------------

    async def get_job(self, job_id: str) -> Job | None:
        found = await self.sql.fetch(
            self.dialect.sql(f"SELECT {rows.JOB_SELECT} FROM jm_jobs WHERE cluster_id = ? AND id = ?"),
            (self.cluster_id, job_id),
        )
        return rows.job_from_row(found[0]) if found else None

    async def list_jobs(self, criteria: JobFilter) -> list[Job]:
        where, params = rows.filter_sql(self.cluster_id, criteria, self.dialect.filter)
        found = await self.sql.fetch(
            self.dialect.sql(
                f"SELECT {rows.JOB_SELECT} FROM jm_jobs WHERE {where}"
                " ORDER BY scheduled_at DESC, id LIMIT ? OFFSET ?"
            ),
            [*params, criteria.limit, criteria.offset],
        )
        return [rows.job_from_row(r) for r in found]

    async def count_jobs(self, criteria: JobFilter) -> int:
        where, params = rows.filter_sql(self.cluster_id, criteria, self.dialect.filter)
        return int(
            await self.sql.fetchval(self.dialect.sql(f"SELECT COUNT(*) FROM jm_jobs WHERE {where}"), params)
        )

    async def count_by_status(self) -> list[StatusCount]:
        found = await self.sql.fetch(
            self.dialect.sql(
                "SELECT status, priority, lane, COUNT(*) FROM jm_jobs WHERE cluster_id = ?"
                " GROUP BY status, priority, lane"
            ),
            (self.cluster_id,),
        )
        return [StatusCount(JobStatus(s), Priority(p), lane, int(n)) for s, p, lane, n in found]

    async def attempt_rows(self, job_id: str) -> list[Attempt]:
        found = await self.sql.fetch(
            self.dialect.sql(
                f"SELECT {ATTEMPT_COLUMNS} FROM jm_attempts WHERE job_id = ? ORDER BY attempt, started_at"
            ),
            (job_id,),
        )
        return [rows.attempt_from_row(r) for r in found]

    async def next_due_at(self, routes: Sequence[Route]) -> float | None:
        if not routes:
            return None
        # Per route, so each minimum is one probe of the due index instead of a scan of every held job.
        d = self.dialect
        branch = (
            f"SELECT MIN({d.due}) AS due FROM jm_jobs WHERE cluster_id = ? AND lane = ? AND priority = ?"
            f" AND {d.held}"
        )
        params: list[Any] = []
        for lane, priority in routes:
            params += [self.cluster_id, lane, int(priority)]
        due = await self.sql.fetchval(
            d.sql(f"SELECT MIN(due) FROM ({' UNION ALL '.join([branch] * len(routes))}) AS routes"), params
        )
        return None if due is None else float(due)
