"""Row <-> model mapping shared by the SQL master backends (same columns, same order)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from jobmaster.cluster.model import Bucket, BucketStatus, WorkerMode, WorkerRecord, WorkerStatus
from jobmaster.jobs import codec
from jobmaster.jobs import columns as cols
from jobmaster.jobs.model import Attempt, Job, JobFilter, Priority

#: `jm_jobs`'s columns that hold a job, in the field order of `Job` (`jobs/columns.py`).
JOB_COLUMNS = tuple(c.name for c in cols.COLUMNS)
JOB_SELECT = ", ".join(JOB_COLUMNS)

#: Columns `update_job` may change; anything else is refused so callers cannot bypass the CAS rules.
UPDATABLE = frozenset(c.name for c in cols.COLUMNS if c.updatable)
JSON_COLUMNS = frozenset(c.name for c in cols.COLUMNS if c.kind is cols.JSON)


def json_text(value: Any) -> str | None:
    return None if value is None else codec.dumps(value).decode()


def _json(raw: Any) -> Any:
    if type(raw) is str:  # the usual case first: every job a worker takes passes here
        return codec.loads(raw)
    if raw is None or isinstance(raw, dict | list):
        return raw
    return codec.loads(raw)


#: How a value of each kind goes into a row where it does not go as it is: enums as their numbers,
#: JSON as text (SQLite, asyncpg with text codecs).
INTO_ROW: dict[cols.Kind, Callable[[Any], Any]] = {
    cols.PRIORITY: int,
    cols.STATUS: int,
    cols.BOOL: bool,
    cols.JSON: json_text,
}
#: Lookups instead of `Priority(n)` / `JobStatus(n)`: an enum call costs a third of a microsecond.
_MEMBERS = {c.kind: {int(m): m for m in c.kind.enum} for c in cols.COLUMNS if c.kind.enum is not None}


def _from_row(column: cols.Column, index: int) -> str:
    value = f"row[{index}]"
    if column.kind.enum is not None:
        return f"_members_{column.kind.name}[{value}]"
    if column.kind is cols.JSON:
        return f"_json({value})" if column.nullable else f"_json({value}) or {{}}"
    if column.kind is cols.BOOL:
        return f"bool({value})"
    return value


def _into_row(column: cols.Column) -> str:
    value = f"job.{column.name}"
    return f"_into_{column.kind.name}({value})" if column.kind in INTO_ROW else value


_NAMESPACE: dict[str, Any] = {
    "Job": Job,
    "_json": _json,
    **{f"_into_{kind.name}": convert for kind, convert in INTO_ROW.items()},
    **{f"_members_{kind.name}": members for kind, members in _MEMBERS.items()},
}

#: Positional, in the field order of `Job`: every job a worker takes passes here, and keywords and
#: enum calls made it cost twice as much (1.0 us a job, against 2). Built from the registry, as
#: `Job(row[0], row[1], row[2], row[3], _members_priority[row[4]], ...)`.
job_from_row: Callable[[Sequence[Any]], Job] = cols.compile_function(
    "job_from_row",
    f"""def job_from_row(row):
    "A job from a row of `JOB_COLUMNS`, its JSON as text or already parsed."
    return Job({", ".join(_from_row(c, n) for n, c in enumerate(cols.COLUMNS))})
""",
    dict(_NAMESPACE),
)

#: One tuple display of the job's attributes (0.56 us a job), built from the registry as well.
job_to_row: Callable[[Job], tuple[Any, ...]] = cols.compile_function(
    "job_to_row",
    f"""def job_to_row(job):
    "Values in `JOB_COLUMNS` order; JSON as text (SQLite, asyncpg with text codecs)."
    return ({", ".join(_into_row(c) for c in cols.COLUMNS)},)
