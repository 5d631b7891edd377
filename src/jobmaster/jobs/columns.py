"""The job's columns, declared once: every `Job` field in order, how it is stored, whether it may be
NULL or changed by `update_job`, and where it travels in an agent message.

Everything that lists the columns is derived from `COLUMNS`: the SQL column list and the row
converters (`master/rows.py`), PostgreSQL's array types (`master/postgres.py`), the values
`update_job` sends (`master/sql/dialect.py`) and the agent wire format (`jobs/codec.py`). A new
column is an entry here, a `Job` field at the same place, and one migration file per database
(docs/schema.md); `tests/unit/test_columns.py` checks that the three agree.

The converters stay positional (a job taken by a worker is one tuple index per field, no lookup
by name): `compile_function` builds them from these entries once, at import, as the
functions they replaced were written by hand.
"""

from __future__ import annotations

import enum
import linecache
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jobmaster.jobs.model import JobStatus, Priority


@dataclass(frozen=True, slots=True, eq=False)
class Kind:
    """How a column stores its value; the other databases' types follow from PostgreSQL's."""

    name: str
    #: The column's PostgreSQL type (`unnest` takes an array of it).
    postgres: str
    #: The enum whose members the column holds as their small-integer values.
    enum: type[enum.IntEnum] | None = None


TEXT = Kind("text", "text")
FLOAT = Kind("float", "float8")
INT = Kind("int", "integer")
BIGINT = Kind("bigint", "bigint")
BOOL = Kind("bool", "boolean")
#: A JSON document, as text in a row; JSON columns that may not be NULL hold objects.
JSON = Kind("json", "jsonb")
PRIORITY = Kind("priority", "smallint", Priority)
STATUS = Kind("status", "smallint", JobStatus)


@dataclass(frozen=True, slots=True)
class Column:
    #: The `Job` field, and the column of `jm_jobs` that stores it.
    name: str
    kind: Kind
    #: NULL allowed in the database (and None in the field).
    nullable: bool = False
    #: `update_job` may change it; anything else it refuses, so callers cannot bypass the CAS rules.
    updatable: bool = False
    #: Its place in an agent message (`jobs/codec.py`), None if messages do not carry it. Places
    #: are released with a wire format and never change: a new one comes after the last.
    wire: int | None = None


#: In the field order of `Job`: rows are read into jobs by position.
COLUMNS: tuple[Column, ...] = (
    Column("id", TEXT, wire=0),
    Column("definition_id", TEXT, wire=1),
    Column("scheduled_at", FLOAT, updatable=True, wire=2),
    Column("created_at", FLOAT, wire=3),
    Column("priority", PRIORITY, updatable=True, wire=4),
    Column("lane", TEXT, updatable=True, wire=5),
    Column("data", JSON, wire=6),
    Column("metadata", JSON, wire=7),
    Column("timeout_s", FLOAT, wire=8),
    Column("max_retries", INT, wire=9),
    Column("attempt_limit", INT, updatable=True, wire=14),
    Column("status", STATUS, updatable=True, wire=10),
    Column("attempts", INT, wire=11),
    Column("version", BIGINT, wire=12),
    Column("original_scheduled_at", FLOAT, wire=13),
    Column("bucket_id", TEXT, nullable=True, updatable=True),
    Column("worker_id", TEXT, nullable=True, updatable=True),
    Column("lease_expires_at", FLOAT, nullable=True, updatable=True),
    Column("started_at", FLOAT, nullable=True),
    Column("finished_at", FLOAT, nullable=True, updatable=True),
    Column("cancel_requested", BOOL, updatable=True),
    Column("last_error", JSON, nullable=True, updatable=True),
    Column("result", JSON, nullable=True),
    Column("notify_channel", TEXT, nullable=True),
)

#: The columns an agent message carries, in their order there.
WIRE: tuple[Column, ...] = tuple(
    sorted((c for c in COLUMNS if c.wire is not None), key=lambda c: c.wire or 0)
)


def compile_function(name: str, source: str, namespace: dict[str, Any]) -> Callable[..., Any]:
    """The function `name` that `source` defines, compiled with `namespace` as its globals.

    The source is registered with `linecache`, so a traceback through the function shows its lines.
    """
    filename = f"<jobmaster generated {name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    exec(compile(source, filename, "exec"), namespace)
    function: Callable[..., Any] = namespace[name]
    return function
