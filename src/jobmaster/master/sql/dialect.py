"""How each SQL database spells what the shared operations need, and nothing more.

Shared statements are written once with `?` marks; `Dialect.sql` renders them in the database's
placeholder style (cached: the same few texts come back on every call). What the databases disagree
on beyond that is a field here: the boolean literal, an upsert, row locks, JSON containment in a
filter, and where MySQL reads a generated column in place of a partial index.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jobmaster.jobs import codec
from jobmaster.jobs import columns as cols
from jobmaster.jobs import lifecycle as lc
from jobmaster.jobs.model import OWNED_STATUSES, JobStatus, Priority
from jobmaster.master import rows


def _numbered(sql: str) -> str:
    """`?` marks as `$1`, `$2`, ... (PostgreSQL)."""
    parts = sql.split("?")
    return parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], start=1))


def _sqlite_metadata(where: rows.Where, metadata: dict[str, Any]) -> None:
    for key, value in metadata.items():
        where.add(
            "json_extract(metadata, {}) = json_extract({}, '$')", f'$."{key}"', codec.dumps(value).decode()
        )


def _pg_statuses(where: rows.Where, statuses: list[int]) -> None:
    where.add("status = ANY({}::smallint[])", statuses)


def _pg_metadata(where: rows.Where, metadata: dict[str, Any]) -> None:
    where.add("metadata @> {}::jsonb", codec.dumps(metadata).decode())


def _mysql_metadata(where: rows.Where, metadata: dict[str, Any]) -> None:
    where.add("JSON_CONTAINS(metadata, {})", codec.dumps(metadata).decode())


def _plain(name: str, value: Any) -> Any:
    """An `update_job` value for a driver that takes JSON as text and booleans as integers."""
    if value is None:
        return None
    if name in rows.JSON_COLUMNS:
        return codec.dumps(value).decode()
    if isinstance(value, bool | JobStatus | Priority):
        return int(value)
    return value


#: How `update_job` turns a value of each kind into what its PostgreSQL type accepts (asyncpg checks
#: Python types: an int for a float8 column, or a bool for a smallint, is refused).
_PG_KIND: dict[cols.Kind, Callable[[Any], Any]] = {
    cols.TEXT: str,
    cols.FLOAT: float,
    cols.INT: int,
    cols.BIGINT: int,
    cols.BOOL: bool,
    cols.JSON: rows.json_text,
    cols.PRIORITY: int,
    cols.STATUS: int,
}
_PG_COERCE = {c.name: _PG_KIND[c.kind] for c in cols.COLUMNS if c.updatable}


def _pg_value(name: str, value: Any) -> Any:
    return None if value is None else _PG_COERCE[name](value)


def _replace_into(table: str, columns: str, key: str, verb: str) -> str:
    return f"{verb} INTO {table} ({columns}) VALUES ({', '.join('?' for _ in columns.split(','))})"


def _insert_new(verb: str, tail: str = "") -> Callable[[str, str, int], str]:
    """`insert_new(table, columns, rows)`: an INSERT of `rows` rows that skips each whose key is
    stored already, the rest going in (its count of rows matched is the rows inserted)."""

    def render(table: str, columns: str, count: int) -> str:
        row = f"({', '.join('?' for _ in columns.split(','))})"
        return f"{verb} INTO {table} ({columns}) VALUES {', '.join([row] * count)}{tail}"

    return render


def _pg_upsert(table: str, columns: str, key: str) -> str:
    names = [c.strip() for c in columns.split(",")]
    updates = ", ".join(f"{c} = excluded.{c}" for c in names if c != key)
    return (
        f"INSERT INTO {table} ({columns}) VALUES ({', '.join('?' for _ in names)})"
        f" ON CONFLICT ({key}) DO UPDATE SET {updates}"
    )


@dataclass(frozen=True, slots=True)
class ListPart:
    """The jobs of some statuses, picked out by `predicate` (SQL; empty for every job).

    A listing reads each part through an index of its own and merges them: one part of every job
    where one index holds the listing order, several where an index of every job would cost the hot
    path (see `POSTGRES`). The parts of a dialect pick out every job exactly once.
    """

    statuses: frozenset[JobStatus]
    predicate: str


EVERY_JOB = (ListPart(frozenset(JobStatus), ""),)


@dataclass(frozen=True, eq=False)
class Dialect:
    name: str
    #: `?` marks rendered for the driver.
    render: Callable[[str], str]
    true: str
    #: Filters of listed and counted jobs; their marks are `?` or already the driver's own.
    filter: rows.FilterDialect
    #: `upsert(table, columns, key)`: an INSERT of one row that replaces the row of the same key.
    upsert: Callable[[str, str, str], str]
    #: `insert_new(table, columns, rows)`: a multi-row INSERT that leaves rows of stored keys alone.
    insert_new: Callable[[str, str, int], str]
    #: An `update_job` value as the column's type takes it.
    value: Callable[[str, Any], Any]
    #: Appended to a SELECT whose rows the transaction then writes (SQLite's write lock is the
    #: whole database, taken at BEGIN).
    lock_rows: str
    #: Appended to a SELECT of rows to take that other sessions may be working on.
    skip_locked: str
    #: Final jobs finished before `?`, through the finished index.
    finished_before: str
    #: The due time of a HeldOnMaster job (NULL for others where the dialect has no partial index),
    #: and the predicate that selects such jobs in the due index.
    due: str
    held: str
    #: One row if the table named `?` exists.
    table_exists: str
    #: Creates the table of applied migration numbers (`migrations.migrate`).
    version_table: str
    #: The lock `Executor.exclusive` takes while migrating, as earlier releases took it, so that old
    #: and new processes of a rolling upgrade still migrate one at a time: PostgreSQL's advisory
    #: lock key as 8 bytes, MySQL's `GET_LOCK` kind (SQLite's write lock has no name).
    migration_lock: str
    #: What every CREATE TABLE of the dialect's schema files ends with (`{TABLE_OPTIONS}`).
    table_options: str = ""
    #: Casts a placeholder needs for the column it sets, by column.
    casts: dict[str, str] = field(default_factory=dict)
    #: The parts a listing reads, each in the listing order through an index.
    listing: tuple[ListPart, ...] = EVERY_JOB
    #: Follows the table's name in a listing that starts after a position.
    seek: str = ""

    @functools.lru_cache(maxsize=512)  # noqa: B019 - three instances that live as long as the process
    def sql(self, text: str) -> str:
        return self.render(text)


SQLITE = Dialect(
    name="sqlite",
    render=lambda text: text,
    true="1",
    filter=rows.FilterDialect(lambda _: "?", rows.status_in, _sqlite_metadata),
    upsert=lambda table, columns, key: _replace_into(table, columns, key, "INSERT OR REPLACE"),
    insert_new=_insert_new("INSERT OR IGNORE"),
    value=_plain,
    lock_rows="",
    skip_locked="",
    finished_before=f"status IN {lc.FINAL_SQL} AND finished_at < ?",
    due="scheduled_at",
    held=f"status = {lc.HELD}",
    table_exists="SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
    version_table="CREATE TABLE IF NOT EXISTS jm_schema (version INTEGER NOT NULL)",
    migration_lock="",
)

_OWNED = frozenset(OWNED_STATUSES)

#: Every status change is a non-HOT update on PostgreSQL (status is in the partial indexes'
#: predicates), so an index of every job gains an entry at each of a job's four writes: one on
#: `(cluster_id, scheduled_at, id)` made them 14% dearer (52.7 -> 60.3 us a job; start and success
#: a fifth each). The listing index holds only jobs at rest (not owned by a worker), which enter it
#: when inserted and when they end (55.6 us). The jobs in flight, as many as the workers hold, are
#: read through the indexes that already hold them: leased ones through the lease index, unleased
#: ones waiting in a job-table queue through the queue index, and the rest (none, unless a tool
#: wrote such a row) through an index that is empty in practice, so no write pays for it.
_PG_LISTING = (
    ListPart(frozenset(JobStatus) - _OWNED, f"status NOT IN {lc.OWNED_SQL}"),
    ListPart(_OWNED, f"status IN {lc.OWNED_SQL} AND lease_expires_at IS NOT NULL"),
    ListPart(frozenset({JobStatus.AssignedToBucket}), f"status = {lc.ASSIGNED} AND lease_expires_at IS NULL"),
    ListPart(lc.RENEWED, f"status IN {lc.RENEWED_SQL} AND lease_expires_at IS NULL"),
)

POSTGRES = Dialect(
    name="postgres",
    render=_numbered,
    true="true",
    filter=rows.FilterDialect(lambda _: "?", _pg_statuses, _pg_metadata),
    upsert=_pg_upsert,
    insert_new=_insert_new("INSERT", " ON CONFLICT DO NOTHING"),
    value=_pg_value,
    lock_rows=" FOR UPDATE",
    skip_locked=" FOR UPDATE SKIP LOCKED",
    finished_before=f"status IN {lc.FINAL_SQL} AND finished_at < ?",
    due="scheduled_at",
    held=f"status = {lc.HELD}",
    table_exists="SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = ?",
    version_table="CREATE TABLE IF NOT EXISTS jm_schema (version integer PRIMARY KEY)",
    migration_lock="jm_mastr",
    casts={c.name: f"::{c.kind.postgres}" for c in cols.COLUMNS if c.updatable and c.kind is cols.JSON},
    listing=_PG_LISTING,
)

#: Table options of every MySQL table: InnoDB (row locks, foreign keys), 4-byte UTF-8 and a binary
#: collation, so names compare exactly as on PostgreSQL and SQLite (case and accents matter).
TABLE_OPTIONS = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"

#: Indexes on MySQL cannot be partial: `held_at` and `final_at` are generated columns that hold the
#: due and finish times of HeldOnMaster and final jobs only (see `master/mysql.py`).
MYSQL = Dialect(
    name="mysql",
    render=lambda text: text.replace("?", "%s"),
    true="TRUE",
    filter=rows.FilterDialect(lambda _: "%s", rows.status_in, _mysql_metadata, rows.after_split),
    upsert=lambda table, columns, key: _replace_into(table, columns, key, "REPLACE"),
    # INSERT IGNORE also turns other errors into warnings (a value too long is cut): callers check
    # their values before (schedule names are validated against NAME_PATTERN).
    insert_new=_insert_new("INSERT IGNORE"),
    value=_plain,
    lock_rows=" FOR UPDATE",
    skip_locked=" FOR UPDATE SKIP LOCKED",
    finished_before="final_at < ?",
    due="held_at",
    held="held_at IS NOT NULL",
    table_exists="SELECT 1 FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?",
    version_table=f"CREATE TABLE IF NOT EXISTS jm_schema (version INT NOT NULL PRIMARY KEY) {TABLE_OPTIONS}",
    migration_lock="master-migrations",
    table_options=TABLE_OPTIONS,
    # MariaDB reads the cluster's part of the listing index from its top (a `ref` on cluster_id,
    # the position a filter) unless it thinks the range from the position far smaller: a page of
    # 50 at a depth of 15,000 read 15,051 rows instead of 51.
    seek=" FORCE INDEX (jm_jobs_listed)",
)
