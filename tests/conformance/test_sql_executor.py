"""The executor every SQL master's handle offers to the shared cold path (`master.sql.executor`)."""

from __future__ import annotations

import asyncio

import pytest

from jobmaster.cluster.model import WorkerStatus
from jobmaster.master.base import MasterStore
from jobmaster.master.sql.executor import Statements
from jobmaster.master.sql.store import SqlMasterStore


class Boom(Exception):
    pass


async def test_a_transaction_commits_or_rolls_back_whole(master: MasterStore) -> None:
    assert isinstance(master, SqlMasterStore)
    sql, d = master.sql, master.dialect
    insert = d.sql("INSERT INTO jm_schema (version) VALUES (?)")
    count = d.sql("SELECT COUNT(*) FROM jm_schema WHERE version >= ?")

    async def two(t: Statements) -> int:
        await t.execute(insert, (1001,))
        await t.execute(insert, (1002,))
        return int(await t.fetchval(count, (1001,)))

    async def half(t: Statements) -> None:
        await t.execute(insert, (1003,))
        raise Boom

    assert await sql.transaction(two) == 2
    with pytest.raises(Boom):
        await sql.transaction(half)
    assert int(await sql.fetchval(count, (1001,))) == 2
    assert await sql.execute(d.sql("DELETE FROM jm_schema WHERE version >= ?"), (1001,)) == 2


async def test_other_work_waits_for_an_open_transaction(master: MasterStore) -> None:
    """SQLite's transaction spans several thread hops on one shared connection: work that comes in
    meanwhile must not run inside it (and be rolled back with it)."""
    assert isinstance(master, SqlMasterStore)
    sql, d = master.sql, master.dialect
    entered = asyncio.Event()
    release = asyncio.Event()

    async def slow(t: Statements) -> None:
        await t.execute(d.sql("INSERT INTO jm_schema (version) VALUES (?)"), (2001,))
        entered.set()
        await release.wait()
        raise Boom

    failing = asyncio.create_task(sql.transaction(slow))
    await entered.wait()
    other = asyncio.create_task(master.set_worker_status("nobody", WorkerStatus.Stopped))
    await asyncio.sleep(0.05)
    release.set()
    with pytest.raises(Boom):
        await failing
    await other
    assert await sql.fetchval(d.sql("SELECT version FROM jm_schema WHERE version = ?"), (2001,)) is None
