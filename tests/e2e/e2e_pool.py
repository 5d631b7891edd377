"""The database pool the e2e apps' handlers record their runs with, shared by the e2e apps."""

from __future__ import annotations

from types import SimpleNamespace

import asyncpg

from jobmaster import JobMaster


def record_pool(app: JobMaster, url: str, max_size: int) -> None:
    """Give every process of `app` an asyncpg pool on `url` as `ctx.state.pool`, opened when the
    process starts and closed when it stops (the handlers write their runs to the master database)."""

    @app.on_startup
    async def open_pool(state: SimpleNamespace) -> None:
        state.pool = await asyncpg.create_pool(url, min_size=1, max_size=max_size)

    @app.on_shutdown
    async def close_pool(state: SimpleNamespace) -> None:
        await state.pool.close()
