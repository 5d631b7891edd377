"""Schema migrations as SQL files, one folder per dialect, applied in order by one runner.

`schema/<dialect>/NNN_<name>.sql` is migration NNN of that database: the numbers run 1, 2, 3, ...
without gaps, and a database's version (the highest row of `jm_schema`) is the last one applied. A
released file never changes; a change to the schema is a new file in each dialect's folder.

A file holds statements ended by `;`. Semicolons inside quotes, comments and dollar-quoted bodies
(`$$ ... $$`, as PL/pgSQL functions have) do not end a statement. `{lc.NAME}` stands for a
`jobmaster.jobs.lifecycle` constant (a status number or set, never written as a number of the file's
own) and `{TABLE_OPTIONS}` for the dialect's `table_options`; any other `{NAME}` is an error, so a
misspelt one cannot reach the database as text.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

from jobmaster.errors import ConfigError
from jobmaster.jobs import lifecycle as lc
from jobmaster.master.sql.dialect import Dialect
from jobmaster.master.sql.executor import Executor, Statements

_FILE = re.compile(r"(\d{3})_[a-z0-9_]+\.sql")
_NAME = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)\}")

#: A piece of a file: a comment, a quoted text or dollar-quoted body, a `;`, or a run of anything
#: else. The opening of a quote or comment that a whole piece could not match is left unterminated.
_PIECE = re.compile(
    r"(?P<comment>--[^\n]*|/\*.*?\*/)"
    r"|(?P<quoted>'(?:[^']|'')*'|\"[^\"]*\"|(\$[A-Za-z_]*\$).*?\3)"
    r"|(?P<end>;)"
    r"|(?P<open>'|\"|/\*|\$[A-Za-z_]*\$)"
    r"|[^-/'\"$;]+|.",
    re.DOTALL,
)


@dataclass(frozen=True)
class Migration:
    number: int
    file: str
    statements: tuple[str, ...]


def split(text: str) -> list[str]:
    """The statements of a schema file, without their `;` and without comments outside them."""
    found: list[str] = []
    pieces: list[str] = []
    for match in _PIECE.finditer(text):
        if match["open"]:
            line = text.count("\n", 0, match.start()) + 1
            raise ValueError(f"unterminated {match['open']!r} at line {line}")
        if match["end"]:
            found.append("".join(pieces).strip())
            pieces = []
        elif not match["comment"]:
            pieces.append(match[0])
    found.append("".join(pieces).strip())
    return [statement for statement in found if statement]


def _names(dialect: Dialect) -> dict[str, str]:
    constants = {
        f"lc.{name}": str(value)
        for name, value in vars(lc).items()
        if name.isupper() and (isinstance(value, int) or name.endswith("_SQL"))
    }
    return {**constants, "TABLE_OPTIONS": dialect.table_options}


def render(text: str, dialect: Dialect) -> str:
    """`text` with each `{NAME}` replaced (see the module's docstring)."""
    names = _names(dialect)

    def value(match: re.Match[str]) -> str:
        if match[1] not in names:
            raise ValueError(f"unknown name {match[0]}: use {{lc.NAME}} or {{TABLE_OPTIONS}}")
        return names[match[1]]

    return _NAME.sub(value, text)


def parse(file: str, text: str, dialect: Dialect) -> list[str]:
    """The statements of schema file `file`, rendered for `dialect`; errors name the file."""
    try:
        return split(render(text, dialect))
    except ValueError as exc:
        raise ValueError(f"{dialect.name} schema file {file}: {exc}") from None


def load(folder: Traversable, dialect: Dialect) -> tuple[Migration, ...]:
    """The migrations in `folder`, in order; a misnamed or misnumbered `.sql` file is an error."""
    found: list[Migration] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        match = _FILE.fullmatch(entry.name)
        if match is None:
            if entry.name.endswith(".sql"):
                raise ValueError(f"{dialect.name} schema file {entry.name} is not named NNN_name.sql")
            continue
        number = int(match[1])
        if number != len(found) + 1:
            raise ValueError(f"{dialect.name} schema file {entry.name} should be number {len(found) + 1}")
        found.append(Migration(number, entry.name, tuple(parse(entry.name, entry.read_text(), dialect))))
    return tuple(found)


@functools.cache
def migrations(dialect: Dialect) -> tuple[Migration, ...]:
    """The dialect's migrations, read once per process from the package's files."""
    return load(resources.files(__package__).joinpath("schema", dialect.name), dialect)


def latest(dialect: Dialect) -> int:
    """The version `migrate` brings a database of `dialect` to."""
    return len(migrations(dialect))


def refuse_newer(current: int, latest: int) -> None:
    """A schema newer than this code's is an older jobmaster run against an upgraded database: it
    would misread rows the newer code writes, so it stops with what to do, before any work."""
    if current > latest:
        raise ConfigError(
            f"the master database has jobmaster schema version {current}, newer than this "
            f"jobmaster's version {latest}: upgrade jobmaster on this machine to the version the "
            "other processes of the cluster run"
        )


async def migrate(sql: Executor, dialect: Dialect) -> int:
    """Apply the migrations the database lacks, in order; return its version now.

    Runs under the dialect's migration lock, so two processes opening at once apply each migration
    once. Where DDL is transactional (SQLite, PostgreSQL) every pending migration and its version row
    commit together or not at all. MySQL commits each DDL statement on its own, so a migration's
    version row is written right after its statements: a failure leaves the migrations before it
    applied and recorded, and the next run starts at the one that failed.
    """
    pending = migrations(dialect)
    record = dialect.sql("INSERT INTO jm_schema (version) VALUES (?)")

    async def apply(t: Statements) -> int:
        await t.execute(dialect.version_table)
        current = int(await t.fetchval("SELECT COALESCE(MAX(version), 0) FROM jm_schema") or 0)
        refuse_newer(current, len(pending))
        for migration in pending:
            if migration.number > current:
                for statement in migration.statements:
                    await t.execute(statement)
                await t.execute(record, (migration.number,))
        return max(current, len(pending))

    return await sql.exclusive(dialect.migration_lock, apply)


async def schema_version(sql: Executor, dialect: Dialect) -> int:
    """The version of the database's schema, 0 where it has none."""
    if not await sql.fetch(dialect.sql(dialect.table_exists), ("jm_schema",)):
        return 0
    return int(await sql.fetchval("SELECT MAX(version) FROM jm_schema") or 0)
