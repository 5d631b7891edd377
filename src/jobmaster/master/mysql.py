"""MySQL / MariaDB master: the same tables and semantics as PostgreSQL, on InnoDB.

Each batch method is one short transaction of a few statements, whatever the batch size: multi-row
INSERTs, `IN (...)` lists, and UPDATEs joined to a `JSON_TABLE` of per-job values (one parameter,
encoded by orjson) where each job gets values of its own. Every job write is a compare-and-swap on
`version`. Neither MariaDB nor MySQL has UPDATE ... RETURNING, so a batch learns which jobs held
from the rows the guarded UPDATE matched: when it matched every job (the common case) that is the
whole write; otherwise the transaction is rolled back, the rows are read `FOR UPDATE` and only the
jobs whose version and status still match are written, so the answer is exact either way.

Claims lock rows with `FOR UPDATE SKIP LOCKED` (MariaDB 10.6+, MySQL 8.0+). There is no
LISTEN/NOTIFY, so the engine polls (`idle_poll_interval`); a poll that finds nothing is one plain
indexed read that takes no lock.

MySQL has no partial indexes. Where PostgreSQL indexes only the rows of some statuses, a STORED
generated column holds the indexed value for those rows and NULL for the others (`held_at`, the due
time of HeldOnMaster jobs; `final_at`, the finish time of final ones). An index on it is used
exactly like the partial index, and a status change that leaves the value NULL (Queued ->
Processing -> Succeeded for `held_at`) does not touch it: measured, about a tenth less server CPU
per job than indexes led by `status`, which InnoDB must rewrite on every status change. Every
secondary index costs each job row an entry, so the heartbeat finds cancel requests among the jobs
the worker holds by primary key instead of through an owner index.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from asyncmy.errors import MySQLError

from jobmaster.db.mysql import (
    ER_DUP_ENTRY,
    MysqlClient,
    Session,
    error_code,
)
from jobmaster.jobs import codec
from jobmaster.jobs import lifecycle as lc
from jobmaster.jobs.model import Attempt, Completion, Job, JobStatus
from jobmaster.jobs.retry import DEFAULT_RETRY, RetryPolicy
from jobmaster.master import rows
from jobmaster.master.base import NO_START, Assigner, Fence, Route, StartNow
from jobmaster.master.sql.dialect import MYSQL
from jobmaster.master.sql.executor import Executor
from jobmaster.master.sql.store import ATTEMPT_COLUMNS, SqlMasterStore

SCHEMES = ("mysql", "mariadb")


_JOB_MARKS = "(" + ", ".join(["%s"] * (len(rows.JOB_COLUMNS) + 1)) + ")"
_INSERT_JOBS = f"INSERT INTO jm_jobs (cluster_id, {rows.JOB_SELECT}) VALUES "
_COL = {name: index for index, name in enumerate(rows.JOB_COLUMNS)}

#: REPLACE, not ON DUPLICATE KEY UPDATE with VALUES() (deprecated by MySQL 8.0.20+, with a warning).
_UPSERT_ATTEMPTS = f"REPLACE INTO jm_attempts ({ATTEMPT_COLUMNS}) VALUES {{}}"

#: Per-job values of a claim's assignments, joined to the locked rows. The JSON table drives the
#: join (STRAIGHT_JOIN), so each row is one primary-key lookup even when the table is small enough
#: for the optimiser to prefer a scan.
_ASSIGN = """
    UPDATE JSON_TABLE(%s, '$[*]' COLUMNS (
        id VARCHAR(64) PATH '$[0]', version BIGINT PATH '$[1]', status SMALLINT PATH '$[2]',
        bucket_id VARCHAR(191) PATH '$[3]', worker_id VARCHAR(191) PATH '$[4]',
        lease_until DOUBLE PATH '$[5]')) a
    STRAIGHT_JOIN jm_jobs j ON j.id = a.id AND j.version = a.version
    SET j.status = a.status, j.bucket_id = a.bucket_id, j.worker_id = a.worker_id,
        j.lease_expires_at = a.lease_until, j.version = j.version + 1