""",
    dict(_NAMESPACE),
)


def attempt_from_row(row: Sequence[Any]) -> Attempt:
    return Attempt(
        job_id=row[0],
        attempt=row[1],
        worker_id=row[2],
        started_at=row[3],
        finished_at=row[4],
        outcome=row[5],
        error=_json(row[6]),
    )


WORKER_COLUMNS = "id, name, mode, lane, agent, host, pid, started_at, heartbeat_at, status"


def worker_from_row(row: Sequence[Any]) -> WorkerRecord:
    return WorkerRecord(
        id=row[0],
        name=row[1],
        mode=WorkerMode(row[2]),
        lane=row[3],
        agent=row[4],
        host=row[5],
        pid=row[6],
        started_at=row[7],
        heartbeat_at=row[8],
        status=WorkerStatus(row[9]),
    )


def worker_to_row(worker: WorkerRecord) -> tuple[Any, ...]:
    return (
        worker.id,
        worker.name,
        worker.mode.value,
        worker.lane,
        worker.agent,
        worker.host,
        worker.pid,
        worker.started_at,
        worker.heartbeat_at,
        int(worker.status),
    )


BUCKET_COLUMNS = "id, agent, lane, priority, worker_id, status, created_at"


def bucket_from_row(row: Sequence[Any]) -> Bucket:
    return Bucket(
        id=row[0],
        agent=row[1],
        lane=row[2],
        priority=Priority(row[3]),
        worker_id=row[4],
        status=BucketStatus(row[5]),
        created_at=row[6],
    )


def bucket_to_row(bucket: Bucket) -> tuple[Any, ...]:
    return (
        bucket.id,
        bucket.agent,
        bucket.lane,
        int(bucket.priority),
        bucket.worker_id,
        int(bucket.status),
        bucket.created_at,
    )


def in_order(ids: Iterable[str], chosen: set[str]) -> list[str]:
    """The ids of `chosen` in input order, each once (a batch may name a job twice)."""
    found = []
    for job_id in ids:
        if job_id in chosen:
            found.append(job_id)
            chosen.discard(job_id)
    return found


class Where:
    """A WHERE clause and its parameters, in one SQL dialect's placeholder style."""

    def __init__(self, placeholder: Callable[[int], str]) -> None:
        self._placeholder = placeholder
        self.parts: list[str] = []
        self.params: list[Any] = []

    def add(self, sql: str, *values: Any) -> None:
        """Append `sql`, whose `{}` marks stand for `values` in order."""
        first = len(self.params) + 1
        self.parts.append(sql.format(*(self._placeholder(first + i) for i in range(len(values)))))
        self.params += values

    @property
    def sql(self) -> str:
        return " AND ".join(self.parts)


def after_row(where: Where, at: float, job_id: str) -> None:
    """Jobs after `(at, job_id)` in the listing order, as one row-value comparison: a range of the
    listing index `(cluster_id, scheduled_at, id)` where the database compares row values in an
    index (SQLite, PostgreSQL)."""
    where.add("(scheduled_at, id) < ({}, {})", at, job_id)


def after_split(where: Where, at: float, job_id: str) -> None:
    """The same jobs as `after_row`, for MySQL and MariaDB, whose range optimizer bounds no range by
    a row-value inequality (MariaDB read the 15,000 rows before the position for a page of 50): the
    first term bounds the range, the second drops the ties already listed."""
    where.add("scheduled_at <= {} AND (scheduled_at < {} OR id < {})", at, at, job_id)


@dataclass(frozen=True, slots=True)
class FilterDialect:
    """How one database spells the parts of a job filter that SQL dialects disagree on."""

    placeholder: Callable[[int], str]
    statuses: Callable[[Where, list[int]], None]
    metadata: Callable[[Where, dict[str, Any]], None]
    after: Callable[[Where, float, str], None] = after_row


def status_in(where: Where, statuses: list[int]) -> None:
    """`status IN (...)`, for dialects without array parameters."""
    where.add(f"status IN ({', '.join('{}' for _ in statuses)})", *statuses)


def filter_sql(cluster_id: str, criteria: JobFilter, dialect: FilterDialect) -> tuple[str, list[Any]]:
    """The WHERE clause (without the keyword) and parameters selecting the jobs `criteria` names."""
    where = Where(dialect.placeholder)
    where.add("cluster_id = {}", cluster_id)
    if criteria.statuses:
        dialect.statuses(where, [int(s) for s in criteria.statuses])
    if criteria.definition_id is not None:
        where.add("definition_id = {}", criteria.definition_id)
    if criteria.lane is not None:
        where.add("lane = {}", criteria.lane)
    if criteria.scheduled_from is not None:
        where.add("scheduled_at >= {}", criteria.scheduled_from)
    if criteria.scheduled_to is not None:
        where.add("scheduled_at <= {}", criteria.scheduled_to)
    if criteria.metadata:
        dialect.metadata(where, criteria.metadata)
    if criteria.after is not None:
        dialect.after(where, *criteria.after)
    return where.sql, where.params
