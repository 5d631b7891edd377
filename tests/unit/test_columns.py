"""The column registry (`jobs/columns.py`) against what it describes: the `Job` fields, the job table
each database's migration files create, and what the converters built from it do."""

from __future__ import annotations

import random
import re
from dataclasses import fields
from typing import Any

import pytest

from helpers import make_job
from jobmaster.jobs import codec
from jobmaster.jobs import columns as cols
from jobmaster.jobs.model import Job, JobStatus, Priority
from jobmaster.master import postgres as pg_master
from jobmaster.master import rows
from jobmaster.master.sql import migrations
from jobmaster.master.sql.dialect import MYSQL, POSTGRES, SQLITE, Dialect

#: The types each database may store a kind in (PostgreSQL's by their canonical name).
TYPES: dict[str, dict[cols.Kind, set[str]]] = {
    "postgres": {
        cols.TEXT: {"text"},
        cols.FLOAT: {"float8"},
        cols.INT: {"integer"},
        cols.BIGINT: {"bigint"},
        cols.BOOL: {"boolean"},
        cols.JSON: {"jsonb"},
        cols.PRIORITY: {"smallint"},
        cols.STATUS: {"smallint"},
    },
    "sqlite": {
        cols.TEXT: {"TEXT"},
        cols.FLOAT: {"REAL"},
        cols.INT: {"INTEGER"},
        cols.BIGINT: {"INTEGER"},
        cols.BOOL: {"INTEGER"},
        cols.JSON: {"TEXT"},
        cols.PRIORITY: {"INTEGER"},
        cols.STATUS: {"INTEGER"},
    },
    "mysql": {
        cols.TEXT: {"VARCHAR", "TEXT", "LONGTEXT"},
        cols.FLOAT: {"DOUBLE"},
        cols.INT: {"INT"},
        cols.BIGINT: {"BIGINT"},
        cols.BOOL: {"BOOLEAN"},
        cols.JSON: {"LONGTEXT"},
        cols.PRIORITY: {"SMALLINT"},
        cols.STATUS: {"SMALLINT"},
    },
}
_PG_NAMES = {"double precision": "float8", "float8": "float8", "int": "integer", "int4": "integer"}
#: Columns of the table that are not job fields: the cluster, and MySQL's generated index columns.
NOT_FIELDS = {"cluster_id", "held_at", "final_at"}
_TYPE_END = re.compile(r"\s+(NOT\b|NULL\b|DEFAULT\b|PRIMARY\b|COLLATE\b|AS\b|GENERATED\b)|$", re.IGNORECASE)


def _top_level(text: str) -> list[str]:
    """`text` split at the commas outside parentheses."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    return [*parts, current.strip()]


def _column(definition: str, dialect: str) -> tuple[str, str, bool]:
    """Name, type (PostgreSQL's canonical, the others' without a length) and NOT NULL of one column."""
    name, rest = definition.split(None, 1)
    end = _TYPE_END.search(rest)
    assert end is not None
    kind = rest[: end.start()].strip()
    # PostgreSQL's canonical names; the others' without a length, since any length will do.
    kind = _PG_NAMES.get(kind.lower(), kind.lower()) if dialect == "postgres" else kind.split("(")[0].upper()
    not_null = bool(re.search(r"\bNOT\s+NULL\b|\bPRIMARY\s+KEY\b", rest, re.IGNORECASE))
    return name, kind, not_null


def job_table(dialect: str, statements: list[str]) -> dict[str, tuple[str, bool]]:
    """The columns of `jm_jobs` once `statements` have run: name -> (type, NOT NULL).

    Reads the CREATE TABLE, then each later ALTER TABLE's ADD COLUMN, DROP COLUMN and column type
    changes, which are the statements these files change columns with.
    """
    table: dict[str, tuple[str, bool]] = {}
    for statement in statements:
        if re.match(r"CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+jm_jobs\s*\(", statement, re.IGNORECASE):
            body = statement[statement.index("(") + 1 : statement.rindex(")")]
            for part in _top_level(body):
                if re.match(r"(PRIMARY KEY|INDEX|KEY|UNIQUE|CONSTRAINT)\b", part, re.IGNORECASE):
                    continue
                if re.search(r"\bAS\s*\(", part, re.IGNORECASE):
                    continue  # a generated column, derived from the others
                name, kind, not_null = _column(part, dialect)
                table[name] = (kind, not_null)
        elif re.match(r"ALTER\s+TABLE\s+jm_jobs\s", statement, re.IGNORECASE):
            changes = statement.split(None, 3)[3]
            for change in _top_level(changes):
                words = change.split()
                verb = " ".join(words[:2]).upper()
                rest = re.sub(
                    r"^(ADD|DROP|ALTER)\s+COLUMN\s+(IF\s+(NOT\s+)?EXISTS\s+)?", "", change, flags=re.I
                )
                if verb == "ADD COLUMN":
                    name, kind, not_null = _column(rest, dialect)
                    table[name] = (kind, not_null)
                elif verb == "DROP COLUMN":
                    table.pop(rest.split()[0], None)
                elif verb == "ALTER COLUMN" and words[3].upper() == "TYPE":
                    name, kind, _ = _column(f"{words[2]} {' '.join(words[4:])}", dialect)
                    table[name] = (kind, table[name][1])
    return table


def test_the_registry_lists_every_field_of_job_in_order() -> None:
    """The converters are positional: a column out of the fields' order would fill the wrong field."""
    assert tuple(c.name for c in cols.COLUMNS) == tuple(f.name for f in fields(Job))
    assert tuple(f.name for f in fields(Job)) == rows.JOB_COLUMNS


