"""Enqueue inside Django's open PostgreSQL transaction: the job exists only if it commits.

jobmaster already writes a job in a caller's transaction on PostgreSQL (`schedule(connection=)`),
with the same statement as always, whose `pg_notify` is delivered at commit and wakes a coordinator
then. Django's transaction lives on its own psycopg connection, bound to the request's thread,
while the statement is issued from jobmaster's event loop. So the loop is handed a connection that
looks like the one it knows (`fetch`), whose statement is passed back to the waiting request thread
and executed there through Django's cursor: inside the transaction, by the thread that owns it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import re
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

T = TypeVar("T")

_PLACEHOLDER = re.compile(r"\$(\d+)")


class CallerThread:
    """Runs, in the thread that waits for a coroutine on another loop, the calls that coroutine hands
    back to it: the thread is blocked anyway, and only it may touch its Django connection."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()

    def wait(self, future: concurrent.futures.Future[T]) -> T:
        future.add_done_callback(lambda _: self._calls.put(None))
        while (call := self._calls.get()) is not None:
            call()
        return future.result()

    async def run(self, func: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()

        def call() -> None:
            try:
                value = func()
            except BaseException as exc:
                loop.call_soon_threadsafe(_settle, done, None, exc)
            else:
                loop.call_soon_threadsafe(_settle, done, value, None)

        self._calls.put(call)
        return await done


def _settle(future: asyncio.Future[T], value: T | None, error: BaseException | None) -> None:
    if future.done():  # the awaiting call was cancelled meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)  # type: ignore[arg-type]


class JoinedConnection:
    """Django's database connection, shaped as the PostgreSQL master uses a caller's connection."""

    def __init__(self, connection: Any, caller: CallerThread) -> None:
        self.connection = connection
        self.caller = caller

    async def fetch(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        statement, ordered = format_style(sql, params)
        return await self.caller.run(partial(self._execute, statement, ordered))

    def _execute(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows: list[tuple[Any, ...]] = cursor.fetchall()
            return rows


def format_style(sql: str, params: tuple[Any, ...]) -> tuple[str, list[Any]]:
    """An asyncpg statement (`$1` placeholders) as a DB-API one (`%s`, in order of appearance)."""
    ordered: list[Any] = []

    def placeholder(match: re.Match[str]) -> str:
        ordered.append(params[int(match.group(1)) - 1])
        return "%s"

    return _PLACEHOLDER.sub(placeholder, sql.replace("%", "%%")), ordered


def join_problem(database: str, settings_dict: dict[str, Any], vendor: str, master: str) -> str | None:
    """Why enqueue cannot join transactions of Django database `database`, or None if it can.

    The master must be that very PostgreSQL database: compared by database name and port, since
    one server has many names (localhost, 127.0.0.1, a service name) and no name can be checked.
    """
    where = f"OPTIONS['database'] = {database!r}"
    if vendor != "postgresql":
        return f"{where}: transactions of a {vendor} database cannot be joined; only PostgreSQL's"
    url = urlsplit(master)
    if url.scheme not in ("postgresql", "postgres"):
        return f"{where}: the jobmaster master must be that PostgreSQL database, not a {url.scheme}:// one"
    name = unquote(url.path.lstrip("/"))
    port = url.port or 5432
    django_port = int(settings_dict.get("PORT") or 5432)
    if name != settings_dict.get("NAME") or port != django_port:
        return (
            f"{where}: the jobmaster master (database {name!r}, port {port}) is not that database"
            f" ({settings_dict.get('NAME')!r}, port {django_port}); a job can only join a transaction"
            " of the database it is written to"
        )
    return None
