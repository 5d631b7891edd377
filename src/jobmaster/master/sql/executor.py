"""The four calls the shared SQL operations run statements through, whatever the driver.

SQLite runs callbacks on one writer thread, asyncpg has a pool of its own, asyncmy sessions; each
`db` handle offers this protocol as its `executor`, so an operation that is the same SQL on every
database is written once (`store.SqlMasterStore`). The hot path keeps each driver's own calls: there
a batch is one thread hop or one round trip, and this layer would add to it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

#: A result row: a tuple, an `sqlite3` row or an asyncpg record, read by position.
Row = Sequence[Any]


class Statements(Protocol):
    """Single statements, each with `?` marks already rendered in the dialect's style."""

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> Sequence[Row]: ...

    async def fetchval(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row, or None if there is none."""

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a write; returns the rows it matched."""


class Executor(Statements, Protocol):
    """Statements on their own (each its own transaction), or several in one transaction."""

    async def transaction(self, body: Callable[[Statements], Awaitable[T]]) -> T:
        """Run `body` in one transaction, committed when it returns and rolled back if it raises.

        A body may run more than once (MySQL runs a deadlock victim again), so it must only read
        and write the database.
        """

    async def exclusive(self, lock: str, body: Callable[[Statements], Awaitable[T]]) -> T:
        """Run `body` on one connection while no other process runs one under the same `lock`.

        For schema changes. Where DDL is transactional (SQLite, PostgreSQL) `body` is one
        transaction, as in `transaction`; MySQL commits each DDL statement as it runs, so there each
        statement commits on its own and the lock is all that `body` runs under. `lock` names the
        lock in the database's terms (`Dialect.migration_lock`).
        """