"""

#: Successful runs, the hot path: only fixed-size columns in the JSON table, so the server keeps
#: the multi-table update's row buffer in memory (a LONGTEXT column would put it on disk).
_COMPLETE_OK = f"""
    UPDATE JSON_TABLE(%s, '$[*]' COLUMNS (
        id VARCHAR(64) PATH '$[0]', version BIGINT PATH '$[1]', finished_at DOUBLE PATH '$[2]')) c
    STRAIGHT_JOIN jm_jobs j ON j.id = c.id AND j.version = c.version
    SET j.lease_expires_at = NULL, j.finished_at = c.finished_at, j.status = {lc.SUCCEEDED},
        j.version = j.version + 1
"""

#: Successful runs that returned something: the result as JSON text in a string of the table (as
#: the errors below), kept out of `_COMPLETE_OK` so runs that returned None stay on the in-memory path.
_COMPLETE_RESULT = f"""
    UPDATE JSON_TABLE(%s, '$[*]' COLUMNS (
        id VARCHAR(64) PATH '$[0]', version BIGINT PATH '$[1]', finished_at DOUBLE PATH '$[2]',
        result LONGTEXT PATH '$[3]')) c
    STRAIGHT_JOIN jm_jobs j ON j.id = c.id AND j.version = c.version
    SET j.lease_expires_at = NULL, j.finished_at = c.finished_at, j.status = {lc.SUCCEEDED},
        j.result = c.result, j.version = j.version + 1
"""

#: Every other outcome. A retry (status 2) goes back to the master with its new due time and no
#: owner; a final status keeps the last error unless the run brought a new one. No right-hand side
#: reads a column another assignment writes, so the order MySQL applies them in does not matter.
_COMPLETE = f"""
    UPDATE JSON_TABLE(%s, '$[*]' COLUMNS (
        id VARCHAR(64) PATH '$[0]', version BIGINT PATH '$[1]', status SMALLINT PATH '$[2]',
        scheduled_at DOUBLE PATH '$[3]', finished_at DOUBLE PATH '$[4]', error LONGTEXT PATH '$[5]',
        grant_ INT PATH '$[6]')) c
    STRAIGHT_JOIN jm_jobs j ON j.id = c.id AND j.version = c.version
    SET j.scheduled_at = IF(c.status = {lc.HELD}, c.scheduled_at, j.scheduled_at),
        j.attempt_limit = j.attempt_limit + c.grant_,
        j.bucket_id = IF(c.status = {lc.HELD}, NULL, j.bucket_id),
        j.worker_id = IF(c.status = {lc.HELD}, NULL, j.worker_id),
        j.lease_expires_at = NULL,
        j.finished_at = IF(c.status = {lc.HELD}, j.finished_at, c.finished_at),
        j.last_error = IF(c.status = {lc.HELD}, c.error, COALESCE(c.error, j.last_error)),
        j.status = c.status,
        j.version = j.version + 1
"""

#: The decided recoveries (`lifecycle.recover`), fenced on version: a NULL due time or error keeps
#: the job's own.
_RECOVER = """
    UPDATE JSON_TABLE(%s, '$[*]' COLUMNS (
        id VARCHAR(64) PATH '$[0]', version BIGINT PATH '$[1]', status SMALLINT PATH '$[2]',
        scheduled_at DOUBLE PATH '$[3]', finished_at DOUBLE PATH '$[4]', error LONGTEXT PATH '$[5]')) t
    STRAIGHT_JOIN jm_jobs j ON j.id = t.id AND j.version = t.version
    SET j.last_error = COALESCE(t.error, j.last_error),
        j.scheduled_at = COALESCE(t.scheduled_at, j.scheduled_at),
        j.finished_at = t.finished_at,
        j.bucket_id = NULL, j.worker_id = NULL, j.lease_expires_at = NULL,
        j.status = t.status,
        j.version = j.version + 1