@pytest.mark.parametrize("dialect", [SQLITE, POSTGRES, MYSQL], ids=lambda d: d.name)
def test_every_databases_job_table_has_a_column_of_the_right_type_per_registry_entry(
    dialect: Dialect,
) -> None:
    table = job_table(dialect.name, [s for m in migrations.migrations(dialect) for s in m.statements])
    assert set(table) - NOT_FIELDS == {c.name for c in cols.COLUMNS}, "jm_jobs and the registry differ"
    for column in cols.COLUMNS:
        kind, not_null = table[column.name]
        assert kind in TYPES[dialect.name][column.kind], f"{dialect.name} stores {column.name} as {kind}"
        assert not_null is not column.nullable, f"{dialect.name}: {column.name} NOT NULL is {not_null}"


def test_the_ddl_reader_sees_added_dropped_and_retyped_columns() -> None:
    """The reader above is what finds a missing column, so it must read an ALTER TABLE as well."""
    added = "ALTER TABLE jm_jobs ADD COLUMN IF NOT EXISTS unique_key text, ADD COLUMN tags jsonb NOT NULL"
    statements = ["CREATE TABLE IF NOT EXISTS jm_jobs (id text PRIMARY KEY, x smallint)", added]
    statements += ['ALTER TABLE jm_jobs DROP COLUMN x, ALTER COLUMN id TYPE text COLLATE "C"']
    table = job_table("postgres", statements)
    assert table == {"id": ("text", True), "unique_key": ("text", False), "tags": ("jsonb", True)}


def test_wire_fields_are_the_registrys_in_the_order_of_their_places() -> None:
    wire = [c for c in cols.COLUMNS if c.wire is not None]
    assert sorted(c.wire for c in wire if c.wire is not None) == list(range(len(wire)))
    assert tuple(c.name for c in sorted(wire, key=lambda c: c.wire or 0)) == codec.WIRE_FIELDS


def test_update_job_may_change_the_columns_it_always_could() -> None:
    assert {
        "status",
        "scheduled_at",
        "priority",
        "lane",
        "bucket_id",
        "worker_id",
        "lease_expires_at",
        "finished_at",
        "cancel_requested",
        "attempt_limit",
        "last_error",
    } == rows.UPDATABLE
    assert {"data", "metadata", "last_error", "result"} == rows.JSON_COLUMNS
    assert POSTGRES.casts == {"last_error": "::jsonb"}


def _reference_row(job: Job) -> tuple[Any, ...]:
    """A row as the registry describes it, built by name: slow and obvious."""
    values = []
    for column in cols.COLUMNS:
        value = getattr(job, column.name)
        if column.kind is cols.JSON:
            value = rows.json_text(value)
        elif column.kind.enum is not None or column.kind is cols.BOOL:
            value = int(value) if column.kind.enum else bool(value)
        values.append(value)
    return tuple(values)


def _jobs(count: int) -> list[Job]:
    rng = random.Random(11)
    jobs = []
    for n in range(count):
        job = make_job(
            rng.uniform(-10, 1000),
            priority=rng.choice(list(Priority)),
            status=rng.choice(list(JobStatus)),
            data={"n": n},
            metadata={"team": "x"} if n % 2 else {},
            bucket_id=rng.choice([None, "b1"]),
            worker_id=rng.choice([None, "w1"]),
            lease_expires_at=rng.choice([None, 5.5]),
            started_at=rng.choice([None, 1.5]),
            finished_at=rng.choice([None, 2.5]),
            cancel_requested=rng.random() < 0.5,
            last_error=rng.choice([None, {"type": "E", "message": "m"}]),
        )
        job.attempts, job.version = rng.randint(0, 5), rng.randint(0, 9)
        jobs.append(job)
    return jobs


def test_the_built_row_converters_agree_with_the_registry() -> None:
    for job in _jobs(200):
        row = rows.job_to_row(job)
        assert row == _reference_row(job)
        assert [type(v) for v in row] == [type(v) for v in _reference_row(job)]  # enums as plain ints
        assert rows.job_from_row(row) == job


#: The Python type asyncpg takes for a parameter of each PostgreSQL type (JSON goes as text).
_ASYNCPG = {"text": str, "float8": float, "integer": int, "bigint": int, "smallint": int, "boolean": bool}
_SAMPLES: dict[cols.Kind, Any] = {
    cols.TEXT: "b1",
    cols.FLOAT: 5,
    cols.INT: 4.0,
    cols.BIGINT: 7,
    cols.BOOL: 1,
    cols.JSON: {"a": 1},
    cols.PRIORITY: Priority.High,
    cols.STATUS: JobStatus.Failed,
}


def test_postgres_sends_each_column_as_its_registered_type() -> None:
    """asyncpg refuses an int for a float8 column or a bool for a smallint: the batch arrays and
    `update_job` values must both follow the registry's types."""
    assert tuple(f"{c.kind.postgres}[]" for c in cols.COLUMNS) == pg_master._JOB_ARRAY_TYPES
    for column in cols.COLUMNS:
        if column.updatable:
            sent = POSTGRES.value(column.name, _SAMPLES[column.kind])
            assert type(sent) is _ASYNCPG.get(column.kind.postgres, str), column.name