"""


def _marks(n: int) -> str:
    return ", ".join(["%s"] * n)


#: How list and count queries filter jobs here (their plans: tests/conformance/test_mysql_plans.py).
_FILTER = MYSQL.filter


def _unique(jobs: Sequence[Job]) -> list[Job]:
    """First copy of each job id: one statement cannot insert a key twice."""
    seen: set[str] = set()
    out = []
    for job in jobs:
        if job.id not in seen:
            seen.add(job.id)
            out.append(job)
    return out


def _fence_sql(fences: Sequence[Fence]) -> tuple[str, list[Any]]:
    """`(version = v AND id IN (...)) OR ...`: the fences grouped by version, one PK range each."""
    groups: dict[int, list[str]] = {}
    for fence in fences:
        groups.setdefault(fence.version, []).append(fence.job_id)
    parts = []
    params: list[Any] = []
    for version, ids in groups.items():
        parts.append(f"(version = %s AND id IN ({_marks(len(ids))}))")
        params += [version, *ids]
    return " OR ".join(parts), params


def _routes_sql(routes: Sequence[Route]) -> tuple[str, list[Any]]:
    params: list[Any] = []
    for lane, priority in routes:
        params += [lane, int(priority)]
    return f"(lane, priority) IN ({', '.join(['(%s, %s)'] * len(routes))})", params


class MysqlMaster(MysqlClient, SqlMasterStore):
    dialect = MYSQL

    @property
    def sql(self) -> Executor:
        return self.db.executor

    supports_notify = False
    joins_transactions = True

    def __init__(self, url: str, cluster_id: str) -> None:
        super().__init__(url, cluster_id)
        self._claimed_last = False

    # ---- job writes -------------------------------------------------------------------------

    def _job_values(self, jobs: Sequence[Job], **fixed: Any) -> list[Any]:
        """Flat INSERT parameters of `jobs` (cluster first), with `fixed` columns set for all."""
        params: list[Any] = []
        positions = [(_COL[name] + 1, value) for name, value in fixed.items()]
        for job in jobs:
            row = [self.cluster_id, *rows.job_to_row(job)]
            for position, value in positions:
                row[position] = value
            params += row
        return params

    async def _insert_new(self, s: Session, jobs: Sequence[Job], **fixed: Any) -> list[str]:
        """Insert the jobs whose ids are not stored yet; return those ids, in input order.

        The common case (all new) is one statement. A duplicate key fails the whole statement (no
        row written), and only then are the stored ids read and the rest inserted.
        """
        pending = _unique(jobs)
        while pending:
            try:
                await s.execute(
                    _INSERT_JOBS + ", ".join([_JOB_MARKS] * len(pending)),
                    self._job_values(pending, **fixed),
                )
                return [j.id for j in pending]
            except MySQLError as exc:
                if error_code(exc) != ER_DUP_ENTRY:
                    raise
            ids = [j.id for j in pending]
            stored = {
                r[0] for r in await s.fetch(f"SELECT id FROM jm_jobs WHERE id IN ({_marks(len(ids))})", ids)
            }
            pending = [j for j in pending if j.id not in stored]
        return []

    async def insert_jobs(self, jobs: Sequence[Job], connection: Any = None) -> list[str]:
        if not jobs:
            return []
        if connection is not None:
            # the caller's asyncmy connection, inside its own open transaction
            return await self._insert_new(Session(connection), jobs, version=1)
        async with self.db.session() as s:
            return await self._insert_new(s, jobs, version=1)

    async def adopt(
        self,
        jobs: Sequence[Job],
        bucket_id: str,
        worker_id: str,
        lease_until: float,
        start: StartNow = NO_START,
    ) -> list[str]:
        if not jobs:
            return []
        fresh = [start.adopted(j) for j in jobs if j.version == 0]
        saved = [j for j in jobs if j.version > 0]
        go = [j.id for j in saved if j.id in start.ids]
        # one guarded update for all saved jobs (it must be the transaction's first write)
        starting = f"id IN ({_marks(len(go))})" if go else "FALSE"
        assignments = (
            f"status = IF({starting}, {lc.PROCESSING}, {lc.QUEUED}),"
            f" attempts = attempts + IF({starting}, 1, 0),"
            f" started_at = IF({starting}, %s, started_at),"
            " bucket_id = %s, worker_id = %s, lease_expires_at = %s"
        )

        async def write(s: Session) -> list[str]:
            # The guarded update first: its slow path rolls the transaction back and starts over.
            moved: list[str] = []
            if saved:
                moved = await self._guarded_update(
                    s,
                    [Fence(j.id, j.version) for j in saved],
                    assignments,
                    [*go, *go, *go, start.at, bucket_id, worker_id, lease_until],
                    (int(JobStatus.AssignedToBucket),),
                )
            inserted: list[str] = []
            if fresh:
                inserted = await self._insert_new(
                    s,
                    fresh,
                    version=1,
                    bucket_id=bucket_id,
                    worker_id=worker_id,
                    lease_expires_at=lease_until,
                )
            return inserted + moved

        return await self.db.run(write)

    async def save_pending(
        self, jobs: Sequence[Job], bucket_id: str, worker_id: str, lease_after_due: float
    ) -> list[str]:
        if not jobs:
            return []
        stored = [j.copy(lease_expires_at=j.scheduled_at + lease_after_due) for j in jobs]

        async def write(s: Session) -> list[str]:
            return await self._insert_new(
                s,
                stored,
                status=int(JobStatus.AssignedToBucket),
                version=1,
                bucket_id=bucket_id,
                worker_id=worker_id,
            )

        return await self.db.run(write)

    async def claim_due(
        self,
        horizon: float,
        routes: Sequence[Route],
        limit: int,
        assign: Assigner,
    ) -> list[Job]:
        if not routes or limit <= 0:
            return []
        route_sql, route_params = _routes_sql(routes)
        # An idle poll is one plain read on the due index, with no transaction and no lock; the
        # probe is skipped while the previous claim found jobs (a backlog is being worked off).
        if not self._claimed_last:
            probe = await self.db.fetch(
                f"SELECT 1 FROM jm_jobs WHERE cluster_id = %s AND {route_sql} AND held_at <= %s LIMIT 1",
                [self.cluster_id, *route_params, horizon],
            )
            if not probe:
                return []
        # One ordered, limited index range per route, so no branch reads (or locks) more than
        # `limit` rows however many jobs are due; the union then keeps the earliest `limit`.
        branch = (
            f"SELECT {rows.JOB_SELECT} FROM jm_jobs WHERE cluster_id = %s"
            " AND lane = %s AND priority = %s AND held_at <= %s"
            " ORDER BY held_at LIMIT %s FOR UPDATE SKIP LOCKED"
        )
        params: list[Any] = []
        for lane, priority in routes:
            params += [self.cluster_id, lane, int(priority), horizon, limit]
        if len(routes) == 1:
            sql = branch
        else:
            sql = " UNION ALL ".join([f"({branch})"] * len(routes)) + " ORDER BY scheduled_at LIMIT %s"
            params.append(limit)

        async def claim(s: Session) -> list[Job]:
            found = [rows.job_from_row(r) for r in await s.fetch(sql, params)]
            if not found:
                return []
            by_id = {j.id: j for j in found}
            assignments = assign(found)
            if not assignments:
                return []
            claimed = [by_id[a.job_id] for a in assignments]
            table = [
                [j.id, j.version, int(a.status), a.bucket_id, a.worker_id, a.lease_until]
                for j, a in zip(claimed, assignments, strict=True)
            ]
            await s.execute(_ASSIGN, (codec.dumps(table).decode(),))
            for job, a in zip(claimed, assignments, strict=True):
                lc.assigned(job, a.bucket_id, a.worker_id, a.status, a.lease_until)
            return claimed

        # Not retried: the assigner keeps count of what it handed out, so it must run once.
        claimed = await self.db.run(claim, retry=False)
        self._claimed_last = bool(claimed)
        return claimed

    async def _guarded_update(
        self,
        s: Session,
        fences: Sequence[Fence],
        assignments: str,
        values: Sequence[Any],
        statuses: tuple[int, ...],
        cancelled_ok: bool = True,
    ) -> list[str]:
        """`SET assignments, version = version + 1` on the fenced jobs that still hold; their ids.

        Fast path: one UPDATE guarded by every fence's version and the allowed statuses. When it
        matches every job (the common case) that is the whole write. Otherwise the transaction is
        rolled back (so this must be its first write), the rows are read under lock to learn which
        fences held, and only those are written.
        """
        guard = f"status IN ({', '.join(str(v) for v in statuses)})"
        if not cancelled_ok:
            guard += " AND NOT cancel_requested"
        ids = [f.job_id for f in fences]
        if len(set(ids)) == len(ids):
            where, params = _fence_sql(fences)
            matched = await s.execute(
                f"UPDATE jm_jobs SET {assignments}, version = version + 1 WHERE ({where}) AND {guard}",
                [*values, *params],
            )
            if matched == len(ids):
                return ids
            await s.restart()
        current = {
            r[0]: r[1:]
            for r in await s.fetch(
                "SELECT id, version, status, cancel_requested FROM jm_jobs"
                f" WHERE id IN ({_marks(len(ids))}) FOR UPDATE",
                ids,
            )
        }
        chosen = set()
        for fence in fences:
            row = current.get(fence.job_id)
            if row is None or row[0] != fence.version or row[1] not in statuses:
                continue
            if not cancelled_ok and row[2]:
                continue
            chosen.add(fence.job_id)
        held = rows.in_order(ids, chosen)
        if held:
            await s.execute(
                f"UPDATE jm_jobs SET {assignments}, version = version + 1 WHERE id IN ({_marks(len(held))})",
                [*values, *held],
            )
        return held

    async def start(self, fences: Sequence[Fence], now: float, lease_until: float) -> list[str]:
        if not fences:
            return []

        async def write(s: Session) -> list[str]:
            return await self._guarded_update(
                s,
                fences,
                f"status = {lc.PROCESSING}, attempts = attempts + 1, started_at = %s, lease_expires_at = %s",
                [now, lease_until],
                (int(JobStatus.AssignedToBucket), int(JobStatus.Queued)),
                cancelled_ok=False,
            )

        return await self.db.run(write)

    @staticmethod
    async def _apply_completions(s: Session, completions: Sequence[Completion]) -> int:
        """Write the outcomes guarded by version; returns how many rows matched."""
        ok = [c for c in completions if c.status is JobStatus.Succeeded and c.error is None]
        other = [c for c in completions if not (c.status is JobStatus.Succeeded and c.error is None)]
        matched = 0
        returned = [c for c in ok if c.result is not None]
        if returned:
            ok = [c for c in ok if c.result is None]
            table = [[c.job_id, c.version, c.attempt.finished_at, c.result] for c in returned]
            matched += await s.execute(_COMPLETE_RESULT, (codec.dumps(table).decode(),))
        if ok:
            table = [[c.job_id, c.version, c.attempt.finished_at] for c in ok]
            matched += await s.execute(_COMPLETE_OK, (codec.dumps(table).decode(),))
        if other:
            table = [
                [
                    c.job_id,
                    c.version,
                    int(c.status),
                    c.scheduled_at,
                    c.attempt.finished_at,
                    rows.json_text(c.error),
                    c.grant,
                ]
                for c in other
            ]
            matched += await s.execute(_COMPLETE, (codec.dumps(table).decode(),))
        return matched

    async def complete(self, completions: Sequence[Completion]) -> list[str]:
        if not completions:
            return []

        async def write(s: Session) -> list[str]:
            ids = [c.job_id for c in completions]
            done: list[Completion] | None = None
            if len(set(ids)) == len(ids) and await self._apply_completions(s, completions) == len(ids):
                done = list(completions)
            else:
                if len(set(ids)) == len(ids):
                    await s.restart()
                versions = {
                    r[0]: r[1]
                    for r in await s.fetch(
                        f"SELECT id, version FROM jm_jobs WHERE id IN ({_marks(len(ids))}) FOR UPDATE", ids
                    )
                }
                done = []
                for c in completions:
                    if versions.get(c.job_id) == c.version:
                        done.append(c)
                        del versions[c.job_id]  # a job named twice is completed once
                if done:
                    await self._apply_completions(s, done)
            history = [c.attempt for c in done if c.status is not JobStatus.Succeeded]
            if history:
                await self._record_attempts(s, history)
            return [c.job_id for c in done]

        return await self.db.run(write)

    @staticmethod
    async def _record_attempts(s: Session, attempts: Sequence[Attempt]) -> None:
        params: list[Any] = []
        for a in attempts:
            params += [
                a.job_id,
                a.attempt,
                a.worker_id,
                a.started_at,
                a.finished_at,
                a.outcome,
                rows.json_text(a.error),
            ]
        await s.execute(
            _UPSERT_ATTEMPTS.format(", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(attempts))), params
        )

    async def release(self, fences: Sequence[Fence]) -> list[str]:
        if not fences:
            return []

        async def write(s: Session) -> list[str]:
            return await self._guarded_update(
                s,
                fences,
                f"status = {lc.HELD}, bucket_id = NULL, worker_id = NULL, lease_expires_at = NULL",
                [],
                (int(JobStatus.AssignedToBucket), int(JobStatus.Queued)),
            )

        return await self.db.run(write)

    async def renew(self, worker_id: str, now: float, lease_until: float, held: Sequence[str]) -> list[str]:
        renew_before = lc.renew_before(now, lease_until)
        ids = sorted(set(held))

        async def write(s: Session) -> list[str]:
            await s.execute("UPDATE jm_workers SET heartbeat_at = %s WHERE id = %s", (now, worker_id))
            if ids:
                await s.execute(
                    f"UPDATE jm_jobs SET lease_expires_at = %s WHERE id IN ({_marks(len(ids))})"
                    f" AND worker_id = %s AND status IN {lc.RENEWED_SQL} AND lease_expires_at < %s",
                    [lease_until, *ids, worker_id, renew_before],
                )
            if not ids:
                return []
            # Cancel requests among the jobs the worker holds: primary-key lookups, where a scan for
            # every job stamped with its id would need an index of its own on every job row (PostgreSQL
            # has a partial one). A job the worker does not hold is not running there to interrupt.
            return [
                r[0]
                for r in await s.fetch(
                    f"SELECT id FROM jm_jobs WHERE id IN ({_marks(len(ids))})"
                    f" AND worker_id = %s AND status = {lc.PROCESSING} AND cancel_requested",
                    [*ids, worker_id],
                )
            ]

        return await self.db.run(write)

    async def recover_expired(self, now: float, limit: int, retry: RetryPolicy = DEFAULT_RETRY) -> int:
        async def write(s: Session) -> int:
            expired = await s.fetch(
                f"SELECT {lc.EXPIRED_COLUMNS} FROM jm_jobs WHERE cluster_id = %s"
                f" AND status IN {lc.OWNED_SQL} AND lease_expires_at < %s LIMIT %s FOR UPDATE SKIP LOCKED",
                (self.cluster_id, now, limit),
            )
            if not expired:
                return 0
            decided = lc.recover_all(expired, now, retry)
            table = [
                [r.job_id, r.version, int(r.status), r.scheduled_at, r.finished_at, rows.json_text(r.error)]
                for r in decided
            ]
            # the rows are locked: every fence holds
            await s.execute(_RECOVER, (codec.dumps(table).decode(),))
            history = [r.attempt for r in decided if r.attempt is not None]
            if history:
                await self._record_attempts(s, history)
            return len(expired)

        return await self.db.run(write)

    # ---- management --------------------------------------------------------------------------

    # ---- workers and buckets -----------------------------------------------------------------


STORE = MysqlMaster
